"""signalkit-anthropic with the real ``anthropic.Anthropic`` / ``anthropic.AsyncAnthropic`` clients
pointed at a fake Messages API on 127.0.0.1 (``anthropic_server.py``): what is recorded for
each message, that what the client returns is untouched, ``create(stream=True)`` and
``messages.stream()``, errors, timing, digest, uninstrument."""

from __future__ import annotations

import gc
import hashlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
import signalkit_anthropic
from anthropic_server import SNAPSHOT, TEXT, USAGE, FakeAnthropic, pieces

import signalkit as sk
from signalkit.events import CorrectionEvent, ExposureEvent, read_jsonl
from signalkit.testing import CapturedSignals, capture_signals

SECRET = "anthropic-adapter-test-secret-012345"
MODEL = "claude-sonnet-5"
SERVED = MODEL + SNAPSHOT
MESSAGES: list[Any] = [{"role": "user", "content": "I was charged twice."}]
SHA = hashlib.sha256(TEXT.encode()).hexdigest()
ALL_INPUT = USAGE["input_tokens"] + USAGE["cache_read_input_tokens"] + 5


@pytest.fixture(scope="module")
def api() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh(api: FakeAnthropic) -> Iterator[None]:
    api.text, api.delay_ms, api.chunk_delay_ms = TEXT, 0, 0
    api.fail = api.cut_after = api.error_after = None
    api.requests.clear()
    api.ids.clear()
    with sk.context():  # current_exposure() starts empty in every test
        yield


@pytest.fixture
def sk_client() -> Iterator[sk.Client]:
    client = sk.Client(
        "test", exporters=[sk.MemoryExporter()], secret=SECRET, strict=True, exit_timeout_s=0
    )
    yield client
    client.shutdown(timeout=1)


@pytest.fixture
def events(sk_client: sk.Client) -> Iterator[CapturedSignals]:
    with capture_signals(sk_client) as captured:
        yield captured


def sdk(api: FakeAnthropic) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=api.base_url, api_key="sk-ant-test", max_retries=0)


def async_sdk(api: FakeAnthropic) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=api.base_url, api_key="sk-ant-test", max_retries=0)


@pytest.fixture
def plain(api: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    client = sdk(api)
    yield client
    client.close()


@pytest.fixture
def claude(api: FakeAnthropic, sk_client: sk.Client) -> Iterator[anthropic.Anthropic]:
    client = signalkit_anthropic.instrument(sdk(api), surface="reply-draft", client=sk_client)
    yield client
    client.close()


@pytest.fixture
async def aclaude(
    api: FakeAnthropic, sk_client: sk.Client
) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = signalkit_anthropic.instrument(async_sdk(api), surface="reply-draft", client=sk_client)
    yield client
    await client.close()


def exposures(events: CapturedSignals) -> list[ExposureEvent]:
    return [e for e in events.of_kind("exposure") if isinstance(e, ExposureEvent)]


def only_exposure(events: CapturedSignals) -> ExposureEvent:
    found = exposures(events)
    assert len(found) == 1, f"expected one exposure, got {len(found)}"
    return found[0]


def create(client: Any, **kwargs: Any) -> Any:
    return client.messages.create(model=MODEL, max_tokens=1024, messages=MESSAGES, **kwargs)


# -- one message, one exposure ---------------------------------------------------------------


def test_message_is_recorded_as_one_exposure(
    claude: anthropic.Anthropic, api: FakeAnthropic, events: CapturedSignals
) -> None:
    message = create(claude)
    event = only_exposure(events)
    assert event.surface == "reply-draft"
    assert event.model == sk.ModelRef(name=SERVED)
    assert event.latency_ms is not None
    assert event.latency_ms > 0
    assert event.attributes == {
        "gen_ai.provider.name": "anthropic",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": MODEL,
        "gen_ai.response.model": SERVED,
        "gen_ai.response.id": api.ids[0],
        "gen_ai.response.finish_reasons": "end_turn",
        "gen_ai.usage.input_tokens": ALL_INPUT,  # cached input included, as the convention asks
        "gen_ai.usage.output_tokens": USAGE["output_tokens"],
        "gen_ai.usage.cache_read.input_tokens": USAGE["cache_read_input_tokens"],
        "gen_ai.usage.cache_write.input_tokens": USAGE["cache_creation_input_tokens"],
        "signalkit.output.chars": len(TEXT),
    }
    assert message.id == api.ids[0]


def test_the_result_is_what_the_uninstrumented_client_returns(
    claude: anthropic.Anthropic, plain: anthropic.Anthropic
) -> None:
    result, expected = create(claude), create(plain)
    assert type(result) is type(expected) is anthropic.types.Message
    assert result == expected
    streamed = [e.model_dump() for e in create(claude, stream=True)]
    assert streamed == [e.model_dump() for e in create(plain, stream=True)]


def test_current_exposure_and_exposure_of_give_the_recorded_exposure(
    claude: anthropic.Anthropic, sk_client: sk.Client, events: CapturedSignals
) -> None:
    message = create(claude)
    exposure = sk.current_exposure()
    assert exposure is not None
    assert signalkit_anthropic.exposure_of(message) is exposure
    event = only_exposure(events)
    assert exposure.id == event.id
    claims = sk_client.verify(exposure.token)
    assert claims.model == event.model


async def test_async_message(
    aclaude: anthropic.AsyncAnthropic, api: FakeAnthropic, events: CapturedSignals
) -> None:
    message = await aclaude.messages.create(model=MODEL, max_tokens=1024, messages=MESSAGES)
    assert isinstance(message, anthropic.types.Message)
    event = only_exposure(events)
    assert event.attributes["gen_ai.response.id"] == message.id == api.ids[0]
    assert signalkit_anthropic.exposure_of(message) is sk.current_exposure()


def test_beta_messages_are_recorded(claude: anthropic.Anthropic, events: CapturedSignals) -> None:
    message = claude.beta.messages.create(model=MODEL, max_tokens=1024, messages=MESSAGES)
    assert only_exposure(events).attributes["gen_ai.response.id"] == message.id


# -- streams ---------------------------------------------------------------------------------


def test_create_stream_is_recorded_when_it_ends(
    claude: anthropic.Anthropic, api: FakeAnthropic, events: CapturedSignals
) -> None:
    stream = create(claude, stream=True)
    assert type(stream) is anthropic.Stream
    assert signalkit_anthropic.exposure_of(stream) is sk.current_exposure() is not None
    kinds = []
    for event in stream:
        kinds.append(event.type)
        assert not exposures(events)
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    event = only_exposure(events)
    attrs = event.attributes
    assert attrs["signalkit.stream.end"] == "complete"
    assert attrs["gen_ai.response.id"] == api.ids[-1]
    assert attrs["gen_ai.response.finish_reasons"] == "end_turn"
    assert attrs["gen_ai.usage.output_tokens"] == USAGE["output_tokens"]  # from message_delta
    assert attrs["gen_ai.usage.input_tokens"] == ALL_INPUT  # from message_start
    assert attrs["signalkit.output.chars"] == len(TEXT)
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0  # type: ignore[operator]


def test_messages_stream_helper_is_recorded(
    claude: anthropic.Anthropic, events: CapturedSignals
) -> None:
    with claude.messages.stream(model=MODEL, max_tokens=1024, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        exposure = signalkit_anthropic.exposure_of(stream)
    assert text == TEXT
    assert final.content[0].text == TEXT  # type: ignore[union-attr]
    event = only_exposure(events)
    assert exposure is not None
    assert exposure.id == event.id
    assert sk.current_exposure() is exposure
    assert event.attributes["gen_ai.response.id"] == final.id
    assert event.attributes["signalkit.stream.end"] == "complete"


async def test_async_messages_stream_helper(
    aclaude: anthropic.AsyncAnthropic, events: CapturedSignals
) -> None:
    async with aclaude.messages.stream(model=MODEL, max_tokens=1024, messages=MESSAGES) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == TEXT
    event = only_exposure(events)
    assert event.attributes["gen_ai.response.id"] == final.id
    current = sk.current_exposure()
    assert current is not None
    assert current.id == event.id


async def test_async_create_stream(
    aclaude: anthropic.AsyncAnthropic, api: FakeAnthropic, events: CapturedSignals
) -> None:
    plain = async_sdk(api)
    expected = [
        e.model_dump()
        async for e in await plain.messages.create(
            model=MODEL, max_tokens=1024, messages=MESSAGES, stream=True
        )
    ]
    await plain.close()
    stream = await aclaude.messages.create(
        model=MODEL, max_tokens=1024, messages=MESSAGES, stream=True
    )
    assert type(stream) is anthropic.AsyncStream
    assert [e.model_dump() async for e in stream] == expected
    assert only_exposure(events).attributes["signalkit.stream.end"] == "complete"


def test_stream_closed_early_records_what_was_shown(
    claude: anthropic.Anthropic, events: CapturedSignals
) -> None:
    with claude.messages.stream(model=MODEL, max_tokens=1024, messages=MESSAGES) as stream:
        shown = ""
        for piece in stream.text_stream:
            shown += piece
            if len(shown) >= 24:
                break  # the user pressed stop
    attrs = only_exposure(events).attributes
    assert attrs["signalkit.stream.end"] == "closed"
    assert attrs["signalkit.output.chars"] == len(shown) == 24
    assert "gen_ai.response.finish_reasons" not in attrs
    assert attrs["gen_ai.usage.output_tokens"] == 1  # as far as message_start counted


def test_raw_stream_closed_early(claude: anthropic.Anthropic, events: CapturedSignals) -> None:
    stream = create(claude, stream=True)
    for n, _ in enumerate(stream):
        if n == 4:
            break
    stream.close()
    stream.close()
    assert only_exposure(events).attributes["signalkit.stream.end"] == "closed"


async def test_async_stream_closed_early(
    aclaude: anthropic.AsyncAnthropic, events: CapturedSignals
) -> None:
    async with aclaude.messages.stream(model=MODEL, max_tokens=1024, messages=MESSAGES) as stream:
        async for _ in stream.text_stream:
            break
    assert only_exposure(events).attributes["signalkit.stream.end"] == "closed"


def test_stream_closed_before_its_first_event_records_nothing(
    claude: anthropic.Anthropic, events: CapturedSignals
) -> None:
    with claude.messages.stream(model=MODEL, max_tokens=1024, messages=MESSAGES):
        pass
    stream = create(claude, stream=True)
    stream.close()
    del stream
    gc.collect()
    assert exposures(events) == []


def test_error_event_midway_records_an_error_and_raises_unchanged(
    claude: anthropic.Anthropic,
    plain: anthropic.Anthropic,
    api: FakeAnthropic,
    events: CapturedSignals,
) -> None:
    api.error_after = 5  # message_start, block start, ping, 2 deltas, then "overloaded"
    with pytest.raises(anthropic.APIStatusError) as expected:
        list(create(plain, stream=True))
    seen: list[Any] = []
    with pytest.raises(anthropic.APIStatusError) as raised:
        seen.extend(create(claude, stream=True))
    assert type(raised.value) is type(expected.value)
    assert raised.value.body == expected.value.body
    assert len(seen) == 4  # ping is not an event the SDK yields
    attrs = only_exposure(events).attributes
    assert attrs["signalkit.stream.end"] == "error"
    assert attrs["error.type"] == type(expected.value).__qualname__
    assert attrs["signalkit.output.chars"] == 2 * 12


def test_broken_connection_midway_records_an_error(
    claude: anthropic.Anthropic,
    plain: anthropic.Anthropic,
    api: FakeAnthropic,
    events: CapturedSignals,
) -> None:
    api.cut_after = 6  # the connection drops (the SDK lets the HTTP library's error through)

    def read_all(client: anthropic.Anthropic) -> BaseException:
        try:
            with client.messages.stream(model=MODEL, max_tokens=1024, messages=MESSAGES) as s:
                s.until_done()
        except Exception as exc:
            return exc
        raise AssertionError("the stream did not fail")

    expected, raised = read_all(plain), read_all(claude)
    assert type(raised) is type(expected)
    assert str(raised) == str(expected)
    attrs = only_exposure(events).attributes
    assert attrs["signalkit.stream.end"] == "error"
    assert attrs["error.type"] == type(expected).__qualname__


# -- failures --------------------------------------------------------------------------------

ERROR = (
    400,
    {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: field required"},
    },
)


def test_api_error_propagates_unchanged_and_records_nothing(
    claude: anthropic.Anthropic,
    plain: anthropic.Anthropic,
    api: FakeAnthropic,
    events: CapturedSignals,
) -> None:
    api.fail = ERROR
    with pytest.raises(anthropic.BadRequestError) as expected:
        create(plain)
    with pytest.raises(anthropic.BadRequestError) as raised:
        create(claude)
    assert str(raised.value) == str(expected.value)
    assert raised.value.body == expected.value.body
    with pytest.raises(anthropic.BadRequestError):
        create(claude, stream=True)
    with (
        pytest.raises(anthropic.BadRequestError),
        claude.messages.stream(model=MODEL, max_tokens=1024, messages=MESSAGES),
    ):
        pass
    assert exposures(events) == []
    assert sk.current_exposure() is None


async def test_async_api_error_records_nothing(
    aclaude: anthropic.AsyncAnthropic, api: FakeAnthropic, events: CapturedSignals
) -> None:
    api.fail = (529, {"type": "error", "error": {"type": "overloaded_error", "message": "x"}})
    with pytest.raises(anthropic.APIStatusError):
        await aclaude.messages.create(model=MODEL, max_tokens=1024, messages=MESSAGES)
    assert exposures(events) == []


def test_a_recording_failure_never_breaks_the_call(api: FakeAnthropic) -> None:
    lenient = sk.Client("test", exporters=[sk.MemoryExporter()], secret=SECRET, exit_timeout_s=0)
    client = signalkit_anthropic.instrument(sdk(api), surface="reply-draft", client=lenient)
    lenient.shutdown(timeout=1)
    assert create(client).content[0].text == TEXT
    with client.messages.stream(model=MODEL, max_tokens=1024, messages=MESSAGES) as stream:
        assert "".join(stream.text_stream) == TEXT
    assert lenient.stats.rejected.get("after_shutdown") == 2
    client.close()


# -- timing and output -----------------------------------------------------------------------


def test_latency_covers_the_server_time(
    claude: anthropic.Anthropic, api: FakeAnthropic, events: CapturedSignals
) -> None:
    api.delay_ms = 150
    create(claude)
    latency = only_exposure(events).latency_ms
    assert latency is not None
    assert 150 <= latency < 150 + 5000


def test_stream_latency_and_time_to_first_chunk(
    claude: anthropic.Anthropic, api: FakeAnthropic, events: CapturedSignals
) -> None:
    api.delay_ms, api.chunk_delay_ms = 120, 10
    sent = 3 + len(pieces()) + 3  # start, block start, ping, deltas, block stop, delta, stop
    with claude.messages.stream(model=MODEL, max_tokens=1024, messages=MESSAGES) as stream:
        stream.until_done()
    event = only_exposure(events)
    ttfc_ms = event.attributes["gen_ai.response.time_to_first_chunk"] * 1000  # type: ignore[operator]
    assert 120 <= ttfc_ms < 120 + 5000
    assert event.latency_ms is not None
    assert event.latency_ms >= 120 + 10 * (sent - 1)


def test_digest_and_captured_text_only_when_asked(
    api: FakeAnthropic, claude: anthropic.Anthropic, sk_client: sk.Client, events: CapturedSignals
) -> None:
    create(claude)
    assert "signalkit.output.sha256" not in only_exposure(events).attributes
    assert TEXT not in only_exposure(events).to_json().decode()
    events.clear()
    client = signalkit_anthropic.instrument(
        sdk(api), surface="reply-draft", client=sk_client, digest=True, capture_output=True
    )
    create(client)
    with client.messages.stream(model=MODEL, max_tokens=1024, messages=MESSAGES) as stream:
        stream.until_done()
    for event in exposures(events):
        assert event.attributes["signalkit.output.sha256"] == SHA
        assert event.attributes["signalkit.output.text"] == TEXT
    assert len(exposures(events)) == 2
    client.close()


def test_raw_response_wrappers_pass_untouched(
    claude: anthropic.Anthropic, events: CapturedSignals
) -> None:
    raw = claude.messages.with_raw_response.create(model=MODEL, max_tokens=1024, messages=MESSAGES)
    assert raw.headers["request-id"] == "req_test"
    assert raw.parse().content[0].text == TEXT  # type: ignore[union-attr]
    assert exposures(events) == []


# -- instrument / uninstrument ---------------------------------------------------------------


def test_uninstrument_restores_the_client(
    api: FakeAnthropic, sk_client: sk.Client, events: CapturedSignals
) -> None:
    client = sdk(api)
    originals = (client.messages._post, client.beta.messages._post)
    signalkit_anthropic.instrument(client, surface="reply-draft", client=sk_client)
    assert signalkit_anthropic.is_instrumented(client)
    assert signalkit_anthropic.uninstrument(client) is True
    assert (client.messages._post, client.beta.messages._post) == originals
    assert "with_options" not in vars(client)
    assert signalkit_anthropic.uninstrument(client) is False
    create(client)
    with client.messages.stream(model=MODEL, max_tokens=1024, messages=MESSAGES) as stream:
        stream.until_done()
    assert exposures(events) == []
    client.close()


def test_copies_from_with_options_are_instrumented(
    claude: anthropic.Anthropic, events: CapturedSignals
) -> None:
    create(claude.with_options(timeout=30))
    assert len(exposures(events)) == 1


def test_the_default_client_is_used_when_none_is_given(
    api: FakeAnthropic, signalkit_events: CapturedSignals
) -> None:
    client = signalkit_anthropic.instrument(
        sdk(api), surface="reply-draft", model_variant="prompt-v3"
    )
    create(client)
    event = signalkit_events.last
    assert isinstance(event, ExposureEvent)
    assert event.model == sk.ModelRef(name=SERVED, variant="prompt-v3")
    client.close()


def test_instrument_rejects_bad_arguments(api: FakeAnthropic) -> None:
    with pytest.raises(sk.ConfigError, match=r"anthropic\.Anthropic"):
        signalkit_anthropic.instrument(object(), surface="reply-draft")
    client = sdk(api)
    with pytest.raises(sk.ConfigError, match="surface"):
        signalkit_anthropic.instrument(client, surface="x" * 300)
    with pytest.raises(sk.ConfigError, match="model_variant"):
        signalkit_anthropic.instrument(client, surface="s", model_variant=3)  # type: ignore[arg-type]
    assert not signalkit_anthropic.is_instrumented(client)
    client.close()


def test_a_missing_sdk_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['anthropic'] = None\n"
        "import signalkit_anthropic\n"
        "try:\n"
        "    signalkit_anthropic.instrument(object(), surface='s')\n"
        "except signalkit_anthropic.SdkNotInstalled as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert signalkit_anthropic.INSTALL_HINT in out.stdout


# -- the README's example, run as written ----------------------------------------------------


def readme_example(readme: Path) -> str:
    text = readme.read_text()
    start = text.index("```python\n") + len("```python\n")
    return text[start : text.index("```", start)]


def test_readme_example_runs_as_written(api: FakeAnthropic, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(readme_example(Path(__file__).parent.parent / "README.md"))
    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": api.base_url,
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "SIGNALKIT_DIR": str(tmp_path / "signals"),
    }
    subprocess.run([sys.executable, str(script)], env=env, cwd=tmp_path, check=True, timeout=60)
    with open(tmp_path / "signals" / "events.jsonl", "rb") as lines:
        exposure, correction, outcome = list(read_jsonl(lines))
    assert isinstance(exposure, ExposureEvent)
    assert isinstance(correction, CorrectionEvent)
    assert exposure.surface == "reply-draft"
    assert exposure.attributes["gen_ai.response.id"] == api.ids[0]
    assert exposure.attributes["signalkit.output.sha256"] == SHA  # what the agent was shown
    assert correction.exposure_id == outcome.exposure_id == exposure.id
    assert correction.original == TEXT
    assert correction.corrected.startswith("Hi Sam, so sorry for the double charge!")
    assert 0.5 < correction.similarity < 1
