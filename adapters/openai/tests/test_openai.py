"""signalkit-openai with the real ``openai.OpenAI`` / ``openai.AsyncOpenAI`` clients pointed at a
fake OpenAI API on 127.0.0.1 (``openai_server.py``): what is recorded for each completion,
that what the client returns is untouched, streams, errors, timing, digest, uninstrument."""

from __future__ import annotations

import gc
import hashlib
import os
import subprocess
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest
import signalkit_openai
from openai_server import TEXT, FakeOpenAI, pieces

import signalkit as sk
from signalkit import _genai
from signalkit.events import CorrectionEvent, ExposureEvent, read_jsonl
from signalkit.testing import CapturedSignals, capture_signals

SECRET = "openai-adapter-test-secret-0123456789"
MODEL = "gpt-4o-mini"
SERVED = "gpt-4o-mini-2024-07-18"
MESSAGES: list[Any] = [{"role": "user", "content": "Where is my refund?"}]
SHA = hashlib.sha256(TEXT.encode()).hexdigest()


@pytest.fixture(scope="module")
def api() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh(api: FakeOpenAI) -> Iterator[None]:
    api.text, api.delay_ms, api.chunk_delay_ms = TEXT, 0, 0
    api.fail = api.cut_after = api.body = None
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


def sdk(api: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(base_url=api.base_url, api_key="sk-test", max_retries=0)


def async_sdk(api: FakeOpenAI) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=api.base_url, api_key="sk-test", max_retries=0)


@pytest.fixture
def plain(api: FakeOpenAI) -> Iterator[openai.OpenAI]:
    client = sdk(api)
    yield client
    client.close()


@pytest.fixture
def oai(api: FakeOpenAI, sk_client: sk.Client) -> Iterator[openai.OpenAI]:
    client = signalkit_openai.instrument(sdk(api), surface="reply-draft", client=sk_client)
    yield client
    client.close()


@pytest.fixture
async def aoai(api: FakeOpenAI, sk_client: sk.Client) -> AsyncIterator[openai.AsyncOpenAI]:
    client = signalkit_openai.instrument(async_sdk(api), surface="reply-draft", client=sk_client)
    yield client
    await client.close()


def exposures(events: CapturedSignals) -> list[ExposureEvent]:
    return [e for e in events.of_kind("exposure") if isinstance(e, ExposureEvent)]


def only_exposure(events: CapturedSignals) -> ExposureEvent:
    found = exposures(events)
    assert len(found) == 1, f"expected one exposure, got {len(found)}"
    return found[0]


def chat(client: Any, **kwargs: Any) -> Any:
    return client.chat.completions.create(model=MODEL, messages=MESSAGES, **kwargs)


# -- one completion, one exposure ------------------------------------------------------------


def test_chat_completion_is_recorded_as_one_exposure(
    oai: openai.OpenAI, api: FakeOpenAI, events: CapturedSignals
) -> None:
    result = chat(oai)
    event = only_exposure(events)
    assert event.surface == "reply-draft"
    assert event.model == sk.ModelRef(name=SERVED)  # the model that answered
    assert event.latency_ms is not None
    assert event.latency_ms > 0
    assert event.attributes == {
        "gen_ai.provider.name": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": MODEL,
        "gen_ai.response.model": SERVED,
        "gen_ai.response.id": api.ids[0],
        "gen_ai.response.finish_reasons": "stop",
        "gen_ai.usage.input_tokens": 42,
        "gen_ai.usage.output_tokens": 19,
        "gen_ai.usage.cache_read.input_tokens": 8,
        "gen_ai.usage.reasoning.output_tokens": 0,
        "signalkit.output.chars": len(TEXT),
    }
    assert result.id == api.ids[0]


def test_the_result_is_what_the_uninstrumented_client_returns(
    oai: openai.OpenAI, plain: openai.OpenAI
) -> None:
    result, expected = chat(oai), chat(plain)
    assert type(result) is type(expected) is openai.types.chat.ChatCompletion
    assert result == expected
    response = oai.responses.create(model=MODEL, input="Where is my refund?")
    assert response == plain.responses.create(model=MODEL, input="Where is my refund?")
    assert response.output_text == TEXT


def test_current_exposure_and_exposure_of_give_the_recorded_exposure(
    oai: openai.OpenAI, sk_client: sk.Client, events: CapturedSignals
) -> None:
    assert sk.current_exposure() is None
    result = chat(oai)
    exposure = sk.current_exposure()
    assert exposure is not None
    assert signalkit_openai.exposure_of(result) is exposure
    event = only_exposure(events)
    assert exposure.id == event.id
    claims = sk_client.verify(exposure.token)  # the token carries the model that answered
    assert claims.exposure_id == event.id
    assert claims.model == event.model
    assert signalkit_openai.exposure_of(object()) is None


async def test_async_chat_completion(
    aoai: openai.AsyncOpenAI, api: FakeOpenAI, events: CapturedSignals
) -> None:
    result = await aoai.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert isinstance(result, openai.types.chat.ChatCompletion)
    event = only_exposure(events)
    assert event.attributes["gen_ai.response.id"] == result.id == api.ids[0]
    exposure = sk.current_exposure()
    assert exposure is not None
    assert exposure.id == event.id
    assert signalkit_openai.exposure_of(result) is exposure


def test_threads_each_get_their_own_exposure(oai: openai.OpenAI, events: CapturedSignals) -> None:
    def one(n: int) -> tuple[str, str | None]:
        result = oai.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"question {n}"}]
        )
        exposure = sk.current_exposure()
        assert exposure is signalkit_openai.exposure_of(result)
        return result.id, None if exposure is None else exposure.id

    with ThreadPoolExecutor(8) as pool:
        pairs = list(pool.map(one, range(40)))
    recorded = {e.attributes["gen_ai.response.id"]: e.id for e in exposures(events)}
    assert len(recorded) == 40
    assert dict(pairs) == recorded


# -- streams ---------------------------------------------------------------------------------


def test_stream_is_recorded_when_it_ends_and_iterates_unchanged(
    oai: openai.OpenAI, plain: openai.OpenAI, api: FakeOpenAI, events: CapturedSignals
) -> None:
    options = {"stream": True, "stream_options": {"include_usage": True}}
    expected = [c.model_dump() for c in chat(plain, **options)]
    stream = chat(oai, **options)
    assert type(stream) is openai.Stream
    exposure = sk.current_exposure()
    assert exposure is not None
    assert signalkit_openai.exposure_of(stream) is exposure
    chunks = []
    for chunk in stream:
        chunks.append(chunk.model_dump())
        assert not exposures(events)  # not before the stream ends
    assert chunks == expected
    event = only_exposure(events)
    assert event.id == exposure.id
    attrs = event.attributes
    assert attrs["signalkit.stream.end"] == "complete"
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.response.id"] == api.ids[-1]
    assert attrs["gen_ai.response.finish_reasons"] == "stop"
    assert attrs["gen_ai.usage.output_tokens"] == 19
    assert attrs["signalkit.output.chars"] == len(TEXT)
    assert 0 < attrs["gen_ai.response.time_to_first_chunk"] * 1000 <= event.latency_ms  # type: ignore[operator]
    assert event.model.name == SERVED


def test_a_token_taken_before_the_first_chunk_and_the_event_agree(
    oai: openai.OpenAI, sk_client: sk.Client, events: CapturedSignals
) -> None:
    stream = chat(oai, stream=True)
    exposure = sk.current_exposure()
    assert exposure is not None
    token = exposure.token  # sent to the browser before the answer streams in
    exposure.attributes = {"ticket": "T-1234"}  # the caller's own context, set meanwhile
    list(stream)
    event = only_exposure(events)
    assert sk_client.verify(token).model == event.model == sk.ModelRef(name=MODEL)
    assert event.attributes["gen_ai.response.model"] == SERVED
    assert event.attributes["ticket"] == "T-1234"


def test_stream_read_with_next_is_recorded(oai: openai.OpenAI, events: CapturedSignals) -> None:
    stream = chat(oai, stream=True)
    count = 0
    while True:
        try:
            next(stream)
        except StopIteration:
            break
        count += 1
    assert count == len(pieces()) + 2
    assert only_exposure(events).attributes["signalkit.stream.end"] == "complete"


async def test_async_stream_is_recorded_when_it_ends(
    aoai: openai.AsyncOpenAI, api: FakeOpenAI, events: CapturedSignals
) -> None:
    plain = async_sdk(api)
    expected = [
        c.model_dump()
        async for c in await plain.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True
        )
    ]
    await plain.close()
    stream = await aoai.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    assert type(stream) is openai.AsyncStream
    chunks = [c.model_dump() async for c in stream]
    assert chunks == expected
    event = only_exposure(events)
    assert event.attributes["signalkit.stream.end"] == "complete"
    assert event.attributes["gen_ai.response.id"] == api.ids[-1]
    current = sk.current_exposure()
    assert current is not None
    assert current.id == event.id


def test_stream_closed_early_records_what_was_shown(
    oai: openai.OpenAI, events: CapturedSignals
) -> None:
    stream = chat(oai, stream=True)
    shown = ""
    for n, chunk in enumerate(stream):
        shown += chunk.choices[0].delta.content or ""
        if n == 3:
            break
    assert not exposures(events)
    stream.close()
    event = only_exposure(events)
    attrs = event.attributes
    assert attrs["signalkit.stream.end"] == "closed"
    assert attrs["signalkit.output.chars"] == len(shown) == 3 * 12
    assert "gen_ai.response.finish_reasons" not in attrs  # it never finished
    stream.close()  # closing twice records nothing more
    assert len(exposures(events)) == 1


def test_stream_left_through_its_with_block_is_recorded_closed(
    oai: openai.OpenAI, events: CapturedSignals
) -> None:
    with chat(oai, stream=True) as stream:
        for _ in stream:
            break
    assert only_exposure(events).attributes["signalkit.stream.end"] == "closed"


def test_stream_dropped_without_close_is_recorded_when_collected(
    oai: openai.OpenAI, events: CapturedSignals
) -> None:
    stream = chat(oai, stream=True)
    next(stream)
    del stream
    gc.collect()
    assert only_exposure(events).attributes["signalkit.stream.end"] == "closed"


def test_stream_closed_before_its_first_chunk_records_nothing(
    oai: openai.OpenAI, events: CapturedSignals
) -> None:
    stream = chat(oai, stream=True)
    stream.close()
    del stream
    gc.collect()
    assert exposures(events) == []


async def test_async_stream_closed_early(aoai: openai.AsyncOpenAI, events: CapturedSignals) -> None:
    stream = await aoai.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    async for _ in stream:
        break
    await stream.close()
    assert only_exposure(events).attributes["signalkit.stream.end"] == "closed"
    async with await aoai.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True
    ) as second:
        async for _ in second:
            break
    assert [e.attributes["signalkit.stream.end"] for e in exposures(events)] == [
        "closed",
        "closed",
    ]


def test_stream_broken_midway_records_an_error_and_raises_unchanged(
    oai: openai.OpenAI, plain: openai.OpenAI, api: FakeOpenAI, events: CapturedSignals
) -> None:
    api.cut_after = 4  # the connection drops after 4 events

    def read_all(client: openai.OpenAI, seen: list[Any]) -> BaseException:
        try:
            seen.extend(chat(client, stream=True))
        except Exception as exc:
            return exc
        raise AssertionError("the stream did not fail")

    expected = read_all(plain, [])
    seen: list[Any] = []
    raised = read_all(oai, seen)
    assert type(raised) is type(expected)  # APIConnectionError in current SDKs
    assert str(raised) == str(expected)
    assert len(seen) == 4
    attrs = only_exposure(events).attributes
    assert attrs["signalkit.stream.end"] == "error"
    assert attrs["error.type"] == type(expected).__qualname__
    assert attrs["signalkit.output.chars"] == 3 * 12


# -- failures --------------------------------------------------------------------------------

ERROR = (
    400,
    {
        "error": {
            "message": "Invalid value for 'temperature'.",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "invalid_value",
        }
    },
)


def test_api_error_propagates_unchanged_and_records_nothing(
    oai: openai.OpenAI, plain: openai.OpenAI, api: FakeOpenAI, events: CapturedSignals
) -> None:
    api.fail = ERROR
    with pytest.raises(openai.BadRequestError) as expected:
        chat(plain)
    with pytest.raises(openai.BadRequestError) as raised:
        chat(oai)
    assert str(raised.value) == str(expected.value)
    assert raised.value.body == expected.value.body
    assert raised.value.status_code == 400
    with pytest.raises(openai.BadRequestError):
        chat(oai, stream=True)
    assert exposures(events) == []
    assert sk.current_exposure() is None


async def test_async_api_error_records_nothing(
    aoai: openai.AsyncOpenAI, api: FakeOpenAI, events: CapturedSignals
) -> None:
    api.fail = ERROR
    with pytest.raises(openai.BadRequestError):
        await aoai.chat.completions.create(model=MODEL, messages=MESSAGES)
    with pytest.raises(openai.BadRequestError):
        await aoai.responses.create(model=MODEL, input="hi", stream=True)
    assert exposures(events) == []


def test_connection_refused_records_nothing(sk_client: sk.Client, events: CapturedSignals) -> None:
    client = signalkit_openai.instrument(
        openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="k", max_retries=0),
        surface="reply-draft",
        client=sk_client,
    )
    with pytest.raises(openai.APIConnectionError):
        chat(client)
    assert exposures(events) == []


def test_a_recording_failure_never_breaks_the_call(api: FakeOpenAI) -> None:
    lenient = sk.Client("test", exporters=[sk.MemoryExporter()], secret=SECRET, exit_timeout_s=0)
    client = signalkit_openai.instrument(sdk(api), surface="reply-draft", client=lenient)
    lenient.shutdown(timeout=1)  # every recording is now refused
    result = chat(client)
    assert result.choices[0].message.content == TEXT
    assert list(chat(client, stream=True))
    assert lenient.stats.rejected.get("after_shutdown") == 2
    client.close()


def test_an_unexpected_response_shape_is_recorded_as_far_as_it_goes(
    oai: openai.OpenAI, api: FakeOpenAI, events: CapturedSignals
) -> None:
    api.body = {"id": "chatcmpl-odd", "object": "chat.completion", "choices": None}
    result = chat(oai)
    assert result.id == "chatcmpl-odd"
    attrs = only_exposure(events).attributes
    assert attrs["gen_ai.response.id"] == "chatcmpl-odd"
    assert "gen_ai.response.model" not in attrs


# -- timing ----------------------------------------------------------------------------------


def test_latency_covers_the_server_time(
    oai: openai.OpenAI, api: FakeOpenAI, events: CapturedSignals
) -> None:
    api.delay_ms = 150
    chat(oai)
    latency = only_exposure(events).latency_ms
    assert latency is not None
    assert 150 <= latency < 150 + 5000


def test_stream_latency_and_time_to_first_chunk(
    oai: openai.OpenAI, api: FakeOpenAI, events: CapturedSignals
) -> None:
    api.delay_ms, api.chunk_delay_ms = 120, 10
    events_sent = len(pieces()) + 3  # role chunk, pieces, finish chunk, [DONE]
    list(chat(oai, stream=True))
    event = only_exposure(events)
    ttfc_ms = event.attributes["gen_ai.response.time_to_first_chunk"] * 1000  # type: ignore[operator]
    assert 120 <= ttfc_ms < 120 + 5000
    assert event.latency_ms is not None
    assert event.latency_ms >= 120 + 10 * (events_sent - 1)
    assert event.latency_ms > ttfc_ms


# -- what of the output is kept --------------------------------------------------------------


def test_no_output_digest_or_text_unless_asked(oai: openai.OpenAI, events: CapturedSignals) -> None:
    chat(oai)
    list(chat(oai, stream=True))
    for event in exposures(events):
        assert "signalkit.output.sha256" not in event.attributes
        assert "signalkit.output.text" not in event.attributes
        assert TEXT not in event.to_json().decode()


def test_digest_is_the_sha256_of_the_text_shown(
    api: FakeOpenAI, sk_client: sk.Client, events: CapturedSignals
) -> None:
    client = signalkit_openai.instrument(
        sdk(api), surface="reply-draft", client=sk_client, digest=True
    )
    chat(client)
    list(chat(client, stream=True))
    client.responses.create(model=MODEL, input="hi")
    list(client.responses.create(model=MODEL, input="hi", stream=True))
    digests = [e.attributes["signalkit.output.sha256"] for e in exposures(events)]
    assert digests == [SHA] * 4
    assert all("signalkit.output.text" not in e.attributes for e in exposures(events))
    client.close()


def test_capture_output_keeps_the_text_cut_to_1024_characters(
    api: FakeOpenAI, sk_client: sk.Client, events: CapturedSignals
) -> None:
    client = signalkit_openai.instrument(
        sdk(api), surface="reply-draft", client=sk_client, capture_output=True
    )
    chat(client)
    api.text = "x" * 1500
    list(chat(client, stream=True))
    short, long = exposures(events)
    assert short.attributes["signalkit.output.text"] == TEXT
    assert "signalkit.output.truncated" not in short.attributes
    assert long.attributes["signalkit.output.text"] == "x" * 1024
    assert long.attributes["signalkit.output.truncated"] is True
    assert long.attributes["signalkit.output.chars"] == 1500
    client.close()


# -- the Responses API and the stream helpers ------------------------------------------------


def test_responses_api_sync_and_streamed(
    oai: openai.OpenAI, api: FakeOpenAI, events: CapturedSignals
) -> None:
    response = oai.responses.create(model=MODEL, input="Where is my refund?")
    assert signalkit_openai.exposure_of(response) is sk.current_exposure()
    stream = oai.responses.create(model=MODEL, input="Where is my refund?", stream=True)
    kinds = [e.type for e in stream]
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    whole, streamed = exposures(events)
    for event in (whole, streamed):
        attrs = event.attributes
        assert attrs["gen_ai.response.model"] == SERVED
        assert attrs["gen_ai.response.finish_reasons"] == "completed"
        assert attrs["gen_ai.usage.input_tokens"] == 36
        assert attrs["gen_ai.usage.reasoning.output_tokens"] == 5
        assert attrs["signalkit.output.chars"] == len(TEXT)
    assert whole.attributes["gen_ai.response.id"] == response.id == api.ids[0]
    assert streamed.attributes["gen_ai.response.id"] == api.ids[1]
    assert streamed.attributes["signalkit.stream.end"] == "complete"


async def test_async_responses_api(
    aoai: openai.AsyncOpenAI, api: FakeOpenAI, events: CapturedSignals
) -> None:
    response = await aoai.responses.create(model=MODEL, input="hi")
    assert response.output_text == TEXT
    stream = await aoai.responses.create(model=MODEL, input="hi", stream=True)
    async for _ in stream:
        pass
    assert [e.attributes["gen_ai.response.id"] for e in exposures(events)] == api.ids
    assert api.ids[0] == response.id


def test_stream_helpers_are_recorded(oai: openai.OpenAI, events: CapturedSignals) -> None:
    with oai.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        for _ in stream:
            pass
        completion = stream.get_final_completion()
        exposure = signalkit_openai.exposure_of(stream)
    assert completion.choices[0].message.content == TEXT
    with oai.responses.stream(model=MODEL, input="hi") as rstream:
        for event in rstream:
            if event.type == "response.output_text.delta":
                break  # the reader stopped after the first words
    chat_event, responses_event = exposures(events)
    assert exposure is not None
    assert exposure.id == chat_event.id
    assert chat_event.attributes["signalkit.stream.end"] == "complete"
    assert responses_event.attributes["signalkit.stream.end"] == "closed"
    assert responses_event.attributes["signalkit.output.chars"] == 12


async def test_async_stream_helper(aoai: openai.AsyncOpenAI, events: CapturedSignals) -> None:
    async with aoai.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        async for _ in stream:
            pass
    assert only_exposure(events).attributes["signalkit.stream.end"] == "complete"


def test_parse_is_recorded(oai: openai.OpenAI, events: CapturedSignals) -> None:
    parsed = oai.chat.completions.parse(model=MODEL, messages=MESSAGES)
    assert parsed.choices[0].message.content == TEXT
    assert signalkit_openai.exposure_of(parsed) is sk.current_exposure() is not None
    assert only_exposure(events).attributes["gen_ai.response.id"] == parsed.id


def test_raw_and_streaming_response_wrappers_pass_untouched(
    oai: openai.OpenAI, events: CapturedSignals
) -> None:
    raw = oai.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    assert raw.headers["x-request-id"] == "req_test"
    assert raw.parse().choices[0].message.content == TEXT
    with oai.chat.completions.with_streaming_response.create(
        model=MODEL, messages=MESSAGES
    ) as response:
        assert response.parse().choices[0].message.content == TEXT
    assert exposures(events) == []


# -- instrument / uninstrument ---------------------------------------------------------------


def test_uninstrument_restores_the_client(
    api: FakeOpenAI, sk_client: sk.Client, events: CapturedSignals
) -> None:
    client = sdk(api)
    originals = (client.chat.completions._post, client.responses._post)
    signalkit_openai.instrument(client, surface="reply-draft", client=sk_client)
    assert signalkit_openai.is_instrumented(client)
    assert client.chat.completions._post != originals[0]
    stream = chat(client, stream=True)  # opened while instrumented...
    assert signalkit_openai.uninstrument(client) is True
    assert (client.chat.completions._post, client.responses._post) == originals
    assert "copy" not in vars(client)
    assert "with_options" not in vars(client)
    assert not signalkit_openai.is_instrumented(client)
    assert signalkit_openai.uninstrument(client) is False
    list(stream)  # ...is still recorded when it ends
    chat(client)
    list(chat(client, stream=True))
    client.responses.create(model=MODEL, input="hi")
    assert len(exposures(events)) == 1
    client.close()


def test_instrument_again_replaces_the_settings(
    oai: openai.OpenAI, sk_client: sk.Client, events: CapturedSignals
) -> None:
    signalkit_openai.instrument(oai, surface="summary", client=sk_client, model_variant="v2")
    chat(oai)
    event = only_exposure(events)
    assert event.surface == "summary"
    assert event.model == sk.ModelRef(name=SERVED, variant="v2")


def test_copies_from_with_options_are_instrumented(
    oai: openai.OpenAI, events: CapturedSignals
) -> None:
    chat(oai.with_options(timeout=30))
    chat(oai.copy(max_retries=1))
    assert len(exposures(events)) == 2
    signalkit_openai.uninstrument(oai)
    chat(oai.with_options(timeout=30))
    assert len(exposures(events)) == 2


def test_the_default_client_is_used_when_none_is_given(
    api: FakeOpenAI, signalkit_events: CapturedSignals
) -> None:
    client = signalkit_openai.instrument(
        sdk(api), surface="reply-draft", attributes={"prompt": "v3"}
    )
    chat(client)
    event = signalkit_events.last
    assert isinstance(event, ExposureEvent)
    assert event.attributes["prompt"] == "v3"
    assert event.attributes["gen_ai.response.id"] == api.ids[0]
    client.close()


def test_instrument_rejects_bad_arguments(api: FakeOpenAI) -> None:
    with pytest.raises(sk.ConfigError, match=r"openai\.OpenAI"):
        signalkit_openai.instrument(object(), surface="reply-draft")
    client = sdk(api)
    with pytest.raises(sk.ConfigError, match="surface"):
        signalkit_openai.instrument(client, surface="")
    with pytest.raises(sk.ConfigError, match=r"attributes\.nested"):
        signalkit_openai.instrument(client, surface="s", attributes={"nested": {"a": 1}})  # type: ignore[dict-item]
    with pytest.raises(sk.ConfigError, match="client"):
        signalkit_openai.instrument(client, surface="s", client="default")  # type: ignore[arg-type]
    with pytest.raises(sk.ConfigError, match="digest"):
        signalkit_openai.instrument(client, surface="s", digest="yes")  # type: ignore[arg-type]
    assert not signalkit_openai.is_instrumented(client)
    client.close()


def test_a_missing_sdk_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['openai'] = None\n"
        "import signalkit_openai\n"
        "try:\n"
        "    signalkit_openai.instrument(object(), surface='s')\n"
        "except signalkit_openai.SdkNotInstalled as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert signalkit_openai.INSTALL_HINT in out.stdout
    assert issubclass(signalkit_openai.SdkNotInstalled, sk.ConfigError)


def test_exposure_of_keeps_no_response_alive_and_stays_bounded(
    oai: openai.OpenAI, events: CapturedSignals
) -> None:
    result = chat(oai)
    ref = weakref.ref(result)
    assert signalkit_openai.exposure_of(result) is not None
    del result
    gc.collect()
    assert ref() is None
    kept = [threading.Event() for _ in range(_genai._REMEMBER_MAX + 100)]
    exposure = sk.current_exposure()
    assert exposure is not None
    for obj in kept:
        _genai.remember(obj, exposure)
    assert len(_genai._remembered) <= _genai._REMEMBER_MAX
    assert signalkit_openai.exposure_of(kept[-1]) is exposure
    assert signalkit_openai.exposure_of(kept[0]) is None  # the oldest went first


# -- the README's example, run as written ----------------------------------------------------


def readme_example(readme: Path) -> str:
    text = readme.read_text()
    start = text.index("```python\n") + len("```python\n")
    return text[start : text.index("```", start)]


def test_readme_example_runs_as_written(api: FakeOpenAI, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(readme_example(Path(__file__).parent.parent / "README.md"))
    env = {
        **os.environ,
        "OPENAI_BASE_URL": api.base_url,
        "OPENAI_API_KEY": "sk-test",
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
    assert correction.corrected.startswith("Hi Sam, thanks for your patience!")
    assert 0.5 < correction.similarity < 1
