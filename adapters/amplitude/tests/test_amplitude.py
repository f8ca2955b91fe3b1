"""signalkit-amplitude against a real HTTP server on 127.0.0.1 (tests/sinks.py): the HTTP V2
request Amplitude documents, every signal kind mapped, identity, limits, retries, 413 and 400
splitting, 429 waits, secrets, and the Amplitude SDK sending the same events (those tests need
``amplitude-analytics`` installed)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import signalkit_amplitude
from signalkit_amplitude import AmplitudeExporter, AmplitudeSdkExporter, to_amplitude_event

import signalkit as sk
from signalkit import ConfigError, ExportFailure, ExportResult, RetryPolicy
from sinks import FaultySink, ReceivedRequest, Respond

SECRET = "s" * 32
API_KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
T0 = datetime(2026, 11, 6, 8, 49, 37, 123456, tzinfo=UTC)
T0_MS = 1793954977123  # T0 in whole milliseconds since the epoch
EXPOSURE_ID = "019a5a2e-1c63-7000-8000-000000000001"
FAST = RetryPolicy(base_s=0.01, cap_s=0.02, pause_s=0.05)
LIBRARY = f"signalkit-amplitude/{signalkit_amplitude.__version__}"


# -- events and helpers --------------------------------------------------------------------------


def event_id(n: int) -> str:
    return f"019a5a2e-1c63-7000-8000-{n:012d}"


def every_kind(subject: sk.Subject | None = None) -> list[sk.Event]:
    """One event of each kind about one exposure, every field filled in."""
    score = sk.Score(
        strength=0.6,
        polarity=1.0,
        reasons=(
            sk.Reason(factor="base", effect=0.6, note="an accept is a medium signal"),
            sk.Reason(factor="time_to_action", effect=1.25),
        ),
        policy="default@1",
    )
    common: dict[str, Any] = {
        "service": "support-assistant",
        "exposure_id": EXPOSURE_ID,
        "producer_id": "19e760ca49c216dc",
        "subject": subject
        or sk.Subject(
            user_id="user-1", anonymous_id="anon-1", session_id="sess-1", tenant_id="acme"
        ),
        "model": sk.ModelRef(name="drafter", version="v7", variant="b"),
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "span_id": "b7ad6b7169203331",
        "attributes": {"plan": "pro", "seats": 12, "ratio": 0.5, "beta": True},
        "score": score,
    }

    def at(n: int) -> dict[str, Any]:
        return {"id": event_id(n), "seq": n, "ts": T0 + timedelta(seconds=n - 1), **common}

    return [
        sk.ExposureEvent(
            **{**at(1), "id": EXPOSURE_ID},
            surface="reply-draft",
            items=(sk.Item(id="doc-1", position=0, propensity=0.5), sk.Item(id="doc-2")),
            latency_ms=812.5,
        ),
        sk.ActionEvent(**at(2), action="accepted", item_id="doc-1", time_to_action_ms=850.0),
        sk.CorrectionEvent(
            **at(3),
            original="Dear sir,",
            corrected="Hi Sam,",
            edit_distance=7,
            similarity=0.25,
            time_to_action_ms=4000.0,
        ),
        sk.ToggleEvent(
            **at(4), state="collapsed", element="why", dwell_ms=1500.0, time_to_action_ms=2000.0
        ),
        sk.OutcomeEvent(
            **at(5), name="ticket_resolved", value=1.0, success=True, delay_ms=3_600_000.0
        ),
        sk.FeedbackEvent(
            **at(6),
            rating=4.0,
            scale=(1.0, 5.0),
            choice="B",
            comment="good tone",
            time_to_action_ms=9000.0,
        ),
    ]


def record_every_kind(client: sk.Client, **subject: Any) -> list[str]:
    """Record one of each kind through ``client``; return their ids in record order."""
    with client.exposure("reply-draft", model="drafter", model_version="v7", **subject) as exp:
        exp.items = ["doc-1", "doc-2"]
    events = [
        exp.event,
        client.action(exp, "accepted", item_id="doc-1"),
        client.correction(exp, original="Dear sir,", corrected="Hi Sam,"),
        client.toggle(exp, "expanded", element="why"),
        client.toggle(exp, "collapsed", element="why"),
        client.outcome(exp, "ticket_resolved", value=1.0, success=True),
        client.feedback(exp, rating=-1, comment="wrong tone"),
    ]
    return [e.id for e in events if e is not None]


def insert_ids(requests: list[ReceivedRequest]) -> list[str]:
    return [e["insert_id"] for r in requests for e in r.events]


@pytest.fixture
def sink() -> Iterator[FaultySink]:
    with FaultySink() as s:
        yield s


def exporter_for(sink: FaultySink, **options: Any) -> AmplitudeExporter:
    return AmplitudeExporter(API_KEY, host=sink.base_url, **options)


def client_for(exporter: sk.Exporter, **options: Any) -> sk.Client:
    options.setdefault("flush_interval_s", 60.0)  # nothing leaves before flush()
    return sk.Client("adapter-tests", exporters=[exporter], secret=SECRET, **options)


# -- the request Amplitude documents -------------------------------------------------------------


def test_a_batch_is_one_http_v2_request_in_the_documented_shape(sink: FaultySink) -> None:
    events = every_kind()

    assert exporter_for(sink).export(events) is ExportResult.SUCCESS

    (request,) = sink.requests
    assert request.method == "POST"
    assert request.path == "/2/httpapi"
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers  # the key travels in the body
    assert "content-encoding" not in request.headers  # plain JSON, as Amplitude's SDKs send
    body = request.json()
    assert list(body) == ["api_key", "events", "options"]
    assert body["api_key"] == API_KEY
    assert body["options"] == {"min_id_length": 1}  # short user ids are let through
    sent = body["events"]
    assert [e["event_type"] for e in sent] == [
        "signalkit.exposure",
        "signalkit.action",
        "signalkit.correction",
        "signalkit.toggle",
        "signalkit.outcome",
        "signalkit.feedback",
    ]
    for n, (event, amp) in enumerate(zip(events, sent, strict=True)):
        assert amp["insert_id"] == event.id  # the dedupe key is the signalkit event id
        assert amp["time"] == T0_MS + 1000 * n  # milliseconds since the epoch
        assert (amp["user_id"], amp["device_id"]) == ("user-1", "anon-1")
        assert amp["library"] == LIBRARY
    assert sent == [to_amplitude_event(e) for e in events]


def test_the_batch_api_and_no_options_can_be_chosen(sink: FaultySink) -> None:
    exporter = exporter_for(sink, api="batch", min_id_length=None)
    assert exporter.max_batch_bytes == 20_000_000
    assert exporter.export(every_kind()[:1]) is ExportResult.SUCCESS
    (request,) = sink.requests
    assert request.path == "/batch"
    assert list(request.json()) == ["api_key", "events"]


def test_gzip_and_proxy_headers_are_sent_when_asked_for(sink: FaultySink) -> None:
    exporter = exporter_for(sink, gzip_threshold_bytes=0, headers={"X-Proxy-Key": "pk-1"})
    assert exporter.export(every_kind()) is ExportResult.SUCCESS
    assert sink.requests[0].headers["content-encoding"] == "gzip"
    assert sink.requests[0].headers["x-proxy-key"] == "pk-1"


def test_the_defaults_are_amplitudes_documented_limits() -> None:
    exporter = AmplitudeExporter(API_KEY)
    assert exporter.name == "amplitude"
    assert exporter.endpoint == "https://api2.amplitude.com/2/httpapi"
    assert exporter.max_batch_events == 2000
    assert exporter.max_batch_bytes == 1_000_000
    eu = AmplitudeExporter(API_KEY, host="https://api.eu.amplitude.com")
    assert eu.endpoint == "https://api.eu.amplitude.com/2/httpapi"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"api_key": ""}, "api_key"),
        ({"api_key": "two words"}, "api_key"),
        ({"api": "v1"}, "api"),
        ({"min_id_length": 0}, "min_id_length"),
        ({"host": "api2.amplitude.com"}, "host"),
        ({"host": "https://key@api2.amplitude.com"}, "host"),
        ({"max_batch_bytes": 10}, "max_batch_bytes"),
    ],
)
def test_a_bad_argument_raises_config_error_naming_it(kwargs: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {"api_key": API_KEY, **kwargs}
    with pytest.raises(ConfigError, match=field):
        AmplitudeExporter(**arguments)


# -- the mapping ---------------------------------------------------------------------------------

COMMON = {
    "exposure_id": EXPOSURE_ID,
    "service": "support-assistant",
    "session_id": "sess-1",
    "tenant_id": "acme",
    "model": "drafter",
    "model_version": "v7",
    "model_variant": "b",
    "strength": 0.6,
    "polarity": 1.0,
    "score_policy": "default@1",
    "score_reasons": ["base=0.6", "time_to_action=1.25"],
    "trace_id": "0af7651916cd43dd8448eb211c80319c",
    "span_id": "b7ad6b7169203331",
    "producer_id": "19e760ca49c216dc",
    "attr.plan": "pro",
    "attr.seats": 12,
    "attr.ratio": 0.5,
    "attr.beta": True,
}

BY_KIND = {
    "exposure": {
        "surface": "reply-draft",
        "latency_ms": 812.5,
        "item_count": 2,
        "item_ids": ["doc-1", "doc-2"],
    },
    "action": {"action": "accepted", "item_id": "doc-1", "time_to_action_ms": 850.0},
    "correction": {
        "original": "Dear sir,",
        "corrected": "Hi Sam,",
        "original_chars": 9,
        "corrected_chars": 7,
        "edit_distance": 7,
        "similarity": 0.25,
        "time_to_action_ms": 4000.0,
    },
    "toggle": {
        "state": "collapsed",
        "element": "why",
        "dwell_ms": 1500.0,
        "time_to_action_ms": 2000.0,
    },
    "outcome": {
        "outcome": "ticket_resolved",
        "value": 1.0,
        "success": True,
        "delay_ms": 3_600_000.0,
    },
    "feedback": {
        "rating": 4.0,
        "scale_min": 1.0,
        "scale_max": 5.0,
        "choice": "B",
        "comment": "good tone",
        "time_to_action_ms": 9000.0,
    },
}


def test_every_kind_maps_to_a_named_event_with_its_measures() -> None:
    for n, event in enumerate(every_kind()):
        assert to_amplitude_event(event) == {
            "event_type": f"signalkit.{event.kind}",
            "user_id": "user-1",
            "device_id": "anon-1",
            "time": T0_MS + 1000 * n,
            "insert_id": event.id,
            "event_properties": {
                "kind": event.kind,
                "event_id": event.id,
                "seq": n + 1,
                **COMMON,
                **BY_KIND[event.kind],
            },
            "library": LIBRARY,
        }, event.kind


def test_the_event_prefix_names_the_events() -> None:
    assert to_amplitude_event(every_kind()[1], event_prefix="AI ")["event_type"] == "AI action"


@pytest.mark.parametrize(
    ("subject", "user", "device"),
    [
        (sk.Subject(user_id="u1"), "u1", None),  # shorter than 5: options let it through
        (sk.Subject(user_id="u-1", anonymous_id="a-1"), "u-1", "a-1"),
        (sk.Subject(anonymous_id="a-1", session_id="s-1"), None, "a-1"),
        (sk.Subject(session_id="s-1"), None, "session:s-1"),
        (sk.Subject(tenant_id="acme"), None, f"exposure:{EXPOSURE_ID}"),
        (sk.Subject(user_id="None", session_id="s-1"), None, "session:s-1"),
    ],
)
def test_user_id_is_the_user_and_device_id_the_anonymous_id_session_or_exposure(
    subject: sk.Subject, user: str | None, device: str | None
) -> None:
    for event in every_kind(subject):  # every event of one exposure: one person, one funnel
        mapped = to_amplitude_event(event)
        assert mapped.get("user_id") == user
        assert mapped.get("device_id") == device


def test_attributes_are_prefixed_so_they_cannot_shadow_signalkit_properties() -> None:
    event = every_kind()[1].model_copy(update={"attributes": {"kind": "spoof", "strength": 9}})
    props = to_amplitude_event(event)["event_properties"]
    assert (props["kind"], props["strength"]) == ("action", 0.6)
    assert (props["attr.kind"], props["attr.strength"]) == ("spoof", 9)


def test_a_long_text_is_cut_to_1024_characters_and_flagged() -> None:
    event = every_kind()[5].model_copy(update={"comment": "ü" * 5000})
    props = to_amplitude_event(event)["event_properties"]
    assert props["comment"] == "ü" * 1024
    assert props["truncated"] == ["comment"]
    assert "truncated" not in to_amplitude_event(every_kind()[5])["event_properties"]


def test_a_long_impression_list_is_capped_and_counted() -> None:
    items = tuple(sk.Item(id=f"document-{i:04d}") for i in range(300))
    props = to_amplitude_event(every_kind()[0].model_copy(update={"items": items}))
    assert props["event_properties"]["item_count"] == 300
    assert len(props["event_properties"]["item_ids"]) == 100
    assert props["event_properties"]["truncated"] == ["item_ids"]


def test_the_body_is_the_same_bytes_every_time() -> None:
    events = every_kind()
    exporter = AmplitudeExporter(API_KEY)
    assert exporter.encode(events, "2026-11-06T08:49:37Z") == exporter.encode(
        [e.model_copy() for e in events], "2030-01-01T00:00:00Z"
    )


# -- delivery through a client: limits, retries, splits ------------------------------------------


def test_every_kind_recorded_by_a_client_arrives_as_amplitude_events(sink: FaultySink) -> None:
    client = client_for(exporter_for(sink))
    try:
        ids = record_every_kind(client, user_id="user-1")
        assert client.flush(10)
    finally:
        client.shutdown(5)
    assert insert_ids(sink.requests) == ids
    assert [e["event_type"] for r in sink.requests for e in r.events] == [
        "signalkit.exposure",
        "signalkit.action",
        "signalkit.correction",
        "signalkit.toggle",
        "signalkit.toggle",
        "signalkit.outcome",
        "signalkit.feedback",
    ]
    assert client.stats.delivered == {"amplitude": 7}


def test_many_events_go_in_requests_within_2000_events_and_1_mb() -> None:
    # The sink enforces Amplitude's limits: a request over them would be answered 413.
    with FaultySink(max_events=2000, max_body_bytes=1_000_000) as sink:
        client = client_for(AmplitudeExporter(API_KEY, host=sink.base_url), batch_size=5000)
        try:
            with client.exposure("search", user_id="user-1") as exp:
                pass
            ids = [exp.id]
            for n in range(4499):
                event = client.action(exp, "clicked", item_id=f"doc-{n}")
                assert event is not None
                ids.append(event.id)
            assert client.flush(30)
        finally:
            client.shutdown(5)
        assert all(r.status == 200 for r in sink.requests)  # no 413: every request within limits
        assert len(sink.requests) >= 3
        assert all(len(r.events) <= 2000 for r in sink.requests)
        assert all(len(r.events) < 2000 for r in sink.requests)  # bytes did the cutting
        assert all(len(r.body) <= 1_000_000 for r in sink.requests)
        assert sorted(insert_ids(sink.requests)) == sorted(ids)
        assert client.stats.dropped == {}


def test_a_batch_over_2000_events_is_not_sent(sink: FaultySink) -> None:
    event = every_kind()[1]
    batch = [event.model_copy(update={"id": event_id(n)}) for n in range(2001)]
    result = exporter_for(sink).export(batch)
    assert isinstance(result, ExportFailure)
    assert result.too_large
    assert sink.requests == []


def test_a_retried_batch_is_byte_identical(sink: FaultySink) -> None:
    sink.script([503, Respond(429, retry_after=0), 200])
    client = client_for(exporter_for(sink, retry_policy=FAST))
    try:
        ids = record_every_kind(client, user_id="user-1")
        assert client.flush(10)
    finally:
        client.shutdown(5)
    first, second, third = sink.requests
    assert [r.status for r in sink.requests] == [503, 429, 200]
    assert first.raw_body == second.raw_body == third.raw_body
    assert insert_ids([third]) == ids
    assert client.stats.retried == 2


def test_a_413_splits_the_batch_and_a_single_oversized_event_is_dropped_and_counted() -> None:
    with FaultySink(max_body_bytes=8000) as sink:  # a proxy with a smaller limit than Amplitude
        client = client_for(AmplitudeExporter(API_KEY, host=sink.base_url), batch_size=100)
        try:
            with client.exposure("search", user_id="user-1") as exp:
                pass
            ids = [exp.id]
            for n in range(40):
                event = client.action(exp, "clicked", item_id=f"doc-{n}")
                assert event is not None
                ids.append(event.id)
            big = {f"k{i:02d}": "v" * 1000 for i in range(10)}  # about 10 KB as Amplitude JSON
            assert client.action(exp, "copied", attributes=big) is not None
            assert client.flush(20)
        finally:
            client.shutdown(5)
        assert 413 in [r.status for r in sink.requests]
        assert sorted(insert_ids([r for r in sink.requests if r.accepted])) == sorted(ids)
        assert client.stats.dropped == {"too_large": 1}


def test_a_400_for_invalid_events_splits_until_they_stand_alone_and_drops_only_them(
    sink: FaultySink,
) -> None:
    # Amplitude refuses the whole request when one event is invalid; here event 5 of 8 is.
    invalid = Respond(
        400,
        body=orjson.dumps(
            {
                "code": 400,
                "error": "Invalid field values on some events",
                "events_with_invalid_fields": {"time": [5]},
            }
        ),
    )
    sink.script([invalid, 200, invalid, invalid, 200, invalid, 200])
    client = client_for(exporter_for(sink, retry_policy=FAST))
    try:
        with client.exposure("search", user_id="user-1") as exp:
            pass
        ids = [exp.id] + [client.action(exp, "clicked").id for _ in range(7)]  # type: ignore[union-attr]
        assert client.flush(10)
    finally:
        client.shutdown(5)
    assert [len(r.events) for r in sink.requests] == [8, 4, 4, 2, 1, 1, 2]
    assert insert_ids([sink.requests[5]]) == [ids[5]]  # the one dropped
    delivered = insert_ids([r for r in sink.requests if r.accepted])
    assert delivered == ids[:5] + ids[6:]
    assert client.stats.dropped == {"rejected": 1}


def test_an_invalid_api_key_pauses_keeping_the_data_and_is_not_shown(sink: FaultySink) -> None:
    sink.respond_with(400, body=orjson.dumps({"code": 400, "error": f"Invalid API key: {API_KEY}"}))
    result = exporter_for(sink).export(every_kind())
    assert isinstance(result, ExportFailure)
    assert result.unauthorized
    assert not result.too_large
    assert API_KEY not in result.message
    assert "Invalid API key: [redacted]" in result.message


def test_a_key_cut_off_at_the_end_of_a_long_message_is_hidden_too(sink: FaultySink) -> None:
    said = "x" * 245 + f" Invalid API key: {API_KEY}"  # cut to 300 characters mid-key
    sink.respond_with(400, body=orjson.dumps({"code": 400, "error": said}))
    result = exporter_for(sink).export(every_kind())
    assert isinstance(result, ExportFailure)
    assert API_KEY[:4] not in result.message
    assert result.message.endswith("[redacted]…")


def test_a_429_waits_30_seconds_unless_amplitude_says_otherwise(sink: FaultySink) -> None:
    throttled = orjson.dumps(
        {"code": 429, "error": "Too many requests for some devices and users", "eps_threshold": 30}
    )
    sink.script([Respond(429, body=throttled), Respond(429, body=throttled, retry_after=5)])
    exporter = exporter_for(sink)
    first = exporter.export(every_kind())
    second = exporter.export(every_kind())
    assert isinstance(first, ExportFailure)
    assert isinstance(second, ExportFailure)
    assert (first.retryable, first.retry_after_s) == (True, 30.0)
    assert (second.retryable, second.retry_after_s) == (True, 5.0)


def test_the_api_key_never_shows_in_repr_or_messages(sink: FaultySink) -> None:
    exporter = exporter_for(sink)
    sink.respond_with(500, body=lambda r: r.body)  # a server that echoes the request
    result = exporter.export(every_kind()[:1])
    assert isinstance(result, ExportFailure)
    for text in (repr(exporter), exporter.endpoint, result.message):
        assert API_KEY not in text


# -- packaging -----------------------------------------------------------------------------------


def test_the_public_names_are_the_documented_ones() -> None:
    assert sorted(signalkit_amplitude.__all__) == [
        "AmplitudeExporter",
        "AmplitudeSdkExporter",
        "__version__",
        "to_amplitude_event",
    ]
    for name in signalkit_amplitude.__all__:
        assert getattr(signalkit_amplitude, name) is not None


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_importing_the_package_imports_neither_the_sdk_nor_httpx() -> None:
    done = run_python(
        "import sys, signalkit_amplitude\n"
        "signalkit_amplitude.AmplitudeExporter('k3y')\n"
        "print(sorted(m for m in ('amplitude', 'httpx') if m in sys.modules))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_sdk_exporter_without_the_sdk_says_how_to_install_it() -> None:
    done = run_python(
        "import sys; sys.modules['amplitude'] = None  # what a missing package looks like\n"
        "import signalkit, signalkit_amplitude\n"
        "try:\n"
        "    signalkit_amplitude.AmplitudeSdkExporter(object())\n"
        "except signalkit.ConfigError as exc:\n"
        "    print(exc)"
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'signalkit-amplitude[sdk]'" in done.stdout


# -- the Amplitude SDK ---------------------------------------------------------------------------


@pytest.fixture
def amplitude_client(sink: FaultySink) -> Iterator[Any]:
    """An ``amplitude.Amplitude`` sending to the sink, which answers as Amplitude does."""
    amplitude = pytest.importorskip("amplitude")
    sink.respond_with(200, body=b'{"code": 200, "events_ingested": 1}')
    config = amplitude.Config(
        server_url=sink.url,
        min_id_length=1,
        flush_queue_size=1000,  # the exporter's flush() sends, not the SDK's timer
        flush_interval_millis=2000,
        flush_max_retries=1,  # report a failure at once instead of retrying it
    )
    client = amplitude.Amplitude(API_KEY, config)
    yield client
    client.shutdown()


def test_the_sdk_sends_the_same_events_as_the_http_api(
    sink: FaultySink, amplitude_client: Any
) -> None:
    events = every_kind()

    assert AmplitudeSdkExporter(amplitude_client).export(events) is ExportResult.SUCCESS

    (request,) = sink.requests
    by_sdk = request.json()
    by_http = orjson.loads(AmplitudeExporter(API_KEY).encode(events, ""))
    assert (by_sdk["api_key"], by_sdk["options"]) == (by_http["api_key"], by_http["options"])
    for sdk, http in zip(by_sdk["events"], by_http["events"], strict=True):
        assert set(sdk) == set(http)  # no field only one side sends
        assert sdk["library"].startswith("amplitude-python/")  # the SDK names itself
        assert http["library"] == LIBRARY
        for field in set(http) - {"library"}:
            assert sdk[field] == http[field], field  # time, insert_id, ids, properties...


def test_the_sdk_exporter_delivers_through_a_client(
    sink: FaultySink, amplitude_client: Any
) -> None:
    client = client_for(AmplitudeSdkExporter(amplitude_client))
    try:
        ids = record_every_kind(client, user_id="user-1")
        assert client.flush(10)
    finally:
        client.shutdown(5)
    assert insert_ids(sink.requests) == ids
    assert client.stats.delivered == {"amplitude-sdk": 7}


def test_a_server_error_the_sdk_reports_is_retryable(
    sink: FaultySink, amplitude_client: Any
) -> None:
    sink.respond_with(503, body=b'{"code": 503, "error": "unavailable"}')
    result = AmplitudeSdkExporter(amplitude_client).export(every_kind())
    assert isinstance(result, ExportFailure)
    assert result.retryable
    assert result.status == 503


def test_an_event_the_sdk_reports_refused_is_set_apart_then_dropped(
    sink: FaultySink, amplitude_client: Any
) -> None:
    sink.respond_with(
        400,
        body=orjson.dumps(
            {
                "code": 400,
                "error": "Invalid field values",
                "events_with_invalid_fields": {"time": [0]},
            }
        ),
    )
    exporter = AmplitudeSdkExporter(amplitude_client)
    several = exporter.export(every_kind()[:2])
    alone = exporter.export(every_kind()[:1])
    assert isinstance(several, ExportFailure)
    assert isinstance(alone, ExportFailure)
    assert several.too_large  # the lane splits the batch
    assert not alone.too_large
    assert not alone.retryable  # the lane drops it, counted "rejected"


def test_an_sdk_that_never_reports_is_retryable(sink: FaultySink) -> None:
    amplitude = pytest.importorskip("amplitude")
    # An invalid API key: the SDK logs it and calls no callback.
    sink.respond_with(400, body=orjson.dumps({"code": 400, "error": f"Invalid API key: {API_KEY}"}))
    client = amplitude.Amplitude(
        API_KEY, amplitude.Config(server_url=sink.url, flush_interval_millis=500)
    )
    try:
        result = AmplitudeSdkExporter(client, timeout_s=0.5).export(every_kind()[:1])
    finally:
        client.shutdown()
    assert isinstance(result, ExportFailure)
    assert result.retryable
    assert "reported on 0 of 1 events" in result.message


def test_the_sdk_exporter_refuses_what_is_not_an_amplitude_client() -> None:
    pytest.importorskip("amplitude")
    with pytest.raises(ConfigError, match="client"):
        AmplitudeSdkExporter(object())
