"""signalkit-mixpanel against real HTTP servers on 127.0.0.1: the Import API request Mixpanel
documents, every signal kind mapped, identity, limits, retries, splitting, secrets, and the
Mixpanel SDK sending the same events (those tests need ``mixpanel`` installed)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any
from urllib.parse import parse_qs

import orjson
import pytest
import signalkit_mixpanel
from signalkit_mixpanel import MixpanelExporter, MixpanelSdkExporter, to_mixpanel_event

import signalkit as sk
from signalkit import ConfigError, ExportFailure, ExportResult, RetryPolicy
from sinks import FaultySink, ReceivedRequest, Respond

SECRET = "s" * 32
TOKEN = "0123456789abcdef0123456789abcdef"
T0 = datetime(2026, 11, 6, 8, 49, 37, 123456, tzinfo=UTC)
T0_MS = 1793954977123  # T0 in whole milliseconds since the epoch
EXPOSURE_ID = "019a5a2e-1c63-7000-8000-000000000001"
FAST = RetryPolicy(base_s=0.01, cap_s=0.02, pause_s=0.05)


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


def mixpanel_events(request: ReceivedRequest) -> list[dict[str, Any]]:
    """The Mixpanel events of one request (its body is a JSON array)."""
    body = request.json()
    assert isinstance(body, list)
    return body


def insert_ids(requests: list[ReceivedRequest]) -> list[str]:
    return [e["properties"]["$insert_id"] for r in requests for e in mixpanel_events(r)]


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def sink() -> Iterator[FaultySink]:
    with FaultySink() as s:
        yield s


def client_for(exporter: sk.Exporter, **options: Any) -> sk.Client:
    options.setdefault("flush_interval_s", 60.0)  # nothing leaves before flush()
    return sk.Client("adapter-tests", exporters=[exporter], secret=SECRET, **options)


# -- the request Mixpanel documents --------------------------------------------------------------


def test_a_batch_is_one_import_request_in_the_documented_shape(sink: FaultySink) -> None:
    events = every_kind()
    exporter = MixpanelExporter(TOKEN, host=sink.base_url)

    assert exporter.export(events) is ExportResult.SUCCESS

    (request,) = sink.requests
    assert request.method == "POST"
    assert request.path == "/import?strict=1"
    assert request.headers["authorization"] == basic(TOKEN)  # the token as Basic user
    assert request.headers["content-type"] == "application/json"
    assert request.headers["content-encoding"] == "gzip"  # Mixpanel accepts gzip
    sent = mixpanel_events(request)
    assert [e["event"] for e in sent] == [
        "signalkit.exposure",
        "signalkit.action",
        "signalkit.correction",
        "signalkit.toggle",
        "signalkit.outcome",
        "signalkit.feedback",
    ]
    for n, (event, mp) in enumerate(zip(events, sent, strict=True)):
        assert set(mp) == {"event", "properties"}
        props = mp["properties"]
        assert props["$insert_id"] == event.id  # the dedupe key is the signalkit event id
        assert props["time"] == T0_MS + 1000 * n  # milliseconds since the epoch
        assert props["distinct_id"] == "user-1"
        assert props["token"] == TOKEN
    assert sent == [to_mixpanel_event(e, token=TOKEN) for e in events]


def test_a_service_account_authenticates_with_the_project_id(sink: FaultySink) -> None:
    exporter = MixpanelExporter(
        TOKEN,
        service_account=("sk-bot.42.mp-service-account", "sa-secret"),
        project_id="3141592",
        host=sink.base_url,
    )
    assert exporter.export(every_kind()[:1]) is ExportResult.SUCCESS
    (request,) = sink.requests
    assert request.path == "/import?strict=1&project_id=3141592"
    assert request.headers["authorization"] == basic("sk-bot.42.mp-service-account", "sa-secret")


def test_a_legacy_api_secret_is_the_basic_user(sink: FaultySink) -> None:
    exporter = MixpanelExporter(TOKEN, api_secret="legacy-secret", host=sink.base_url)
    assert exporter.export(every_kind()[:1]) is ExportResult.SUCCESS
    assert sink.requests[0].headers["authorization"] == basic("legacy-secret")


def test_strict_can_be_turned_off_and_a_proxy_path_and_headers_are_kept(sink: FaultySink) -> None:
    exporter = MixpanelExporter(
        TOKEN, host=sink.base_url + "/mixpanel/", strict=False, headers={"X-Proxy-Key": "pk-1"}
    )
    assert exporter.export(every_kind()[:1]) is ExportResult.SUCCESS
    assert sink.requests[0].path == "/mixpanel/import?strict=0"
    assert sink.requests[0].headers["x-proxy-key"] == "pk-1"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"project_token": ""}, "project_token"),
        ({"project_token": "has space"}, "project_token"),
        ({"service_account": ("user", "secret")}, "project_id"),
        (
            {"service_account": ("user", "secret"), "project_id": "1", "api_secret": "x"},
            "api_secret",
        ),
        ({"service_account": "user:secret", "project_id": "1"}, "service_account"),
        ({"host": "api.mixpanel.com"}, "host"),
        ({"host": "https://user:pw@api.mixpanel.com"}, "host"),
        ({"host": "https://api.mixpanel.com/?x=1"}, "host"),
        ({"max_batch_events": 0}, "max_batch_events"),
    ],
)
def test_a_bad_argument_raises_config_error_naming_it(kwargs: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {"project_token": TOKEN, **kwargs}
    with pytest.raises(ConfigError, match=field):
        MixpanelExporter(**arguments)


def test_the_defaults_are_mixpanels_documented_limits() -> None:
    exporter = MixpanelExporter(TOKEN)
    assert exporter.name == "mixpanel"
    assert exporter.max_batch_events == 2000
    assert exporter.max_batch_bytes == 2_000_000
    assert exporter.endpoint.startswith("https://[redacted]@api.mixpanel.com/import?")
    assert exporter.retry_policy.base_s == 2.0  # Mixpanel: back off from 2 s ...
    assert exporter.retry_policy.cap_s == 60.0  # ... doubling up to 60 s


# -- the mapping ---------------------------------------------------------------------------------

COMMON = {
    "distinct_id": "user-1",
    "token": TOKEN,
    "$user_id": "user-1",
    "$device_id": "anon-1",
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
        mapped = to_mixpanel_event(event, token=TOKEN)
        assert mapped["event"] == f"signalkit.{event.kind}"
        expected = {
            "time": T0_MS + 1000 * n,
            "$insert_id": event.id,
            "kind": event.kind,
            "event_id": event.id,
            "seq": n + 1,
            **COMMON,
            **BY_KIND[event.kind],
        }
        assert mapped["properties"] == expected, event.kind


def test_the_event_prefix_names_the_events() -> None:
    mapped = to_mixpanel_event(every_kind()[1], event_prefix="AI ")
    assert mapped["event"] == "AI action"
    assert "token" not in mapped["properties"]


@pytest.mark.parametrize(
    ("subject", "distinct_id", "user", "device"),
    [
        (sk.Subject(user_id="u-1"), "u-1", "u-1", None),
        (sk.Subject(user_id="u-1", anonymous_id="a-1"), "u-1", "u-1", "a-1"),
        (sk.Subject(anonymous_id="a-1", session_id="s-1"), "$device:a-1", None, "a-1"),
        (sk.Subject(session_id="s-1"), "$device:session:s-1", None, "session:s-1"),
        (
            sk.Subject(tenant_id="acme"),
            f"$device:exposure:{EXPOSURE_ID}",
            None,
            f"exposure:{EXPOSURE_ID}",
        ),
        (sk.Subject(user_id="null", session_id="s-1"), "$device:session:s-1", None, "session:s-1"),
        (
            sk.Subject(user_id="Undefined"),
            f"$device:exposure:{EXPOSURE_ID}",
            None,
            f"exposure:{EXPOSURE_ID}",
        ),
    ],
)
def test_distinct_id_is_the_user_else_the_device_else_the_session_else_the_exposure(
    subject: sk.Subject, distinct_id: str, user: str | None, device: str | None
) -> None:
    for event in every_kind(subject):  # every event of one exposure: one person, one funnel
        props = to_mixpanel_event(event)["properties"]
        assert props["distinct_id"] == distinct_id
        assert props.get("$user_id") == user
        assert props.get("$device_id") == device


def test_an_id_mixpanel_would_refuse_as_insert_id_is_replaced_by_a_stable_digest() -> None:
    event = every_kind()[1].model_copy(update={"id": "legacy:event/42 with spaces and more"})
    first = to_mixpanel_event(event)["properties"]["$insert_id"]
    assert first == to_mixpanel_event(event)["properties"]["$insert_id"]
    assert len(first) == 36
    assert first.isalnum()
    assert to_mixpanel_event(event)["properties"]["event_id"] == event.id


def test_attributes_are_prefixed_so_they_cannot_change_the_dedupe_key() -> None:
    event = every_kind()[1].model_copy(
        update={"attributes": {"time": 1, "distinct_id": "evil", "$insert_id": "x", "kind": "y"}}
    )
    props = to_mixpanel_event(event)["properties"]
    assert (props["time"], props["distinct_id"], props["$insert_id"], props["kind"]) == (
        T0_MS + 1000,
        "user-1",
        event.id,
        "action",
    )
    assert props["attr.time"] == 1
    assert props["attr.distinct_id"] == "evil"


def test_a_long_text_is_cut_to_255_bytes_at_a_character_boundary_and_flagged() -> None:
    long = "é" * 200  # 400 bytes of UTF-8
    event = every_kind()[2].model_copy(update={"original": long, "corrected": "ok"})
    props = to_mixpanel_event(event)["properties"]
    assert props["original"] == "é" * 127  # 254 bytes: the 128th would split at byte 255
    assert props["original_chars"] == 200  # the real length is kept
    assert props["corrected"] == "ok"
    assert props["truncated"] == ["original"]
    assert "truncated" not in to_mixpanel_event(every_kind()[2])["properties"]


def test_a_long_impression_list_is_capped_and_counted() -> None:
    items = tuple(sk.Item(id=f"document-{i:04d}") for i in range(300))
    event = every_kind()[0].model_copy(update={"items": items})
    props = to_mixpanel_event(event)["properties"]
    assert props["item_count"] == 300
    assert props["item_ids"] == [f"document-{i:04d}" for i in range(100)]
    assert props["truncated"] == ["item_ids"]


def test_the_mapping_is_the_same_bytes_every_time() -> None:
    events = every_kind()
    exporter = MixpanelExporter(TOKEN)
    assert exporter.encode(events, "2026-11-06T08:49:37Z") == exporter.encode(
        [e.model_copy() for e in events], "2030-01-01T00:00:00Z"
    )


# -- delivery through a client: limits, retries, splits ------------------------------------------


def test_every_kind_recorded_by_a_client_arrives_as_mixpanel_events(sink: FaultySink) -> None:
    client = client_for(MixpanelExporter(TOKEN, host=sink.base_url))
    try:
        ids = record_every_kind(client, user_id="user-1", session_id="sess-1")
        assert client.flush(10)
    finally:
        client.shutdown(5)
    assert insert_ids(sink.requests) == ids
    names = [e["event"] for r in sink.requests for e in mixpanel_events(r)]
    assert names == [
        "signalkit.exposure",
        "signalkit.action",
        "signalkit.correction",
        "signalkit.toggle",
        "signalkit.toggle",
        "signalkit.outcome",
        "signalkit.feedback",
    ]
    assert client.stats.delivered == {"mixpanel": 7}


def deliver_actions(exporter: MixpanelExporter, count: int, **attributes: Any) -> list[str]:
    """Record an exposure and ``count`` actions on it through a client; return their ids."""
    client = client_for(exporter, batch_size=count + 1)
    try:
        with client.exposure("search", user_id="user-1") as exp:
            pass
        ids = [exp.id]
        for n in range(count):
            event = client.action(exp, "clicked", item_id=f"doc-{n}", attributes=attributes)
            assert event is not None
            ids.append(event.id)
        assert client.flush(30)
        assert client.stats.dropped == {}
    finally:
        client.shutdown(5)
    return ids


def test_many_events_go_in_requests_of_at_most_2000() -> None:
    # The sink enforces Mixpanel's limits: a request over them would be answered 413.
    with FaultySink(max_events=2000, max_body_bytes=2_000_000) as sink:
        ids = deliver_actions(MixpanelExporter(TOKEN, host=sink.base_url), 4499)
        assert all(r.status == 200 for r in sink.requests)
        sizes = [len(r.events) for r in sink.requests]
        assert max(sizes) == 2000  # cut at Mixpanel's count, not below it
        assert sum(sizes) == 4500
        assert insert_ids(sink.requests) == ids


def test_large_events_go_in_requests_of_at_most_2_mb() -> None:
    with FaultySink(max_events=2000, max_body_bytes=2_000_000) as sink:
        padding = {f"note{i}": "n" * 200 for i in range(10)}  # about 3 KB an event
        ids = deliver_actions(MixpanelExporter(TOKEN, host=sink.base_url), 1999, **padding)
        assert all(r.status == 200 for r in sink.requests)
        assert len(sink.requests) >= 3
        assert all(len(r.body) <= 2_000_000 for r in sink.requests)
        assert insert_ids(sink.requests) == ids


def test_a_body_over_the_byte_limit_is_not_sent(sink: FaultySink) -> None:
    exporter = MixpanelExporter(TOKEN, host=sink.base_url, max_batch_bytes=5000)
    result = exporter.export(every_kind() * 3)
    assert isinstance(result, ExportFailure)
    assert result.too_large
    assert result.status is None
    assert sink.requests == []


def test_a_huge_correction_is_cut_and_delivered_not_dropped(sink: FaultySink) -> None:
    client = client_for(MixpanelExporter(TOKEN, host=sink.base_url), max_text_chars=1_000_000)
    try:
        with client.exposure("reply-draft", user_id="user-1") as exp:
            pass
        # nearly equal texts: Levenshtein over 600,000 characters stays quick
        fix = client.correction(exp, original="a" * 600_000, corrected="a" * 599_990 + "b" * 20)
        assert fix is not None
        assert len(fix.to_json()) > 1_000_000  # over Mixpanel's 1 MB per event
        assert client.flush(10)
    finally:
        client.shutdown(5)
    (sent,) = [
        e for r in sink.requests for e in mixpanel_events(r) if e["event"].endswith("correction")
    ]
    assert sent["properties"]["original"] == "a" * 255
    assert sent["properties"]["original_chars"] == 600_000
    assert sent["properties"]["corrected_chars"] == 600_010
    assert sent["properties"]["truncated"] == ["original", "corrected"]
    assert client.stats.dropped == {}


def test_a_retried_batch_is_byte_identical(sink: FaultySink) -> None:
    sink.script([503, Respond(429, retry_after=0), 200])
    client = client_for(MixpanelExporter(TOKEN, host=sink.base_url, retry_policy=FAST))
    try:
        ids = record_every_kind(client, user_id="user-1")
        assert client.flush(10)
    finally:
        client.shutdown(5)
    first, second, third = sink.requests
    assert [r.status for r in sink.requests] == [503, 429, 200]
    assert first.raw_body == second.raw_body == third.raw_body
    assert first.headers["idempotency-key"] == third.headers["idempotency-key"]
    assert insert_ids([third]) == ids
    assert client.stats.retried == 2


def test_a_413_splits_the_batch_and_a_single_oversized_event_is_dropped_and_counted() -> None:
    with FaultySink(max_body_bytes=6000) as sink:  # a proxy with a smaller limit than Mixpanel
        client = client_for(MixpanelExporter(TOKEN, host=sink.base_url), batch_size=100)
        try:
            with client.exposure("search", user_id="user-1") as exp:
                pass
            ids = [exp.id]
            for n in range(40):
                event = client.action(exp, "clicked", item_id=f"doc-{n}")
                assert event is not None
                ids.append(event.id)
            big = {f"k{i:02d}": "v" * 255 for i in range(30)}  # about 9 KB as Mixpanel JSON
            assert client.action(exp, "copied", attributes=big) is not None
            assert client.flush(20)
        finally:
            client.shutdown(5)
        assert 413 in [r.status for r in sink.requests]
        delivered = insert_ids([r for r in sink.requests if r.accepted])
        assert sorted(delivered) == sorted(ids)
        assert client.stats.dropped == {"too_large": 1}


def test_401_pauses_keeping_the_data_and_400_drops_with_mixpanels_message(
    sink: FaultySink,
) -> None:
    exporter = MixpanelExporter(TOKEN, host=sink.base_url)
    sink.script([Respond(401, body=b'{"error": "Invalid credentials", "status": 0}')])
    refused = exporter.export(every_kind())
    assert isinstance(refused, ExportFailure)
    assert refused.unauthorized
    assert refused.status == 401

    body = {
        "code": 400,
        "error": "some data points in the request failed validation",
        "status": "Bad Request",
        "num_records_imported": 5,
        "failed_records": [{"index": 0, "insert_id": EXPOSURE_ID, "field": "properties.time"}],
    }
    sink.script([Respond(400, body=orjson.dumps(body))])
    invalid = exporter.export(every_kind())
    assert isinstance(invalid, ExportFailure)
    assert not invalid.retryable
    assert not invalid.too_large
    assert invalid.status == 400
    assert "some data points in the request failed validation" in invalid.message


def test_credentials_never_show_in_repr_or_messages(sink: FaultySink) -> None:
    exporter = MixpanelExporter(
        TOKEN,
        service_account=("sa-user-name", "sa-secret-value"),
        project_id="3141592",
        host=sink.base_url,
    )
    sink.respond_with(401, body=lambda r: orjson.dumps({"error": f"echo {dict(r.headers)}"}))
    result = exporter.export(every_kind()[:1])
    assert isinstance(result, ExportFailure)
    blob = base64.b64encode(b"sa-user-name:sa-secret-value").decode()
    for text in (repr(exporter), exporter.endpoint, result.message):
        assert "sa-secret-value" not in text
        assert blob not in text
        assert "sa-user-name" not in text


# -- packaging -----------------------------------------------------------------------------------


def test_the_public_names_are_the_documented_ones() -> None:
    assert sorted(signalkit_mixpanel.__all__) == [
        "MixpanelExporter",
        "MixpanelSdkExporter",
        "__version__",
        "to_mixpanel_event",
    ]
    for name in signalkit_mixpanel.__all__:
        assert getattr(signalkit_mixpanel, name) is not None


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_importing_the_package_imports_neither_the_sdk_nor_httpx() -> None:
    done = run_python(
        "import sys, signalkit_mixpanel\n"
        "signalkit_mixpanel.MixpanelExporter('t0ken')\n"
        "print(sorted(m for m in ('mixpanel', 'httpx', 'requests') if m in sys.modules))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_sdk_exporter_without_the_sdk_says_how_to_install_it() -> None:
    done = run_python(
        "import sys; sys.modules['mixpanel'] = None  # what a missing package looks like\n"
        "import signalkit, signalkit_mixpanel\n"
        "try:\n"
        "    signalkit_mixpanel.MixpanelSdkExporter(object())\n"
        "except signalkit.ConfigError as exc:\n"
        "    print(exc)"
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'signalkit-mixpanel[sdk]'" in done.stdout


# -- the Mixpanel SDK ----------------------------------------------------------------------------


class MixpanelFormSink:
    """A real HTTP server on 127.0.0.1 answering the Mixpanel SDK like /track and /import do.

    The SDK posts form fields (``data=<json>&verbose=1&ip=0``), which FaultySink answers 400
    as an unreadable body, so the SDK's success path needs this small sink.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                headers = {k.lower(): v for k, v in self.headers.items()}
                sink.requests.append((self.path, headers, json.loads(form["data"][0])))
                body = b'{"status": 1, "error": null}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def server_bind(self) -> None:  # no reverse DNS lookup of 127.0.0.1
                TCPServer.server_bind(self)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def form_sink() -> Iterator[MixpanelFormSink]:
    s = MixpanelFormSink()
    yield s
    s.close()


def test_the_sdk_sends_the_same_events_as_the_import_api(sink: FaultySink) -> None:
    mixpanel = pytest.importorskip("mixpanel")
    consumer = mixpanel.Consumer(events_url=f"{sink.base_url}/track", retry_limit=0)
    exporter = MixpanelSdkExporter(mixpanel.Mixpanel(TOKEN, consumer=consumer))
    events = every_kind()

    for event in events:  # one at a time: FaultySink answers the SDK's form body 400
        assert isinstance(exporter.export([event]), ExportFailure)

    assert [r.path for r in sink.requests] == ["/track"] * len(events)
    by_sdk = [json.loads(parse_qs(r.body.decode())["data"][0]) for r in sink.requests]
    by_http = mixpanel_events_of(events)
    for sdk, http in zip(by_sdk, by_http, strict=True):
        assert sdk["event"] == http["event"]
        only_sdk = set(sdk["properties"]) - set(http["properties"])
        only_http = set(http["properties"]) - set(sdk["properties"])
        assert only_sdk == {"mp_lib", "$lib_version"}  # the SDK's own name and version
        assert only_http == set()
        for key, value in http["properties"].items():
            assert sdk["properties"][key] == value, key  # time, $insert_id, distinct_id...


def mixpanel_events_of(events: list[sk.Event]) -> list[dict[str, Any]]:
    """What MixpanelExporter sends for ``events``, parsed back."""
    return list(orjson.loads(MixpanelExporter(TOKEN).encode(events, "")))


def test_an_sdk_failure_is_retryable(sink: FaultySink) -> None:
    mixpanel = pytest.importorskip("mixpanel")
    consumer = mixpanel.Consumer(events_url=f"{sink.base_url}/track", retry_limit=0)
    result = MixpanelSdkExporter(mixpanel.Mixpanel(TOKEN, consumer=consumer)).export(every_kind())
    assert isinstance(result, ExportFailure)
    assert result.retryable


def test_the_sdk_exporter_delivers_through_a_client(form_sink: MixpanelFormSink) -> None:
    mixpanel = pytest.importorskip("mixpanel")
    consumer = mixpanel.Consumer(events_url=f"{form_sink.base_url}/track", retry_limit=0)
    client = client_for(MixpanelSdkExporter(mixpanel.Mixpanel(TOKEN, consumer=consumer)))
    try:
        ids = record_every_kind(client, user_id="user-1")
        assert client.flush(10)
    finally:
        client.shutdown(5)
    assert [data["properties"]["$insert_id"] for _, _, data in form_sink.requests] == ids
    assert client.stats.delivered == {"mixpanel-sdk": 7}


def test_the_sdk_import_method_batches_with_a_buffered_consumer(
    form_sink: MixpanelFormSink,
) -> None:
    mixpanel = pytest.importorskip("mixpanel")
    consumer = mixpanel.BufferedConsumer(
        max_size=50, import_url=f"{form_sink.base_url}/import", retry_limit=0
    )
    exporter = MixpanelSdkExporter(
        mixpanel.Mixpanel(TOKEN, consumer=consumer),
        method="import",
        consumer=consumer,
        api_secret="legacy-secret",
    )
    events = every_kind()
    assert exporter.export(events) is ExportResult.SUCCESS
    ((path, headers, data),) = form_sink.requests  # one request for the batch
    assert path == "/import"
    assert headers["authorization"] == basic("legacy-secret")
    assert [e["properties"]["$insert_id"] for e in data] == [e.id for e in events]
    assert [e["properties"]["time"] for e in data] == [T0_MS + 1000 * n for n in range(6)]


def test_the_sdk_exporter_refuses_what_is_not_a_mixpanel_client() -> None:
    pytest.importorskip("mixpanel")
    with pytest.raises(ConfigError, match="client"):
        MixpanelSdkExporter(object())
