"""signalkit-segment against a real HTTP server on 127.0.0.1 (tests/sinks.py) standing in for
Segment: the batch request Segment documents, every signal kind, dedupe by ``messageId``,
limits, byte-identical retries, and the same call sent through Segment's SDK."""

from __future__ import annotations

import base64
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import signalkit_segment
from hypothesis import given, settings
from hypothesis import strategies as st
from signalkit_segment import (
    INSTALL_HINT,
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    TRUNCATED,
    SdkNotInstalled,
    SegmentClientExporter,
    SegmentExporter,
    identities,
    segment_event,
)

import signalkit as sk
from signalkit import ConfigError, ExportFailure, ExportResult, RetryPolicy
from sinks import FaultySink, Respond

WRITE_KEY = "wk9Xq2LmTestWriteKey"
BASIC = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
SECRET = "s" * 32
FAST = RetryPolicy(base_s=0.01, cap_s=0.02, max_attempts=5)
T0 = datetime(2026, 11, 6, 8, 49, 37, 123456, tzinfo=UTC)
SCORE = sk.Score(
    strength=0.8,
    polarity=-0.5,
    reasons=(
        sk.Reason(factor="base", effect=0.7, note="a correction is a label"),
        sk.Reason(factor="edit_size", effect=1.25, note="a large edit: the output was wrong"),
    ),
    policy="default@1",
)
ATTRIBUTES: dict[str, str | int | float | bool] = {
    "plan": "pro",
    "seats": 12,
    "ratio": 0.25,
    "beta": True,
}
LIBRARY = {"name": "signalkit-segment", "version": signalkit_segment.__version__}


def event_id(n: int) -> str:
    return str(uuid.UUID(int=(0x019A << 112) | (7 << 76) | n))


EXPOSURE_ID = event_id(0)


def common(n: int, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": event_id(n),
        "ts": T0 + timedelta(milliseconds=n),
        "service": "segment-tests",
        "exposure_id": EXPOSURE_ID,
        "producer_id": "19e760ca49c216dc",
        "seq": n + 1,
        "subject": sk.Subject(
            user_id="user-7", anonymous_id="anon-7", session_id="sess-7", tenant_id="acme"
        ),
        "model": sk.ModelRef(name="drafter", version="2026-11-01", variant="b"),
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "span_id": "b7ad6b7169203331",
        "attributes": ATTRIBUTES,
        "score": SCORE,
    }
    fields.update(overrides)
    return fields


def every_kind() -> dict[str, sk.Event]:
    """One event of each kind, every field set."""
    return {
        "exposure": sk.ExposureEvent(
            **common(0),
            surface="reply-draft",
            items=(sk.Item(id="a", position=0, propensity=0.5), sk.Item(id="b", position=1)),
            latency_ms=412.5,
        ),
        "action": sk.ActionEvent(
            **common(1), action="accepted", item_id="a", time_to_action_ms=850.0
        ),
        "correction": sk.CorrectionEvent(
            **common(2),
            original="Dear Sir, ✓",
            corrected="Hi Sam",
            edit_distance=9,
            similarity=0.4,
            time_to_action_ms=12_000.0,
        ),
        "toggle": sk.ToggleEvent(
            **common(3),
            state="collapsed",
            element="explanation",
            dwell_ms=3_400.0,
            time_to_action_ms=2_000.0,
        ),
        "outcome": sk.OutcomeEvent(
            **common(4), name="ticket_resolved", value=1.0, success=True, delay_ms=86_400_000.0
        ),
        "feedback": sk.FeedbackEvent(
            **common(5),
            rating=4.0,
            scale=(1.0, 5.0),
            choice="b",
            comment="better tone — ünïcode",
            time_to_action_ms=30_000.0,
        ),
    }


COMMON_PROPERTIES: dict[str, Any] = {
    "signalkit_exposure_id": EXPOSURE_ID,
    "signalkit_service": "segment-tests",
    "signalkit_producer_id": "19e760ca49c216dc",
    "signalkit_user_id": "user-7",
    "signalkit_anonymous_id": "anon-7",
    "signalkit_session_id": "sess-7",
    "signalkit_tenant_id": "acme",
    "signalkit_model": "drafter",
    "signalkit_model_version": "2026-11-01",
    "signalkit_model_variant": "b",
    "signalkit_trace_id": "0af7651916cd43dd8448eb211c80319c",
    "signalkit_span_id": "b7ad6b7169203331",
    "signalkit_strength": 0.8,
    "signalkit_polarity": -0.5,
    "signalkit_policy": "default@1",
    "signalkit_reasons": ["base=0.7", "edit_size=1.25"],
}

KIND_PROPERTIES: dict[str, dict[str, Any]] = {
    "exposure": {
        "signalkit_surface": "reply-draft",
        "signalkit_latency_ms": 412.5,
        "signalkit_item_count": 2,
        "signalkit_item_ids": ["a", "b"],
    },
    "action": {
        "signalkit_action": "accepted",
        "signalkit_item_id": "a",
        "signalkit_time_to_action_ms": 850.0,
    },
    "correction": {
        "signalkit_original": "Dear Sir, ✓",
        "signalkit_corrected": "Hi Sam",
        "signalkit_edit_distance": 9,
        "signalkit_similarity": 0.4,
        "signalkit_time_to_action_ms": 12_000.0,
    },
    "toggle": {
        "signalkit_state": "collapsed",
        "signalkit_element": "explanation",
        "signalkit_dwell_ms": 3_400.0,
        "signalkit_time_to_action_ms": 2_000.0,
    },
    "outcome": {
        "signalkit_outcome": "ticket_resolved",
        "signalkit_value": 1.0,
        "signalkit_success": True,
        "signalkit_delay_ms": 86_400_000.0,
    },
    "feedback": {
        "signalkit_rating": 4.0,
        "signalkit_scale_min": 1.0,
        "signalkit_scale_max": 5.0,
        "signalkit_choice": "b",
        "signalkit_comment": "better tone — ünïcode",
        "signalkit_time_to_action_ms": 30_000.0,
    },
}


@pytest.fixture
def sink() -> Iterator[FaultySink]:
    with FaultySink() as s:
        yield s


def batch_requests(sink: FaultySink) -> list[Any]:
    return [r for r in sink.requests if r.path == "/v1/batch"]


def run_client(exporter: sk.Exporter) -> sk.Client:
    return sk.Client("segment-tests", exporters=[exporter], secret=SECRET)


# -- the request Segment documents ---------------------------------------------------------------


def test_a_batch_is_one_post_to_v1_batch_with_basic_auth_and_only_the_calls(
    sink: FaultySink,
) -> None:
    events = list(every_kind().values())
    exporter = SegmentExporter(WRITE_KEY, host=sink.base_url)
    assert exporter.export(events) is ExportResult.SUCCESS
    [request] = sink.requests
    assert request.method == "POST"
    assert request.path == "/v1/batch"
    assert request.headers["content-type"] == "application/json"
    # The write key as the Basic user name with an empty password, as Segment documents.
    assert request.headers["authorization"] == BASIC
    body = request.json()
    # No writeKey (it is in the header) and no sentAt: with one, Segment would shift every
    # timestamp of a retried batch by how long it waited.
    assert list(body) == ["batch"]
    assert [c["messageId"] for c in body["batch"]] == [e.id for e in events]
    for n, call in enumerate(body["batch"]):
        assert list(call) == [
            "type",
            "event",
            "userId",
            "anonymousId",
            "properties",
            "timestamp",
            "messageId",
            "context",
        ]
        assert call["type"] == "track"
        # ISO 8601 in UTC to the millisecond: the event's own time, as Segment's SDK writes it.
        assert call["timestamp"] == f"2026-11-06T08:49:37.{123 + n}+00:00"
        assert (call["userId"], call["anonymousId"]) == ("user-7", "anon-7")
        assert call["context"] == {"groupId": "acme", "library": LIBRARY}


def test_every_signal_kind_becomes_a_named_track_call_with_its_measures(
    sink: FaultySink,
) -> None:
    events = every_kind()
    exporter = SegmentExporter(WRITE_KEY, host=sink.base_url)
    assert exporter.export(list(events.values())) is ExportResult.SUCCESS
    sent = {c["properties"]["signalkit_kind"]: c for c in sink.requests[0].json()["batch"]}
    assert set(sent) == {"exposure", "action", "correction", "toggle", "outcome", "feedback"}
    for kind, event in events.items():
        assert sent[kind]["event"] == f"signalkit {kind}"
        expected = {
            **ATTRIBUTES,
            "signalkit_kind": kind,
            "signalkit_event_id": event.id,
            "signalkit_seq": event.seq,
            **COMMON_PROPERTIES,
            **KIND_PROPERTIES[kind],
        }
        assert sent[kind]["properties"] == expected, kind


def test_event_prefix_names_the_calls(sink: FaultySink) -> None:
    exporter = SegmentExporter(WRITE_KEY, host=sink.base_url, event_prefix="AI Signal")
    assert exporter.export([every_kind()["action"]]) is ExportResult.SUCCESS
    assert sink.requests[0].json()["batch"][0]["event"] == "AI Signal action"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (sk.Subject(user_id="u", anonymous_id="a", session_id="s"), ("u", "a")),
        (sk.Subject(user_id="u", session_id="s"), ("u", None)),
        (sk.Subject(anonymous_id="a", session_id="s"), (None, "a")),
        (sk.Subject(session_id="s"), (None, "s")),
        (sk.Subject(), (None, EXPOSURE_ID)),
    ],
)
def test_user_id_and_anonymous_id_come_from_the_subject(
    subject: sk.Subject, expected: tuple[str | None, str | None]
) -> None:
    event = sk.ActionEvent(**common(1, subject=subject), action="accepted")
    assert identities(event) == expected
    call = segment_event(event)
    assert (call.get("userId"), call.get("anonymousId")) == expected
    assert None not in call.values()  # an absent identity is left out, not null
    assert "groupId" not in call["context"]


def test_attributes_keep_their_names_and_signalkit_fields_win_a_clash() -> None:
    event = sk.ActionEvent(
        **common(1, attributes={"plan": "pro", "signalkit_action": "spoofed"}), action="accepted"
    )
    properties = segment_event(event)["properties"]
    assert properties["plan"] == "pro"
    assert properties["signalkit_action"] == "accepted"


def test_the_write_key_never_shows(sink: FaultySink) -> None:
    # A server that echoes the key and the Authorization header in its error.
    sink.respond_with(Respond(400, body=lambda r: f"bad key {WRITE_KEY} in {r.headers}"))
    exporter = SegmentExporter(WRITE_KEY, host=sink.base_url)
    outcome = exporter.export([every_kind()["action"]])
    assert isinstance(outcome, ExportFailure)
    assert not outcome.retryable
    for shown in (outcome.message, repr(exporter), exporter.endpoint):
        assert WRITE_KEY not in shown
        assert BASIC.split()[1] not in shown
    assert "[redacted]" in outcome.message


def test_an_eu_host_keeps_its_path(sink: FaultySink) -> None:
    exporter = SegmentExporter(WRITE_KEY, host="https://events.eu1.segmentapis.com/")
    assert exporter.endpoint == "https://[redacted]@events.eu1.segmentapis.com/v1/batch"


# -- delivery: dedupe, retries, limits -----------------------------------------------------------


def test_a_retried_batch_is_byte_identical_and_keeps_each_message_id(sink: FaultySink) -> None:
    sink.script([503, Respond(429, retry_after=0)])
    client = run_client(SegmentExporter(WRITE_KEY, host=sink.base_url, retry_policy=FAST))
    with client.exposure("reply-draft", model="drafter", user_id="user-1") as exp:
        pass
    recorded = [
        exp.event,
        client.action(exp.token, "accepted"),
        client.correction(exp.token, original="draft", corrected="final draft"),
    ]
    client.shutdown(timeout=10)
    ids = [e.id for e in recorded if e is not None]
    assert len(ids) == 3
    requests = batch_requests(sink)
    assert [r.status for r in requests] == [503, 429, 200]
    assert len({r.raw_body for r in requests}) == 1  # same bytes every attempt
    assert len({r.headers["idempotency-key"] for r in requests}) == 1
    assert [c["messageId"] for c in requests[-1].json()["batch"]] == ids


def test_many_large_events_are_split_into_requests_under_500_kb() -> None:
    with FaultySink(max_body_bytes=MAX_BATCH_BYTES) as sink:  # answers 413 over the limit
        client = run_client(SegmentExporter(WRITE_KEY, host=sink.base_url))
        with client.exposure("reply-draft", model="drafter", user_id="user-1") as exp:
            pass
        ids = []
        for n in range(80):  # ~2 MB of corrections, each under 32 KB
            text = f"{n:04d} " + "lorem ipsum dolor sit amet " * 300
            event = client.correction(exp.token, original=text, corrected=text.upper())
            assert event is not None
            ids.append(event.id)
        client.shutdown(timeout=30)
        requests = batch_requests(sink)
    assert len(requests) >= 4
    assert all(r.status == 200 for r in requests)
    assert all(len(r.body) <= MAX_BATCH_BYTES for r in requests)
    assert all(len(orjson.dumps(c)) <= MAX_EVENT_BYTES for r in requests for c in r.json()["batch"])
    assert exp.event is not None
    sent = [c["messageId"] for r in requests for c in r.json()["batch"]]
    assert sorted(sent) == sorted([exp.event.id, *ids])  # each once, none lost
    assert client.stats.total_dropped == 0


def test_a_long_correction_is_cut_to_32_kb_not_dropped(sink: FaultySink) -> None:
    client = run_client(SegmentExporter(WRITE_KEY, host=sink.base_url))
    with client.exposure("reply-draft", model="drafter", user_id="user-1") as exp:
        pass
    original = "The quick brown fox jumps over the lazy dog. " * 700  # 31,500 chars
    corrected = original.replace("fox", "cat")
    correction = client.correction(exp.token, original=original, corrected=corrected)
    client.shutdown(timeout=10)
    assert correction is not None
    [request] = batch_requests(sink)
    call = {c["messageId"]: c for c in request.json()["batch"]}[correction.id]
    assert MAX_EVENT_BYTES - 200 < len(orjson.dumps(call)) <= MAX_EVENT_BYTES
    properties = call["properties"]
    assert properties[TRUNCATED] == ["signalkit_corrected", "signalkit_original"]
    assert original.startswith(properties["signalkit_original"])
    assert corrected.startswith(properties["signalkit_corrected"])
    assert len(properties["signalkit_original"]) > 14_000  # both cut alike, as little as needed
    assert len(properties["signalkit_corrected"]) > 14_000
    assert properties["signalkit_edit_distance"] == correction.edit_distance  # of the full texts
    assert client.stats.total_dropped == 0


def test_a_call_that_cannot_fit_is_dropped_alone_and_counted_too_large(
    sink: FaultySink,
) -> None:
    exporter = SegmentExporter(
        WRITE_KEY, host=sink.base_url, max_vendor_event_bytes=2048, retry_policy=FAST
    )
    client = run_client(exporter)
    with client.exposure("reply-draft", model="drafter", user_id="user-1") as exp:
        pass
    fine = client.action(exp.token, "accepted")
    # Names and numbers are never cut: 20 long attribute names cannot be made to fit.
    wide = {f"k{n:02d}" + "x" * 190: n for n in range(20)}
    doomed = client.action(exp.token, "copied", attributes=wide)
    also_fine = client.feedback(exp.token, rating=1)
    client.shutdown(timeout=10)
    assert fine is not None
    assert doomed is not None
    assert also_fine is not None
    assert exp.event is not None
    sent = [c["messageId"] for r in batch_requests(sink) for c in r.json()["batch"]]
    assert sorted(sent) == sorted([exp.event.id, fine.id, also_fine.id])
    assert client.stats.dropped == {"too_large": 1}


# Any text, including what JSON must escape (control characters, quotes) and 4-byte characters.
TEXTS = st.text(alphabet=st.characters(codec="utf-8"), max_size=4000)
NAMES = st.text(
    alphabet=st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=20
)
INTS = st.integers(-(2**63), 2**63 - 1)  # what signalkit accepts as an attribute


@settings(max_examples=150, deadline=None)
@given(
    original=TEXTS,
    corrected=TEXTS,
    attributes=st.dictionaries(NAMES, TEXTS | INTS, max_size=6),
    limit=st.integers(2048, 20_000),
)
def test_any_event_is_cut_to_the_limit_keeping_the_start_of_each_text(
    original: str, corrected: str, attributes: dict[str, str | int], limit: int
) -> None:
    event = sk.CorrectionEvent(
        **common(2, attributes=attributes),
        original=original,
        corrected=corrected,
        edit_distance=1,
        similarity=0.5,
    )
    exporter = SegmentExporter(WRITE_KEY, max_vendor_event_bytes=limit)
    [sent] = orjson.loads(exporter.encode([event], "unused"))["batch"]
    assert len(orjson.dumps(sent)) <= limit
    properties = sent["properties"]
    full = {"signalkit_original": original, "signalkit_corrected": corrected, **attributes}
    cut = properties.get(TRUNCATED, [])
    for name, value in full.items():
        if isinstance(value, str):
            assert value.startswith(properties[name])
            assert (properties[name] != value) == (name in cut), name
        else:
            assert properties[name] == value  # numbers are never cut


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"write_key": ""}, "write_key"),
        ({"write_key": "wk 1"}, "write_key"),
        ({"host": "api.segment.io"}, "host"),
        ({"host": "https://u:p@api.segment.io"}, "host"),
        ({"host": "https://api.segment.io?x=1"}, "host"),
        ({"event_prefix": ""}, "event_prefix"),
        ({"max_vendor_event_bytes": 10}, "max_vendor_event_bytes"),
        ({"max_vendor_event_bytes": MAX_BATCH_BYTES}, "max_vendor_event_bytes"),
    ],
)
def test_a_bad_setting_raises_config_error_naming_it(kwargs: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {"write_key": WRITE_KEY, **kwargs}
    with pytest.raises(ConfigError, match=rf"SegmentExporter\.{field}") as raised:
        SegmentExporter(**arguments)
    assert WRITE_KEY not in str(raised.value)


def test_the_limits_are_segments() -> None:
    exporter = SegmentExporter(WRITE_KEY)
    assert exporter.name == "segment"
    assert exporter.max_batch_bytes == MAX_BATCH_BYTES == 500_000
    assert exporter.max_vendor_event_bytes == MAX_EVENT_BYTES == 32_000
    # HttpExporter checks signalkit's own JSON against it: the cutting is the adapter's.
    assert exporter.max_event_bytes > MAX_EVENT_BYTES
    assert exporter.endpoint == "https://[redacted]@api.segment.io/v1/batch"


def test_the_public_face_is_exactly_all() -> None:
    public = {name for name in vars(signalkit_segment) if not name.startswith("_")}
    assert set(signalkit_segment.__all__) == public | {"__version__"}


# -- Segment's SDK: the same call, the delegating exporter ---------------------------------------

# Sent by Segment's SDK only: the time of each attempt (left out by the exporter, see above)
# and the write key, which the exporter sends in the Authorization header only.
SDK_ONLY_BODY = {"sentAt", "writeKey"}
# Sent by the SDK only: an empty destinations filter.
SDK_ONLY_CALL = {"integrations"}
# The SDK sends an absent identity as null; the exporter leaves it out.
NULL_OR_ABSENT = {"userId", "anonymousId"}


@pytest.fixture
def segment_client(sink: FaultySink) -> Any:
    analytics = pytest.importorskip("segment.analytics")
    # sync_mode: no consumer thread, nothing to shut down (its shutdown() fails in this mode).
    return analytics.Client(WRITE_KEY, host=sink.base_url, sync_mode=True)


def assert_same_call(sdk_body: dict[str, Any], our_body: dict[str, Any]) -> None:
    assert set(sdk_body) - set(our_body) == SDK_ONLY_BODY
    assert set(our_body) == {"batch"}
    [sdk_call] = sdk_body["batch"]
    [our_call] = our_body["batch"]
    for key in NULL_OR_ABSENT:
        if sdk_call.get(key) is None:
            sdk_call.pop(key, None)
    assert set(sdk_call) - set(our_call) == SDK_ONLY_CALL
    assert set(our_call) <= set(sdk_call)
    for key in set(our_call) - {"context"}:
        assert sdk_call[key] == our_call[key], key
    # context: the same groupId; library names each side's own.
    sdk_context, our_context = sdk_call["context"], our_call["context"]
    assert set(sdk_context) == set(our_context)
    assert {k: v for k, v in sdk_context.items() if k != "library"} == {
        k: v for k, v in our_context.items() if k != "library"
    }
    assert sdk_context["library"]["name"] == "analytics-python"
    assert our_context["library"] == LIBRARY


@pytest.mark.parametrize(
    "kind", ["exposure", "action", "correction", "toggle", "outcome", "feedback"]
)
def test_segments_sdk_sends_the_same_call_as_the_exporter(
    kind: str, sink: FaultySink, segment_client: Any
) -> None:
    event = every_kind()[kind]
    assert SegmentClientExporter(segment_client).export([event]) is ExportResult.SUCCESS
    assert SegmentExporter(WRITE_KEY, host=sink.base_url).export([event]) is ExportResult.SUCCESS
    sdk_request, our_request = batch_requests(sink)
    assert sdk_request.headers["user-agent"].startswith("analytics-python/")
    assert sdk_request.headers["authorization"] == our_request.headers["authorization"] == BASIC
    assert_same_call(sdk_request.json(), our_request.json())


@pytest.mark.parametrize(
    "subject", [sk.Subject(anonymous_id="a-3"), sk.Subject(session_id="s-3"), sk.Subject()]
)
def test_the_sdk_gets_the_same_identities(
    subject: sk.Subject, sink: FaultySink, segment_client: Any
) -> None:
    event = sk.ToggleEvent(**common(3, subject=subject), state="expanded")
    assert SegmentClientExporter(segment_client).export([event]) is ExportResult.SUCCESS
    assert SegmentExporter(WRITE_KEY, host=sink.base_url).export([event]) is ExportResult.SUCCESS
    sdk_request, our_request = batch_requests(sink)
    assert_same_call(sdk_request.json(), our_request.json())


def test_a_long_correction_through_the_sdk_is_cut_to_what_the_sdk_accepts(
    sink: FaultySink, segment_client: Any
) -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 700
    event = sk.CorrectionEvent(
        **common(2), original=text, corrected=text.upper(), edit_distance=1, similarity=0.5
    )
    # Uncut, analytics-python would refuse it ("Message exceeds 32kb limit").
    assert SegmentClientExporter(segment_client).export([event]) is ExportResult.SUCCESS
    [request] = batch_requests(sink)
    properties = request.json()["batch"][0]["properties"]
    assert properties[TRUNCATED] == ["signalkit_corrected", "signalkit_original"]
    assert text.startswith(properties["signalkit_original"])


def test_in_sync_mode_a_server_error_is_retried_and_a_refusal_is_not(
    sink: FaultySink, segment_client: Any
) -> None:
    exporter = SegmentClientExporter(segment_client)
    sink.script([Respond(503, body=b'{"code":"unavailable","message":"try later"}')])
    busy = exporter.export([every_kind()["action"]])
    assert isinstance(busy, ExportFailure)
    assert busy.retryable
    sink.script([Respond(400, body=b'{"code":"invalid","message":"bad call"}')])
    refused = exporter.export([every_kind()["action"]])
    assert isinstance(refused, ExportFailure)
    assert not refused.retryable
    assert exporter.export([every_kind()["action"]]) is ExportResult.SUCCESS


def test_without_a_client_the_modules_default_client_is_used() -> None:
    analytics = pytest.importorskip("segment.analytics")
    exporter = SegmentClientExporter()
    assert exporter.client is analytics
    assert exporter.max_batch_events == 1  # what the SDK turns away is counted exactly


def test_a_client_without_track_is_a_config_error() -> None:
    pytest.importorskip("segment.analytics")
    with pytest.raises(ConfigError, match=r"SegmentClientExporter\.client"):
        SegmentClientExporter(object())


def test_without_the_sdk_the_client_exporter_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "segment.analytics", None)  # an absent package
    with pytest.raises(SdkNotInstalled) as raised:
        SegmentClientExporter()
    assert INSTALL_HINT in str(raised.value)
    assert isinstance(raised.value, ConfigError)
    SegmentExporter(WRITE_KEY)  # the HTTP form never needs the SDK
