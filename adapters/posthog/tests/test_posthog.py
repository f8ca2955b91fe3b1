"""signalkit-posthog against a real HTTP server on 127.0.0.1 (tests/sinks.py) standing in for
PostHog: the batch request PostHog documents, every signal kind, dedupe by ``uuid``, limits,
byte-identical retries, and the same event sent through the PostHog SDK."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import signalkit_posthog
from hypothesis import given, settings
from hypothesis import strategies as st
from signalkit_posthog import (
    INSTALL_HINT,
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    TRUNCATED,
    PostHogClientExporter,
    PostHogExporter,
    SdkNotInstalled,
    posthog_event,
)

import signalkit as sk
from signalkit import ConfigError, ExportFailure, ExportResult, RetryPolicy
from sinks import FaultySink, Respond

API_KEY = "phc_testprojectkey0123456789"
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
LIBRARY = {
    "$lib": "signalkit-posthog",
    "$lib_version": signalkit_posthog.__version__,
    "$geoip_disable": True,
    "$is_server": True,
}


def event_id(n: int) -> str:
    return str(uuid.UUID(int=(0x019A << 112) | (7 << 76) | n))


EXPOSURE_ID = event_id(0)


def common(n: int, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": event_id(n),
        "ts": T0 + timedelta(milliseconds=n),
        "service": "posthog-tests",
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
    "signalkit_service": "posthog-tests",
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
    return [r for r in sink.requests if r.path == "/batch/"]


def run_client(exporter: sk.Exporter) -> sk.Client:
    return sk.Client("posthog-tests", exporters=[exporter], secret=SECRET)


# -- the request PostHog documents ---------------------------------------------------------------


def test_a_batch_is_one_post_to_batch_with_the_api_key_and_no_sent_at(sink: FaultySink) -> None:
    events = list(every_kind().values())
    exporter = PostHogExporter(API_KEY, host=sink.base_url)
    assert exporter.export(events) is ExportResult.SUCCESS
    [request] = sink.requests
    assert request.method == "POST"
    assert request.path == "/batch/"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    # sent_at is left out on purpose: PostHog would shift every timestamp of a retried batch
    # by how long it waited (rust/common/types/src/timestamp.rs: no sent_at, no correction).
    assert list(body) == ["api_key", "historical_migration", "batch"]
    assert body["api_key"] == API_KEY
    assert body["historical_migration"] is False
    assert [e["uuid"] for e in body["batch"]] == [e.id for e in events]
    for n, sent in enumerate(body["batch"]):
        assert list(sent) == ["event", "distinct_id", "properties", "timestamp", "uuid"]
        # ISO 8601 in UTC to the microsecond: the event's own time, as the SDK writes it.
        assert sent["timestamp"] == f"2026-11-06T08:49:37.{123456 + 1000 * n}+00:00"
        assert sent["distinct_id"] == "user-7"


def test_every_signal_kind_becomes_a_named_posthog_event_with_its_measures(
    sink: FaultySink,
) -> None:
    events = every_kind()
    exporter = PostHogExporter(API_KEY, host=sink.base_url)
    assert exporter.export(list(events.values())) is ExportResult.SUCCESS
    sent = {e["properties"]["signalkit_kind"]: e for e in sink.requests[0].json()["batch"]}
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
            **LIBRARY,
        }
        assert sent[kind]["properties"] == expected, kind


def test_event_prefix_names_the_events(sink: FaultySink) -> None:
    exporter = PostHogExporter(API_KEY, host=sink.base_url, event_prefix="ai feedback")
    assert exporter.export([every_kind()["action"]]) is ExportResult.SUCCESS
    assert sink.requests[0].json()["batch"][0]["event"] == "ai feedback action"


@pytest.mark.parametrize(
    ("subject", "expected", "person"),
    [
        (sk.Subject(user_id="u", anonymous_id="a", session_id="s"), "u", True),
        (sk.Subject(anonymous_id="a", session_id="s"), "a", True),
        (sk.Subject(session_id="s", tenant_id="t"), "s", False),
        (sk.Subject(), EXPOSURE_ID, False),
    ],
)
def test_distinct_id_is_the_user_else_anonymous_else_session_else_exposure(
    subject: sk.Subject, expected: str, person: bool
) -> None:
    event = sk.ActionEvent(**common(1, subject=subject), action="accepted")
    sent = posthog_event(event)
    assert sent["distinct_id"] == expected
    # A session or an exposure is not a person: PostHog must not make a profile for it.
    assert ("$process_person_profile" in sent["properties"]) is not person
    if not person:
        assert sent["properties"]["$process_person_profile"] is False


def test_attributes_keep_their_names_and_signalkit_fields_win_a_clash() -> None:
    event = sk.ActionEvent(
        **common(
            1, attributes={"plan": "pro", "signalkit_action": "spoofed", "$current_url": "/x"}
        ),
        action="accepted",
    )
    properties = posthog_event(event)["properties"]
    assert properties["plan"] == "pro"
    assert properties["$current_url"] == "/x"  # PostHog's own properties can be set this way
    assert properties["signalkit_action"] == "accepted"


def test_absent_values_are_left_out_not_sent_as_null() -> None:
    event = sk.ActionEvent(
        **common(
            1,
            subject=sk.Subject(user_id="u"),
            model=sk.ModelRef(),
            trace_id=None,
            span_id=None,
            score=sk.Score(strength=0.2, polarity=0.5),
        ),
        action="clicked",
    )
    properties = posthog_event(event)["properties"]
    assert None not in properties.values()
    for absent in ("model", "model_version", "trace_id", "item_id", "policy", "reasons"):
        assert "signalkit_" + absent not in properties


def test_historical_migration_is_sent_when_asked(sink: FaultySink) -> None:
    exporter = PostHogExporter(API_KEY, host=sink.base_url, historical_migration=True)
    assert exporter.export([every_kind()["outcome"]]) is ExportResult.SUCCESS
    assert sink.requests[0].json()["historical_migration"] is True


def test_the_app_address_is_mapped_to_the_ingestion_host_as_the_sdk_does() -> None:
    assert PostHogExporter(API_KEY).endpoint == "https://us.i.posthog.com/batch/"
    exporter = PostHogExporter(API_KEY, host="https://eu.posthog.com/")
    assert exporter.endpoint == "https://eu.i.posthog.com/batch/"
    assert PostHogExporter(API_KEY, host="https://ph.example.com").host == "https://ph.example.com"


# -- delivery: dedupe, retries, limits -----------------------------------------------------------


def test_a_retried_batch_is_byte_identical_and_keeps_each_uuid(sink: FaultySink) -> None:
    sink.script([503, Respond(429, retry_after=0)])
    client = run_client(PostHogExporter(API_KEY, host=sink.base_url, retry_policy=FAST))
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
    assert [e["uuid"] for e in requests[-1].json()["batch"]] == ids


def test_many_large_events_are_split_into_requests_under_5_mib() -> None:
    with FaultySink(max_body_bytes=MAX_BATCH_BYTES) as sink:  # answers 413 over the limit
        client = run_client(PostHogExporter(API_KEY, host=sink.base_url))
        with client.exposure("reply-draft", model="drafter", user_id="user-1") as exp:
            pass
        ids = []
        for n in range(200):  # ~6 MB of corrections
            text = f"{n:04d} " + "lorem ipsum dolor sit amet " * 550
            event = client.correction(exp.token, original=text, corrected=text.upper())
            assert event is not None
            ids.append(event.id)
        client.shutdown(timeout=30)
        requests = batch_requests(sink)
    assert len(requests) >= 2
    assert all(r.status == 200 for r in requests)
    assert all(len(r.body) <= MAX_BATCH_BYTES for r in requests)
    assert exp.event is not None
    sent = [e["uuid"] for r in requests for e in r.json()["batch"]]
    assert sorted(sent) == sorted([exp.event.id, *ids])  # each once, none lost
    assert client.stats.total_dropped == 0


def test_a_long_correction_is_cut_to_the_event_limit_not_dropped(sink: FaultySink) -> None:
    limit = 48 * 1024  # PostHog's own 900 KiB is beyond what signalkit lets a client record
    exporter = PostHogExporter(API_KEY, host=sink.base_url, max_vendor_event_bytes=limit)
    client = run_client(exporter)
    with client.exposure("reply-draft", model="drafter", user_id="user-1") as exp:
        pass
    original = "The quick brown fox jumps over the lazy dog. " * 700  # 31,500 chars
    corrected = original.replace("fox", "cat")
    correction = client.correction(exp.token, original=original, corrected=corrected)
    client.shutdown(timeout=10)
    assert correction is not None
    [request] = batch_requests(sink)
    sent = {e["uuid"]: e for e in request.json()["batch"]}[correction.id]
    assert len(orjson.dumps(sent)) <= limit
    properties = sent["properties"]
    assert properties[TRUNCATED] == ["signalkit_corrected", "signalkit_original"]
    assert original.startswith(properties["signalkit_original"])
    assert corrected.startswith(properties["signalkit_corrected"])
    # Both cut alike, and only as much as needed.
    assert 23_000 < len(properties["signalkit_corrected"]) <= len(properties["signalkit_original"])
    assert len(orjson.dumps(sent)) > limit - 200
    assert properties["signalkit_edit_distance"] == correction.edit_distance  # of the full texts
    assert client.stats.total_dropped == 0


def test_an_event_that_cannot_fit_is_dropped_alone_and_counted_too_large(
    sink: FaultySink,
) -> None:
    exporter = PostHogExporter(
        API_KEY, host=sink.base_url, max_vendor_event_bytes=2048, retry_policy=FAST
    )
    client = run_client(exporter)
    with client.exposure("reply-draft", model="drafter", user_id="user-1") as exp:
        pass
    fine = client.action(exp.token, "accepted")
    # PostHog's own ($) properties are never cut, so this one cannot be made to fit.
    huge = {f"$vendor_{n}": "x" * 1000 for n in range(3)}
    doomed = client.action(exp.token, "copied", attributes=huge)
    also_fine = client.feedback(exp.token, rating=1)
    client.shutdown(timeout=10)
    assert fine is not None
    assert doomed is not None
    assert also_fine is not None
    assert exp.event is not None
    sent = [e["uuid"] for r in batch_requests(sink) for e in r.json()["batch"]]
    assert sorted(sent) == sorted([exp.event.id, fine.id, also_fine.id])
    assert client.stats.dropped == {"too_large": 1}


def test_a_refused_api_key_is_reported_as_unauthorized_so_the_lane_pauses(sink: FaultySink) -> None:
    sink.respond_with(401, body=b'{"detail":"Project API key invalid"}')
    exporter = PostHogExporter(API_KEY, host=sink.base_url)
    outcome = exporter.export([every_kind()["action"]])
    assert isinstance(outcome, ExportFailure)
    assert outcome.unauthorized
    assert not outcome.retryable
    assert "Project API key invalid" in outcome.message


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
    exporter = PostHogExporter(API_KEY, max_vendor_event_bytes=limit)
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
        ({"api_key": ""}, "api_key"),
        ({"api_key": "phc key"}, "api_key"),
        ({"host": "us.i.posthog.com"}, "host"),
        ({"event_prefix": ""}, "event_prefix"),
        ({"historical_migration": "yes"}, "historical_migration"),
        ({"max_vendor_event_bytes": 10}, "max_vendor_event_bytes"),
        ({"max_vendor_event_bytes": MAX_BATCH_BYTES}, "max_vendor_event_bytes"),
    ],
)
def test_a_bad_setting_raises_config_error_naming_it(kwargs: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {"api_key": API_KEY, **kwargs}
    with pytest.raises(ConfigError, match=rf"PostHogExporter\.{field}"):
        PostHogExporter(**arguments)


def test_the_limits_are_posthogs() -> None:
    exporter = PostHogExporter(API_KEY)
    assert exporter.name == "posthog"
    assert exporter.max_batch_bytes == MAX_BATCH_BYTES == 5 * 1024 * 1024
    assert exporter.max_vendor_event_bytes == MAX_EVENT_BYTES == 900 * 1024
    # HttpExporter checks signalkit's own JSON against it: the cutting is the adapter's.
    assert exporter.max_event_bytes > MAX_EVENT_BYTES
    assert "PostHogExporter('https://us.i.posthog.com/batch/'" in repr(exporter)


def test_the_public_face_is_exactly_all() -> None:
    public = {name for name in vars(signalkit_posthog) if not name.startswith("_")}
    assert set(signalkit_posthog.__all__) == public | {"__version__"}


# -- the PostHog SDK: the same event, the delegating exporter ------------------------------------

# Sent by the PostHog SDK only: the time of each attempt (left out by the exporter, see above)
# and the SDK's description of the host it runs on.
SDK_ONLY_BODY = {"sent_at"}
SDK_ONLY_PROPERTIES = {"$python_runtime", "$python_version", "$os", "$os_version", "$os_distro"}
# Sent by both, each naming its own library.
OWN_VALUE_PROPERTIES = {"$lib", "$lib_version"}


@pytest.fixture
def posthog_client(sink: FaultySink) -> Iterator[Any]:
    posthog = pytest.importorskip("posthog")
    client = posthog.Posthog(API_KEY, host=sink.base_url, sync_mode=True)
    yield client
    client.shutdown()


def assert_same_event(sdk_body: dict[str, Any], our_body: dict[str, Any]) -> None:
    assert set(sdk_body) - set(our_body) == SDK_ONLY_BODY
    assert set(our_body) <= set(sdk_body)
    for key in set(our_body) - {"batch"}:
        assert sdk_body[key] == our_body[key], key
    [sdk_event] = sdk_body["batch"]
    [our_event] = our_body["batch"]
    assert set(sdk_event) == set(our_event)
    for key in set(our_event) - {"properties"}:
        assert sdk_event[key] == our_event[key], key
    sdk_properties, our_properties = sdk_event["properties"], our_event["properties"]
    assert set(sdk_properties) - set(our_properties) <= SDK_ONLY_PROPERTIES
    assert set(our_properties) <= set(sdk_properties)
    for key in set(our_properties) - OWN_VALUE_PROPERTIES:
        assert sdk_properties[key] == our_properties[key], key
    assert sdk_properties["$lib"] == "posthog-python"
    assert our_properties["$lib"] == "signalkit-posthog"


@pytest.mark.parametrize(
    "kind", ["exposure", "action", "correction", "toggle", "outcome", "feedback"]
)
def test_the_posthog_sdk_sends_the_same_event_as_the_exporter(
    kind: str, sink: FaultySink, posthog_client: Any
) -> None:
    event = every_kind()[kind]
    assert PostHogClientExporter(posthog_client).export([event]) is ExportResult.SUCCESS
    assert PostHogExporter(API_KEY, host=sink.base_url).export([event]) is ExportResult.SUCCESS
    sdk_request, our_request = batch_requests(sink)
    assert sdk_request.headers["user-agent"].startswith("posthog-python/")
    assert_same_event(sdk_request.json(), our_request.json())


def test_the_sdk_gets_the_same_distinct_id_and_person_rule(
    sink: FaultySink, posthog_client: Any
) -> None:
    event = sk.ToggleEvent(**common(3, subject=sk.Subject(session_id="s-9")), state="expanded")
    assert PostHogClientExporter(posthog_client).export([event]) is ExportResult.SUCCESS
    assert PostHogExporter(API_KEY, host=sink.base_url).export([event]) is ExportResult.SUCCESS
    sdk_request, our_request = batch_requests(sink)
    assert_same_event(sdk_request.json(), our_request.json())
    assert our_request.json()["batch"][0]["distinct_id"] == "s-9"


def test_what_the_client_turns_away_is_a_counted_failure(sink: FaultySink) -> None:
    posthog = pytest.importorskip("posthog")
    client = posthog.Posthog(
        API_KEY, host=sink.base_url, sync_mode=True, before_send=lambda message: None
    )
    try:
        outcome = PostHogClientExporter(client).export([every_kind()["action"]])
    finally:
        client.shutdown()
    assert isinstance(outcome, ExportFailure)
    assert not outcome.retryable
    assert "did not take the event" in outcome.message
    assert batch_requests(sink) == []


def test_a_disabled_client_takes_events_and_sends_nothing(sink: FaultySink) -> None:
    posthog = pytest.importorskip("posthog")
    client = posthog.Posthog(API_KEY, host=sink.base_url, sync_mode=True, disabled=True)
    try:
        outcome = PostHogClientExporter(client).export([every_kind()["action"]])
    finally:
        client.shutdown()
    assert outcome is ExportResult.SUCCESS
    assert batch_requests(sink) == []


def test_without_a_client_the_posthog_modules_default_client_is_used() -> None:
    posthog = pytest.importorskip("posthog")
    exporter = PostHogClientExporter()
    assert exporter.client is posthog
    assert exporter.max_batch_events == 1  # what the SDK turns away is counted exactly


def test_a_client_without_capture_is_a_config_error() -> None:
    pytest.importorskip("posthog")
    with pytest.raises(ConfigError, match=r"PostHogClientExporter\.client"):
        PostHogClientExporter(object())


def test_without_the_sdk_the_client_exporter_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "posthog", None)  # what an absent package looks like
    with pytest.raises(SdkNotInstalled) as raised:
        PostHogClientExporter()
    assert INSTALL_HINT in str(raised.value)
    assert isinstance(raised.value, ConfigError)
    PostHogExporter(API_KEY)  # the HTTP form never needs the SDK
