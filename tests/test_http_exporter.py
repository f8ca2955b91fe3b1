"""HttpExporter against a real HTTP server on 127.0.0.1 (tests/sinks.py): body, gzip, NDJSON,
headers, every status, broken connections, limits, secrets, fork; and the sink itself."""

from __future__ import annotations

import base64
import gzip
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest

import signalkit as sk
from signalkit import ConfigError, ExportFailure, ExportResult, RetryPolicy
from signalkit.exporters.http import ENVELOPE_BYTES, MESSAGE_CHARS, HttpExporter
from sinks import CloseMidResponse, Disconnect, FaultySink, Hang, Respond

REPO = Path(__file__).resolve().parents[1]

# -- fixtures ------------------------------------------------------------------------------------


def make_events(count: int = 40) -> list[sk.Event]:
    """Real events of every kind, built directly (independent of the recording pipeline)."""
    start = datetime(2026, 11, 6, 8, 49, 37, 123456, tzinfo=UTC)
    score = sk.Score(strength=0.6, polarity=1.0, reasons=(sk.Reason(factor="base", effect=0.6),))
    made: list[sk.Event] = []
    exposure_id = ""
    for n in range(count):
        common: dict[str, Any] = {
            "id": str(uuid.UUID(int=(0x01A2 << 112) | (7 << 76) | n)),
            "ts": start + timedelta(milliseconds=n),
            "service": "http-tests",
            "producer_id": "19e760ca49c216dc",
            "seq": n + 1,
            "subject": sk.Subject(user_id=f"user-{n // 5}"),
            "model": sk.ModelRef(name="drafter", version="v1"),
            "attributes": {"n": n, "plan": "pro", "ratio": n / 7, "beta": n % 2 == 0},
            "score": score,
        }
        kind = n % 5
        if kind == 0:
            exposure_id = common["id"]
            made.append(sk.ExposureEvent(**common, exposure_id=exposure_id, surface="reply-draft"))
            continue
        common["exposure_id"] = exposure_id
        if kind == 1:
            made.append(sk.ActionEvent(**common, action="accepted", time_to_action_ms=850.0))
        elif kind == 2:
            made.append(
                sk.CorrectionEvent(
                    **common,
                    original="draft text",
                    corrected="final text ✓",
                    edit_distance=6,
                    similarity=0.6,
                )
            )
        elif kind == 3:
            made.append(sk.ToggleEvent(**common, state="expanded", element="why"))
        else:
            made.append(sk.FeedbackEvent(**common, rating=1.0, comment=f"comment {n} — ünïcode"))
    return made


@pytest.fixture(scope="module")
def events() -> list[sk.Event]:
    """Forty events of five kinds."""
    return make_events()


@pytest.fixture(scope="module")
def shared_sink() -> Iterator[FaultySink]:
    with FaultySink(lifetime_s=60) as sink:
        yield sink


@pytest.fixture
def sink(shared_sink: FaultySink) -> FaultySink:
    """The module's sink, reset: up, answering 200, no limits, nothing recorded."""
    shared_sink.max_body_bytes = shared_sink.max_events = None
    shared_sink.reset()
    return shared_sink


@pytest.fixture
def make_exporter() -> Iterator[Callable[..., HttpExporter]]:
    """Build exporters that are shut down after the test (no connection outlives it)."""
    made: list[HttpExporter] = []

    def make(endpoint: str, **options: Any) -> HttpExporter:
        exporter = HttpExporter(endpoint, **options)
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.shutdown()


def failure(result: ExportResult | ExportFailure) -> ExportFailure:
    assert isinstance(result, ExportFailure), result
    return result


def envelope(batch: list[sk.Event], sent_at: bytes) -> bytes:
    return (
        b'{"events":[' + b",".join(e.to_json() for e in batch) + b'],"sent_at":"' + sent_at + b'"}'
    )


# -- the body ------------------------------------------------------------------------------------


def test_export_posts_the_events_json_spliced_into_an_envelope_with_sent_at(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(sink.url, gzip_threshold_bytes=None)
    before = datetime.now(UTC)
    assert exporter.export(events) is ExportResult.SUCCESS
    (request,) = sink.requests
    assert request.method == "POST"
    assert request.path == "/v1/events"
    assert request.headers["content-type"] == "application/json"
    assert "content-encoding" not in request.headers
    sent_at = request.json()["sent_at"]
    assert request.raw_body == envelope(events, sent_at.encode())
    assert sent_at.endswith("Z")
    assert before <= datetime.fromisoformat(sent_at) <= datetime.now(UTC)
    assert request.event_ids == [e.id for e in events]
    assert [sk.events.parse_event(e) for e in request.events] == events


def test_each_export_makes_exactly_one_request(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(sink.url)
    sink.script([503, 400, 413, 401, 200])
    for _ in range(5):
        exporter.export(events[:3])
    assert [r.status for r in sink.requests] == [503, 400, 413, 401, 200]


def test_an_empty_batch_sends_nothing(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter]
) -> None:
    assert make_exporter(sink.url).export([]) is ExportResult.SUCCESS
    assert sink.requests == []


def test_a_retried_batch_is_sent_byte_identical_including_sent_at(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(sink.url, gzip_threshold_bytes=1024)
    sink.script([Respond(503), Respond(429, retry_after=0), CloseMidResponse(), Respond(200)])
    results = []
    for _ in range(4):
        results.append(exporter.export(list(events)))  # a new list of the same events
        time.sleep(0.002)  # a fresh timestamp would differ
    assert results[-1] is ExportResult.SUCCESS
    assert all(failure(r).retryable for r in results[:3])
    bodies = {r.raw_body for r in sink.requests}
    keys = {r.headers["idempotency-key"] for r in sink.requests}
    assert len(sink.requests) == 4
    assert len(bodies) == 1  # gzip included: same bytes on the wire
    assert len(keys) == 1
    assert sink.requests[0].headers["content-encoding"] == "gzip"


def test_batches_retried_in_turns_keep_their_own_first_sent_at(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(sink.url)
    first, second = events[:5], events[5:10]
    sink.script([500, 500, 500, 200, 200])
    for batch in (first, second, first, first, second):
        exporter.export(batch)
        time.sleep(0.002)
    a1, b1, a2, a3, b2 = sink.requests
    assert a1.body == a2.body == a3.body
    assert b1.body == b2.body
    assert a1.json()["sent_at"] != b1.json()["sent_at"]


def test_a_batch_sent_again_after_it_was_delivered_gets_a_new_sent_at(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    # A replay after success (a crash before the lane recorded it) is a new request: the events
    # are byte-identical, sent_at is not. Receivers dedupe by event id.
    exporter = make_exporter(sink.url)
    exporter.export(events[:2])
    time.sleep(0.002)
    exporter.export(events[:2])
    one, two = sink.requests
    assert one.events == two.events
    assert one.json()["sent_at"] != two.json()["sent_at"]
    # Idempotency-Key promises the same payload, so it follows sent_at.
    assert one.headers["idempotency-key"] != two.headers["idempotency-key"]


def test_bodies_over_the_gzip_threshold_are_gzipped_and_decode_to_the_plain_body(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(sink.url, gzip_threshold_bytes=2000)
    exporter.export(events[:1])  # well under 2000 bytes
    exporter.export(events)  # well over
    small, big = sink.requests
    assert "content-encoding" not in small.headers
    assert small.raw_body == small.body
    assert big.headers["content-encoding"] == "gzip"
    assert gzip.decompress(big.raw_body) == big.body
    assert big.body == envelope(events, big.json()["sent_at"].encode())
    assert len(big.raw_body) < len(big.body) / 2


def test_gzip_threshold_none_never_compresses_and_zero_always_does(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    make_exporter(sink.url, gzip_threshold_bytes=None).export(events)
    make_exporter(sink.url, gzip_threshold_bytes=0).export(events[:1])
    never, always = sink.requests
    assert "content-encoding" not in never.headers
    assert always.headers["content-encoding"] == "gzip"


def test_ndjson_sends_one_event_per_line_without_an_envelope(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(sink.url, format="ndjson", gzip_threshold_bytes=1024)
    sink.script([503])
    assert failure(exporter.export(events)).retryable
    assert exporter.export(events) is ExportResult.SUCCESS
    retried, request = sink.requests
    assert retried.raw_body == request.raw_body
    assert retried.headers["idempotency-key"] == request.headers["idempotency-key"]
    assert request.headers["content-type"] == "application/x-ndjson"
    assert request.headers["content-encoding"] == "gzip"
    assert request.body == b"".join(e.to_json() + b"\n" for e in events)
    assert request.event_ids == [e.id for e in events]


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_a_body_is_never_more_than_its_events_plus_one_byte_each_plus_envelope_bytes(
    sink: FaultySink,
    make_exporter: Callable[..., HttpExporter],
    events: list[sk.Event],
    fmt: str,
) -> None:
    exporter = make_exporter(sink.url, format=fmt, gzip_threshold_bytes=None)
    for n in (1, 2, 7, len(events)):
        exporter.export(events[:n])
    for request in sink.requests:
        n = len(request.events)
        assert len(request.body) <= sum(len(e.to_json()) + 1 for e in events[:n]) + ENVELOPE_BYTES


# -- headers and auth ----------------------------------------------------------------------------


def test_headers_and_the_bearer_token_are_sent_with_every_request(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(
        sink.url, headers={"X-Api-Key": "key-123", "X-Tenant": "acme"}, auth_token="tok-456"
    )
    sink.script([500, 200])
    exporter.export(events[:1])
    exporter.export(events[:1])
    for request in sink.requests:
        assert request.headers["authorization"] == "Bearer tok-456"
        assert request.headers["x-api-key"] == "key-123"
        assert request.headers["x-tenant"] == "acme"
        assert request.headers["user-agent"] == f"signalkit/{sk.__version__}"
        assert len(request.headers["idempotency-key"]) == 32


def test_a_custom_content_type_header_wins(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(sink.url, headers={"Content-Type": "application/vnd.acme+json"})
    exporter.export(events[:1])
    assert sink.requests[0].headers["content-type"] == "application/vnd.acme+json"


def test_credentials_in_the_url_are_sent_as_basic_auth_not_in_the_url(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    url = sink.url.replace("http://", f"http://ingest:{quote('p@ss:w/rd', safe='')}@")
    exporter = make_exporter(url)
    assert exporter.export(events[:1]) is ExportResult.SUCCESS
    (request,) = sink.requests
    expected = base64.b64encode(b"ingest:p@ss:w/rd").decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert request.path == "/v1/events"
    assert exporter.endpoint == sink.url.replace("http://", "http://[redacted]@")


def test_a_given_httpx_transport_is_used(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    import httpx

    exporter = make_exporter(sink.url, transport=httpx.HTTPTransport(local_address="127.0.0.1"))
    assert exporter.export(events[:1]) is ExportResult.SUCCESS


# -- every status --------------------------------------------------------------------------------


def expected_class(status: int) -> str:
    """DESIGN §7 for HttpExporter, written out independently of signalkit._retry."""
    if status < 200:
        return "broken"  # no final answer: the exchange failed like a dropped connection
    if status < 300:
        return "success"
    if status < 400 or status in (401, 403):
        return "pause"  # redirects are not followed; credentials need a person
    if status == 413:
        return "split"
    if status in (408, 429) or status >= 500:
        return "retry"
    return "drop"


def test_every_status_from_100_to_599_with_every_retry_after_form_maps_to_its_failure_fields(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(sink.url, timeout_s=2.0)
    batch = events[:2]
    wrong: list[str] = []
    for status in range(100, 600):
        for form in ("absent", "seconds", "date", "garbage"):
            value = {
                "absent": None,
                "seconds": "7",
                "date": format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True),
                "garbage": "in a bit",
            }[form]
            sink.respond_with(status, retry_after=value, body=f'{{"error": "said {status}"}}')
            result = exporter.export(batch)
            kind = expected_class(status)
            if kind == "success":
                if result is not ExportResult.SUCCESS:
                    wrong.append(f"{status}/{form}: {result}")
                continue
            if not isinstance(result, ExportFailure):
                wrong.append(f"{status}/{form}: {result}")
                continue
            if kind == "broken":
                if not result.retryable or result.too_large or result.unauthorized:
                    wrong.append(f"{status}/{form}: {result}")
                continue
            want_after = {"absent": None, "garbage": None, "seconds": 7.0}.get(form, 120.0)
            got_after = result.retry_after_s
            if (
                result.status != status
                or result.retryable != (kind == "retry")
                or result.too_large != (kind == "split")
                or result.unauthorized != (kind == "pause")
                or not result.message.startswith(f"HTTP {status}")
                or (status not in (204, 304) and f"said {status}" not in result.message)
                or (want_after is None and got_after is not None)
                or (
                    want_after is not None
                    and not (want_after - 2 <= (got_after or -1) <= want_after)
                )
            ):
                wrong.append(f"{status}/{form}: {result}")
    assert wrong == []
    assert len(sink.requests) == 500 * 4


def test_the_server_message_is_one_line_cut_to_300_characters(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(sink.url)
    sink.respond_with(400, body="bad\r\nrequest:\t" + "x" * 5000, content_type="text/plain")
    result = failure(exporter.export(events[:1]))
    assert result.message.startswith("HTTP 400 Bad Request: bad request: xxx")
    assert len(result.message) == MESSAGE_CHARS
    assert result.message.endswith("…")
    assert "\n" not in result.message
    assert not result.retryable


def test_a_json_error_body_gives_its_message(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(sink.url)
    sink.respond_with(422, body=orjson.dumps({"error": {"code": 7, "message": "bad field ts"}}))
    assert failure(exporter.export(events[:1])).message == (
        "HTTP 422 Unprocessable Entity: bad field ts"
    )


def test_a_redirect_is_not_followed_and_pauses_the_exporter(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(sink.url)
    sink.respond_with(308, headers={"Location": sink.base_url + "/v2/events?key=k-secret"})
    result = failure(exporter.export(events[:1]))
    assert result.unauthorized
    assert not result.retryable
    assert "redirects are not followed" in result.message
    assert "/v2/events?key=[redacted]" in result.message
    assert len(sink.requests) == 1


def test_a_413_from_the_sink_says_the_batch_is_too_large(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    sink.max_events = 3
    exporter = make_exporter(sink.url)
    result = failure(exporter.export(events[:4]))
    assert (result.too_large, result.retryable, result.status) == (True, False, 413)
    assert "4 events over 3" in result.message
    assert exporter.export(events[:3]) is ExportResult.SUCCESS


# -- broken connections --------------------------------------------------------------------------


def test_connection_refused_is_a_retryable_failure_until_the_sink_is_back_on_its_port(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(sink.url, timeout_s=1.0)
    assert exporter.export(events[:1]) is ExportResult.SUCCESS  # a pooled keep-alive connection
    sink.down()
    started = time.monotonic()
    result = failure(exporter.export(events[1:2]))
    assert time.monotonic() - started < 1.0
    assert result.retryable
    assert result.status is None
    assert result.message.startswith(f"POST {sink.url}: ")
    sink.up()
    assert exporter.export(events[1:2]) is ExportResult.SUCCESS
    assert sink.accepted_ids() == [events[0].id, events[1].id]


def test_a_hung_sink_is_a_retryable_failure_within_the_timeout(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(sink.url, timeout_s=0.25)
    sink.hang(5)
    started = time.monotonic()
    result = failure(exporter.export(events[:1]))
    assert 0.2 <= time.monotonic() - started < 0.25 + 0.5
    assert result.retryable
    assert "no answer within timeout_s=0.25" in result.message
    sink.respond_with(200)
    assert exporter.export(events[:1]) is ExportResult.SUCCESS


@pytest.mark.parametrize("status", [200, 500])
def test_a_response_cut_short_is_a_retryable_failure(
    sink: FaultySink,
    make_exporter: Callable[..., HttpExporter],
    events: list[sk.Event],
    status: int,
) -> None:
    exporter = make_exporter(sink.url, timeout_s=1.0)
    sink.respond_with(CloseMidResponse(status=status))
    started = time.monotonic()
    result = failure(exporter.export(events[:1]))
    assert time.monotonic() - started < 1.0 + 0.5
    assert result.retryable
    assert result.status is None
    assert "RemoteProtocolError" in result.message


def test_a_sink_that_hangs_up_without_answering_is_a_retryable_failure(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(sink.url)
    sink.script([Disconnect()])
    assert failure(exporter.export(events[:1])).retryable
    assert exporter.export(events[:1]) is ExportResult.SUCCESS


def test_one_connection_is_reused_across_exports(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(sink.url)
    sink.script([500, 429, 200, 400, 200])
    for i in range(5):
        exporter.export(events[i : i + 1])
    assert len({r.peer for r in sink.requests}) == 1


def test_shutdown_closes_the_connection_and_later_exports_send_nothing(
    sink: FaultySink, events: list[sk.Event]
) -> None:
    assert sink.wait_for_open_connections(0, timeout=2)  # earlier tests' connections are gone
    exporter = HttpExporter(sink.url)
    exporter.export(events[:1])
    assert sink.open_connections == 1
    exporter.shutdown()
    assert sink.wait_for_open_connections(0, timeout=2)
    result = failure(exporter.export(events[:1]))
    assert not result.retryable
    assert len(sink.requests) == 1
    exporter.shutdown()  # twice is harmless


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork() is POSIX only")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_child_opens_its_own_connection_and_leaves_the_parents_alone(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(sink.url)
    assert exporter.export(events[:1]) is ExportResult.SUCCESS
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            signal.alarm(10)
            code = 0 if exporter.export(events[1:2]) is ExportResult.SUCCESS else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 15
    while not (done := os.waitpid(pid, os.WNOHANG))[0]:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child did not finish")
        time.sleep(0.005)
    assert os.waitstatus_to_exitcode(done[1]) == 0
    assert exporter.export(events[2:3]) is ExportResult.SUCCESS
    parent_first, child, parent_again = sink.requests
    assert child.event_ids == [events[1].id]
    assert child.peer != parent_first.peer
    assert parent_again.peer == parent_first.peer


# -- limits --------------------------------------------------------------------------------------


def test_a_batch_over_max_batch_events_is_too_large_and_not_sent(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    result = failure(make_exporter(sink.url, max_batch_events=3).export(events[:4]))
    assert (result.too_large, result.retryable, result.status) == (True, False, None)
    assert "max_batch_events=3" in result.message
    assert sink.requests == []


def test_an_event_over_max_event_bytes_is_too_large_and_not_sent(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    limit = min(len(e.to_json()) for e in events) - 1
    result = failure(make_exporter(sink.url, max_event_bytes=limit).export(events[:1]))
    assert result.too_large
    assert f"max_event_bytes={limit}" in result.message
    assert sink.requests == []


def test_a_body_over_max_batch_bytes_is_too_large_and_not_sent(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    size = sum(len(e.to_json()) + 1 for e in events[:4]) + ENVELOPE_BYTES
    exporter = make_exporter(sink.url, max_batch_bytes=size, max_event_bytes=2000)
    assert exporter.export(events[:4]) is ExportResult.SUCCESS
    result = failure(exporter.export(events[:8]))
    assert result.too_large
    assert f"max_batch_bytes={size}" in result.message
    assert len(sink.requests) == 1


# -- secrets -------------------------------------------------------------------------------------

TOKEN = "tok_live_9f8e7d6c5b4a3210"
API_KEY = "ak_31415926535897932384"
PASSWORD = "pw:S3cr3t@home/%"


def bearer(url: str) -> tuple[dict[str, Any], list[str]]:
    return {"endpoint": url, "auth_token": TOKEN}, [TOKEN]


def api_key_header(url: str) -> tuple[dict[str, Any], list[str]]:
    return {"endpoint": url, "headers": {"X-Api-Key": API_KEY}}, [API_KEY]


def url_credentials(url: str) -> tuple[dict[str, Any], list[str]]:
    encoded = quote(PASSWORD, safe="")
    blob = base64.b64encode(f"ingest:{PASSWORD}".encode()).decode()
    return {"endpoint": url.replace("http://", f"http://ingest:{encoded}@")}, [
        PASSWORD,
        encoded,
        blob,
    ]


def echo_headers(request: Any) -> bytes:
    """A careless server: its error message repeats the request's headers."""
    return orjson.dumps({"message": f"rejected request with headers {dict(request.headers)}"})


@pytest.mark.parametrize("configure", [bearer, api_key_header, url_credentials])
def test_secrets_never_appear_in_repr_messages_or_logs(
    sink: FaultySink,
    make_exporter: Callable[..., HttpExporter],
    events: list[sk.Event],
    caplog: pytest.LogCaptureFixture,
    configure: Callable[[str], tuple[dict[str, Any], list[str]]],
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx and httpcore log every request at INFO/DEBUG
    options, secrets = configure(sink.url)
    exporter = make_exporter(timeout_s=0.2, **options)
    seen: list[str] = [repr(exporter), str(exporter), exporter.endpoint]

    sink.script(
        [
            Respond(200),
            Respond(401, body=echo_headers),
            Respond(500, body=echo_headers, content_type="text/plain"),
            Respond(400, body=echo_headers),
            Respond(302, headers={"Location": f"{sink.base_url}/v2/events"}),
            Hang(2),
            CloseMidResponse(),
        ]
    )
    results = [exporter.export(events[:2]) for _ in range(7)]
    sink.down()
    results.append(exporter.export(events[:2]))
    sink.up()
    exporter.shutdown()

    sent = " ".join(str(r.headers) for r in sink.requests)
    assert all(secret in sent or secret not in (TOKEN, API_KEY) for secret in secrets)
    assert "rejected request with headers" in failure(results[1]).message  # echoed, redacted
    seen += [repr(r) for r in results]
    seen += [record.getMessage() for record in caplog.records]
    seen.append(caplog.text)
    assert any("HTTP Request: POST" in s for s in seen)  # httpx did log each request
    leaks = [(secret, s) for s in seen for secret in secrets if secret in s]
    assert leaks == []


def test_a_secret_where_the_message_is_cut_leaves_no_prefix_behind(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(sink.url, auth_token=TOKEN)
    body = " \n" * 20_000 + "x" * (MESSAGE_CHARS - 30) + TOKEN + " tail"
    sink.respond_with(400, body=body, content_type="text/plain")
    message = failure(exporter.export(events[:1])).message
    assert len(message) == MESSAGE_CHARS
    assert TOKEN[:5] not in message


def test_query_values_are_redacted_in_repr_and_messages(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(sink.url + "?api_key=qk_271828182845&region=eu")
    assert repr(exporter) == (
        f"HttpExporter('{sink.url}?api_key=[redacted]&region=[redacted]', "
        "format='json', name='http')"
    )
    sink.respond_with(400, body="unknown key qk_271828182845")
    assert "qk_271828182845" not in failure(exporter.export(events[:1])).message


def test_config_errors_never_show_a_header_value_or_token(
    make_exporter: Callable[..., HttpExporter],
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_exporter("http://127.0.0.1:1/", headers={"X-Api-Key": "ak_secret\nvalue"})
    assert "ak_secret" not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        make_exporter("http://127.0.0.1:1/", auth_token="tok_secret value\n")
    assert "tok_secret" not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        make_exporter("http://u:pw_secret@127.0.0.1:99999/")
    assert "pw_secret" not in str(caught.value)


# -- configuration -------------------------------------------------------------------------------

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"endpoint": ""}, "endpoint"),
        ({"endpoint": 42}, "endpoint"),
        ({"endpoint": "ftp://127.0.0.1/x"}, "endpoint"),
        ({"endpoint": "127.0.0.1:8080/x"}, "endpoint"),
        ({"endpoint": "http://"}, "endpoint"),
        ({"endpoint": "http://127.0.0.1:99999/"}, "endpoint"),
        ({"endpoint": "http://127.0.0.1/x#part"}, "endpoint"),
        ({"endpoint": "http://exa mple.com/"}, "endpoint"),
        ({"headers": ["X-Key"]}, "headers"),
        ({"headers": {"Bad Name": "v"}}, "headers"),
        ({"headers": {"X-Key": 5}}, r"headers\['X-Key'\]"),
        ({"headers": {"X-Key": "é"}}, r"headers\['X-Key'\]"),
        ({"headers": {"Content-Length": "5"}}, r"headers\['Content-Length'\]"),
        ({"headers": {"Content-Encoding": "br"}}, r"headers\['Content-Encoding'\]"),
        ({"auth_token": ""}, "auth_token"),
        ({"auth_token": 123}, "auth_token"),
        ({"auth_token": "Bearer tok"}, "auth_token"),
        ({"auth_token": " tok"}, "auth_token"),
        ({"auth_token": "t", "headers": {"Authorization": "Basic x"}}, "auth_token"),
        ({"auth_token": "t", "endpoint": "http://u:p@127.0.0.1/"}, "auth_token"),
        (
            {"endpoint": "http://u:p@127.0.0.1/", "headers": {"Authorization": "Basic x"}},
            r"headers\['Authorization'\]",
        ),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": -1.0}, "timeout_s"),
        ({"timeout_s": float("nan")}, "timeout_s"),
        ({"timeout_s": float("inf")}, "timeout_s"),
        ({"timeout_s": "10"}, "timeout_s"),
        ({"timeout_s": True}, "timeout_s"),
        ({"gzip_threshold_bytes": -1}, "gzip_threshold_bytes"),
        ({"gzip_threshold_bytes": 1.5}, "gzip_threshold_bytes"),
        ({"format": "xml"}, "format"),
        ({"max_batch_events": 0}, "max_batch_events"),
        ({"max_batch_events": True}, "max_batch_events"),
        ({"max_batch_bytes": 10}, "max_batch_bytes"),
        ({"max_event_bytes": 0}, "max_event_bytes"),
        ({"max_event_bytes": 5 * MIB}, "max_event_bytes"),
        ({"retry_policy": RetryPolicy(base_s=0)}, r"retry_policy\.base_s"),
        ({"retry_policy": RetryPolicy(max_attempts=0)}, r"retry_policy\.max_attempts"),
        ({"retry_policy": "fast"}, "retry_policy"),
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"transport": object()}, "transport"),
    ],
)
def test_a_bad_argument_raises_config_error_naming_it(
    options: dict[str, Any], argument: str
) -> None:
    options = {"endpoint": "http://127.0.0.1:1/v1/events", **options}
    with pytest.raises(ConfigError, match=rf"^HttpExporter\.{argument}"):
        HttpExporter(**options)


def test_the_exporter_offers_what_the_delivery_lanes_read(sink: FaultySink) -> None:
    policy = RetryPolicy(base_s=1.0, cap_s=10.0)
    exporter = HttpExporter(
        sink.url,
        retry_policy=policy,
        max_batch_events=500,
        max_batch_bytes=MIB,
        max_event_bytes=32 * 1024,
        name="warehouse",
    )
    assert isinstance(exporter, sk.Exporter)
    assert exporter.retry_policy is policy
    assert (exporter.max_batch_events, exporter.max_batch_bytes) == (500, MIB)
    assert exporter.max_event_bytes == 32 * 1024
    assert exporter.name == "warehouse"
    default = HttpExporter(sink.url)
    assert default.retry_policy == RetryPolicy()
    assert (default.max_batch_events, default.max_batch_bytes) == (1000, 5 * MIB)
    assert default.max_event_bytes == MIB


def test_importing_signalkit_or_building_the_exporter_does_not_import_httpx() -> None:
    code = (
        "import sys, signalkit, signalkit.exporters.http as h\n"
        "h.HttpExporter('https://user:pw@example.com/e', auth_token=None, name='x')\n"
        "assert 'httpx' not in sys.modules, 'httpx imported'\n"
        "print('ok')"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# -- the sink ------------------------------------------------------------------------------------


def test_sink_answers_its_script_in_order_then_the_default(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(sink.url)
    sink.respond_with(202)
    sink.script([500, Respond(429, retry_after=3)])
    statuses = []
    for _ in range(4):
        result = exporter.export(events[:1])
        statuses.append(result.status if isinstance(result, ExportFailure) else result)
    assert statuses == [500, 429, ExportResult.SUCCESS, ExportResult.SUCCESS]
    assert [r.status for r in sink.requests] == [500, 429, 202, 202]
    assert sink.received_ids() == [events[0].id] * 4
    assert sink.accepted_ids() == [events[0].id] * 2


def test_sink_enforces_a_max_body_size_on_the_decoded_body(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    exporter = make_exporter(sink.url, gzip_threshold_bytes=0)
    sink.max_body_bytes = len(envelope(events[:3], b"2026-01-01T00:00:00.000000Z"))
    assert exporter.export(events[:3]) is ExportResult.SUCCESS
    result = failure(exporter.export(events[:4]))
    assert result.too_large
    assert result.status == 413
    assert len(sink.requests[1].raw_body) < sink.max_body_bytes  # gzipped, yet over when decoded


def test_sink_answers_400_to_a_body_it_cannot_read(sink: FaultySink) -> None:
    import httpx

    with httpx.Client() as client:
        bad_gzip = client.post(sink.url, content=b"nope", headers={"Content-Encoding": "gzip"})
        bad_json = client.post(sink.url, content=b"{nope", headers={"Content-Type": "text/json"})
    assert (bad_gzip.status_code, bad_json.status_code) == (400, 400)
    assert sink.received_ids() == []


def test_sink_waits_for_ids_and_requests(
    sink: FaultySink, make_exporter: Callable[..., HttpExporter], events: list[sk.Event]
) -> None:
    assert not sink.wait_for_ids([events[0].id], timeout=0.01)
    make_exporter(sink.url).export(events[:3])
    assert sink.wait_for_requests(1, timeout=1)
    assert sink.wait_for_ids({e.id for e in events[:3]}, timeout=1)
    assert sink.wait_for_ids(3, timeout=1)


def test_sink_stops_itself_after_its_lifetime() -> None:
    sink = FaultySink(lifetime_s=0.05).start()
    deadline = time.monotonic() + 2
    refused = False
    while not refused and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", sink.port), timeout=1).close()
            time.sleep(0.01)
        except ConnectionError:  # refused, or reset by the closing server
            refused = True
    assert refused
    assert not sink.is_up
    with pytest.raises(RuntimeError, match="stopped"):
        sink.up()


class _VendorExporter(HttpExporter):
    """What an adapter does: the vendor's batch body, everything else inherited."""

    content_type = "application/vnd.example+json"

    def encode(self, batch: Any, sent_at: str) -> bytes:
        return orjson.dumps(
            {"batch": [{"uuid": e.id, "event": f"signal {e.kind}"} for e in batch], "at": sent_at}
        )


def test_an_adapter_overrides_the_body_and_keeps_byte_identical_retries() -> None:
    from sinks import FaultySink as Sink

    events = [
        sk.ExposureEvent(
            id=str(uuid.uuid4()),
            ts=datetime.now(UTC),
            service="s",
            exposure_id="e",
            producer_id="p",
            seq=i + 1,
            surface="x",
        )
        for i in range(3)
    ]
    with Sink() as sink:
        sink.script([503])
        exporter = _VendorExporter(sink.url, gzip_threshold_bytes=None)
        try:
            first = exporter.export(events)
            second = exporter.export(events)
        finally:
            exporter.shutdown()
        assert isinstance(first, ExportFailure)
        assert first.retryable
        assert second is ExportResult.SUCCESS
        one, two = sink.requests
        assert one.raw_body == two.raw_body  # the retry is byte-identical, sent_at included
        assert one.headers["content-type"] == "application/vnd.example+json"
        assert [x["uuid"] for x in orjson.loads(two.raw_body)["batch"]] == [e.id for e in events]
