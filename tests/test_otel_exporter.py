"""OtelExporter: events as OpenTelemetry log-based events and metrics, through the real SDK.

The application-provider tests use the SDK's in-memory log exporter and metric reader; the
OTLP tests run a real OTLP/HTTP receiver on 127.0.0.1 (``otlp_receiver.py``) and build the
exporter from ``OTEL_*`` variables only. Anything that sets OpenTelemetry's process-wide
globals, or hides a package, runs in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from opentelemetry import trace
from opentelemetry._logs import Logger, LogRecord, get_logger_provider
from opentelemetry._logs import LoggerProvider as ApiLoggerProvider
from opentelemetry.metrics import get_meter_provider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

import signalkit as sk
from otlp_receiver import OtlpReceiver
from signalkit.exporters.otel import (
    STRENGTH_BUCKETS,
    TIME_TO_ACTION_BUCKETS_MS,
    OtelExporter,
)

SECRET = "s" * 32
SCALARS = (str, bool, int, float)


@dataclass
class AppOtel:
    """An application's own OpenTelemetry: providers with in-memory exporters."""

    logs: InMemoryLogRecordExporter
    reader: InMemoryMetricReader
    logger_provider: LoggerProvider
    meter_provider: MeterProvider

    def records(self, event_name: str | None = None) -> list[LogRecord]:
        return [
            r.log_record
            for r in self.logs.get_finished_logs()
            if event_name is None or r.log_record.event_name == event_name
        ]

    def metric_points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def metric(self, name: str) -> Any:
        data = self.reader.get_metrics_data()
        assert data is not None
        found = [
            metric
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == name
        ]
        assert len(found) == 1, name
        return found[0]


@pytest.fixture
def app_otel() -> Iterator[AppOtel]:
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider(
        resource=Resource.create({"service.name": "app"}), shutdown_on_exit=False
    )
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    yield AppOtel(logs, reader, logger_provider, meter_provider)
    logger_provider.shutdown()
    meter_provider.shutdown()


@pytest.fixture
def exporter(app_otel: AppOtel) -> OtelExporter:
    return OtelExporter(app_otel.logger_provider, app_otel.meter_provider)


@pytest.fixture
def otel_client(exporter: OtelExporter) -> Iterator[sk.Client]:
    client = sk.Client("checkout", exporters=[exporter], secret=SECRET)
    yield client
    client.shutdown(timeout=5)


def _at(exp: sk.Exposure, after_ms: int) -> datetime:
    return datetime.fromtimestamp((exp.shown_at_ms + after_ms) / 1000, UTC)


def _record_every_kind(client: sk.Client) -> list[sk.Event]:
    with client.exposure(
        "reply-draft",
        model="drafter",
        model_version="v1",
        user_id="user-1",
        session_id="sess-1",
        attributes={"plan": "pro", "n_docs": 3},
    ) as exp:
        exp.items = ["doc-a", sk.Item(id="doc-b", position=1, propensity=0.25)]
    events = [
        exp.event,
        client.action(exp, "accepted", at=_at(exp, 1500), attributes={"surface_version": 2}),
        client.correction(exp, "Helo there", "Hello there", at=_at(exp, 4000)),
        client.toggle(exp, "collapsed", element="why", dwell_ms=800.0, at=_at(exp, 5000)),
        client.outcome(exp, "ticket_resolved", value=1.0, success=True, at=_at(exp, 60_000)),
        client.feedback(exp, rating=2, scale=(1, 5), comment="too long", at=_at(exp, 9000)),
    ]
    assert all(e is not None for e in events)
    assert client.flush(5)
    return [e for e in events if e is not None]


def _ns(ts: datetime) -> int:
    return (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def _is_valid_attribute(value: object) -> bool:
    if isinstance(value, SCALARS):
        return True
    if isinstance(value, list | tuple):
        return len({type(v) for v in value}) <= 1 and all(isinstance(v, SCALARS) for v in value)
    return False


# -- events as log records ----------------------------------------------------------------------


def test_each_event_is_one_log_record_named_signalkit_kind(
    otel_client: sk.Client, app_otel: AppOtel
) -> None:
    started = time.time_ns()
    events = _record_every_kind(otel_client)
    records = app_otel.records()
    assert [r.event_name for r in records] == [f"signalkit.{e.kind}" for e in events]
    for event, record in zip(events, records, strict=True):
        assert record.timestamp == _ns(event.ts)  # when it happened (some are backfilled)
        assert record.observed_timestamp is not None
        assert started <= record.observed_timestamp <= time.time_ns()  # when it was exported
        assert isinstance(record.body, str)
        assert record.body.startswith(event.kind)
        assert record.attributes is not None
        assert all(_is_valid_attribute(v) for v in record.attributes.values()), record.attributes


def test_common_fields_are_flattened_under_signalkit(
    otel_client: sk.Client, app_otel: AppOtel
) -> None:
    events = _record_every_kind(otel_client)
    action = events[1]
    assert action.score is not None
    attrs = dict(app_otel.records("signalkit.action")[0].attributes or {})
    assert attrs["signalkit.event_id"] == action.id
    assert attrs["signalkit.exposure_id"] == events[0].id
    assert attrs["signalkit.kind"] == "action"
    assert attrs["signalkit.service"] == "checkout"
    assert attrs["signalkit.producer_id"] == action.producer_id
    assert attrs["signalkit.seq"] == action.seq
    assert attrs["signalkit.schema_version"] == 1
    assert attrs["signalkit.strength"] == action.score.strength
    assert attrs["signalkit.polarity"] == action.score.polarity
    assert attrs["signalkit.policy"] == action.score.policy
    reasons = orjson.loads(attrs["signalkit.reasons"])
    assert reasons == [r.model_dump() for r in action.score.reasons]
    assert attrs["signalkit.model.name"] == "drafter"
    assert attrs["signalkit.model.version"] == "v1"
    assert attrs["signalkit.subject.user_id"] == "user-1"
    assert attrs["signalkit.subject.session_id"] == "sess-1"
    assert attrs["signalkit.attributes.surface_version"] == 2
    assert attrs["signalkit.action"] == "accepted"
    assert attrs["signalkit.time_to_action_ms"] == 1500.0


def test_none_values_are_omitted(otel_client: sk.Client, app_otel: AppOtel) -> None:
    _record_every_kind(otel_client)
    attrs = app_otel.records("signalkit.action")[0].attributes or {}
    for absent in (
        "signalkit.item_id",
        "signalkit.model.variant",
        "signalkit.subject.anonymous_id",
        "signalkit.subject.tenant_id",
    ):
        assert absent not in attrs
    assert None not in attrs.values()


def test_kind_specific_fields_are_attributes(otel_client: sk.Client, app_otel: AppOtel) -> None:
    events = _record_every_kind(otel_client)
    exposure, _, correction, toggle, outcome, feedback = events
    by_kind = {
        (r.attributes or {})["signalkit.kind"]: dict(r.attributes or {}) for r in app_otel.records()
    }

    exp_attrs = by_kind["exposure"]
    assert exp_attrs["signalkit.surface"] == "reply-draft"
    assert list(exp_attrs["signalkit.item_ids"]) == ["doc-a", "doc-b"]
    assert orjson.loads(exp_attrs["signalkit.items"])[1] == {
        "id": "doc-b",
        "position": 1,
        "propensity": 0.25,
        "score": None,
    }
    assert isinstance(exp_attrs["signalkit.latency_ms"], float)
    assert exp_attrs["signalkit.attributes.plan"] == "pro"
    assert exp_attrs["signalkit.attributes.n_docs"] == 3
    assert exp_attrs["signalkit.exposure_id"] == exposure.id == exp_attrs["signalkit.event_id"]

    assert isinstance(correction, sk.CorrectionEvent)
    corr_attrs = by_kind["correction"]
    assert corr_attrs["signalkit.original"] == "Helo there"
    assert corr_attrs["signalkit.corrected"] == "Hello there"
    assert corr_attrs["signalkit.edit_distance"] == correction.edit_distance
    assert corr_attrs["signalkit.similarity"] == correction.similarity

    toggle_attrs = by_kind["toggle"]
    assert toggle_attrs["signalkit.state"] == "collapsed"
    assert toggle_attrs["signalkit.element"] == "why"
    assert toggle_attrs["signalkit.dwell_ms"] == 800.0
    assert toggle_attrs["signalkit.time_to_action_ms"] == 5000.0

    outcome_attrs = by_kind["outcome"]
    assert outcome_attrs["signalkit.outcome.name"] == "ticket_resolved"
    assert outcome_attrs["signalkit.outcome.value"] == 1.0
    assert outcome_attrs["signalkit.outcome.success"] is True
    assert outcome_attrs["signalkit.delay_ms"] == 60_000.0
    assert isinstance(outcome, sk.OutcomeEvent)

    fb_attrs = by_kind["feedback"]
    assert fb_attrs["signalkit.rating"] == 2.0
    assert list(fb_attrs["signalkit.scale"]) == [1.0, 5.0]
    assert fb_attrs["signalkit.comment"] == "too long"
    assert "signalkit.choice" not in fb_attrs
    assert isinstance(feedback, sk.FeedbackEvent)
    assert isinstance(toggle, sk.ToggleEvent)


# -- trace linking -----------------------------------------------------------------------------


def test_records_are_linked_to_the_trace_of_their_exposure(
    otel_client: sk.Client, app_otel: AppOtel
) -> None:
    tracer = TracerProvider().get_tracer("app")
    with (
        tracer.start_as_current_span("draft_reply") as span,
        otel_client.exposure("reply-draft", model="drafter") as exp,
    ):
        pass
    # The signal comes later, outside the span (another request): it keeps the exposure's trace.
    otel_client.action(exp.token, "accepted")
    assert otel_client.flush(5)

    span_context = span.get_span_context()
    records = app_otel.records()
    assert [r.event_name for r in records] == ["signalkit.exposure", "signalkit.action"]
    for record in records:
        assert record.trace_id == span_context.trace_id
        assert record.span_id == span_context.span_id
        assert record.trace_flags == trace.TraceFlags.SAMPLED


def test_an_event_without_a_trace_is_not_linked_to_whatever_span_is_current(
    exporter: OtelExporter, app_otel: AppOtel
) -> None:
    memory = sk.MemoryExporter()
    client = sk.Client("checkout", exporters=[memory], secret=SECRET)
    with client.exposure("search") as exp:
        pass
    client.shutdown(timeout=5)
    assert exp.event is not None
    assert exp.event.trace_id is None

    with TracerProvider().get_tracer("app").start_as_current_span("unrelated"):
        assert exporter.export([exp.event]) is sk.ExportResult.SUCCESS
    (record,) = app_otel.records()
    assert record.trace_id == 0
    assert record.span_id == 0


# -- metrics -----------------------------------------------------------------------------------


def test_signals_are_counted_by_kind_and_model_version(
    otel_client: sk.Client, app_otel: AppOtel
) -> None:
    _record_every_kind(otel_client)
    otel_client.action(otel_client.exposure("search", model="ranker", model_version="v7").token)
    assert otel_client.flush(5)

    metric = app_otel.metric("signalkit.signals")
    assert metric.unit == "{signal}"
    counts: dict[tuple[str, str | None], int] = {}
    for point in metric.data.data_points:
        key = (point.attributes["signalkit.kind"], point.attributes.get("signalkit.model.version"))
        counts[key] = counts.get(key, 0) + point.value
    assert counts == {
        ("exposure", "v1"): 1,
        ("action", "v1"): 1,
        ("correction", "v1"): 1,
        ("toggle", "v1"): 1,
        ("outcome", "v1"): 1,
        ("feedback", "v1"): 1,
        ("action", "v7"): 1,
    }
    action_v1 = next(
        p
        for p in metric.data.data_points
        if p.attributes["signalkit.kind"] == "action"
        and p.attributes["signalkit.model.version"] == "v1"
    )
    assert dict(action_v1.attributes) == {
        "signalkit.kind": "action",
        "signalkit.model.name": "drafter",
        "signalkit.model.version": "v1",
        "signalkit.direction": "positive",
    }


def test_strength_and_time_to_action_are_histograms(
    otel_client: sk.Client, app_otel: AppOtel
) -> None:
    events = _record_every_kind(otel_client)
    signals = [e for e in events if e.kind != "exposure"]

    strength = app_otel.metric("signalkit.strength")
    assert strength.unit == "1"
    points: list[HistogramDataPoint] = list(strength.data.data_points)
    assert sum(p.count for p in points) == len(signals)  # exposures are context, not signals
    assert sum(p.sum for p in points) == pytest.approx(
        sum(e.score.strength for e in signals if e.score is not None)
    )
    assert tuple(points[0].explicit_bounds) == STRENGTH_BUCKETS

    tta = app_otel.metric("signalkit.time_to_action")
    assert tta.unit == "ms"
    by_kind = {p.attributes["signalkit.kind"]: p for p in tta.data.data_points}
    assert set(by_kind) == {"action", "correction", "toggle", "feedback"}  # outcome has a delay
    assert by_kind["action"].sum == 1500.0
    assert by_kind["correction"].sum == 4000.0
    assert tuple(by_kind["action"].explicit_bounds) == TIME_TO_ACTION_BUCKETS_MS


# -- GenAI semantic conventions -----------------------------------------------------------------


def test_genai_evaluation_results_follow_the_semantic_conventions(app_otel: AppOtel) -> None:
    exporter = OtelExporter(
        app_otel.logger_provider, app_otel.meter_provider, genai_evaluations=True
    )
    client = sk.Client("checkout", exporters=[exporter], secret=SECRET)
    tracer = TracerProvider().get_tracer("app")
    with tracer.start_as_current_span("chat gpt-x") as span, client.exposure("reply") as exp:
        pass
    action = client.action(exp, "accepted", attributes={"gen_ai.response.id": "chatcmpl-123"})
    feedback = client.feedback(exp, rating=-1, comment="wrong tone")
    client.shutdown(timeout=5)
    assert action is not None
    assert action.score is not None
    assert feedback is not None
    assert feedback.score is not None

    results = app_otel.records("gen_ai.evaluation.result")
    assert len(results) == 2  # the exposure is context, not an evaluated signal
    by_name = {(r.attributes or {})["gen_ai.evaluation.name"]: r for r in results}
    assert set(by_name) == {"signalkit.action", "signalkit.feedback"}

    accepted = dict(by_name["signalkit.action"].attributes or {})
    assert accepted["gen_ai.evaluation.score.value"] == pytest.approx(
        action.score.strength * action.score.polarity
    )
    assert accepted["gen_ai.evaluation.score.label"] == "positive"
    assert accepted["gen_ai.evaluation.explanation"] == "; ".join(
        r.note for r in action.score.reasons if r.note
    )
    assert accepted["gen_ai.response.id"] == "chatcmpl-123"
    assert accepted["signalkit.event_id"] == action.id

    rejected = dict(by_name["signalkit.feedback"].attributes or {})
    assert rejected["gen_ai.evaluation.score.value"] < 0
    assert rejected["gen_ai.evaluation.score.label"] == "negative"
    assert rejected["gen_ai.response.id"] == exp.id  # no response id given: the exposure's id

    for record in results:  # parented to the operation span, like the signal itself
        assert record.trace_id == span.get_span_context().trace_id
        assert record.span_id == span.get_span_context().span_id


def test_genai_evaluation_results_are_off_by_default(
    otel_client: sk.Client, app_otel: AppOtel
) -> None:
    _record_every_kind(otel_client)
    assert app_otel.records("gen_ai.evaluation.result") == []


# -- the exporter protocol ---------------------------------------------------------------------


def test_export_returns_success_and_shutdown_leaves_the_application_providers_running(
    exporter: OtelExporter, app_otel: AppOtel
) -> None:
    memory = sk.MemoryExporter()
    client = sk.Client("checkout", exporters=[memory], secret=SECRET)
    with client.exposure("search") as exp:
        pass
    client.shutdown(timeout=5)
    assert exp.event is not None

    assert isinstance(exporter, sk.Exporter)
    assert exporter.export([exp.event]) is sk.ExportResult.SUCCESS
    exporter.shutdown()
    after = exporter.export([exp.event])
    assert isinstance(after, sk.ExportFailure)
    assert not after.retryable

    app_otel.logger_provider.get_logger("app").emit(body="still running", event_name="app.ping")
    assert [r.event_name for r in app_otel.records()] == ["signalkit.exposure", "app.ping"]


class _BrokenLogger(Logger):
    """A logger whose pipeline fails on every record."""

    def emit(self, record: Any = None, **kwargs: Any) -> None:
        raise RuntimeError("the pipeline is broken")

    def enabled(self, **kwargs: Any) -> bool:
        return True


class _BrokenLoggerProvider(ApiLoggerProvider):
    def get_logger(self, name: str, *args: Any, **kwargs: Any) -> Logger:
        return _BrokenLogger(name)


def test_export_never_raises(app_otel: AppOtel) -> None:
    exporter = OtelExporter(_BrokenLoggerProvider(), app_otel.meter_provider)
    client = sk.Client("checkout", exporters=[sk.MemoryExporter()], secret=SECRET)
    with client.exposure("search") as exp:
        pass
    client.shutdown(timeout=5)
    assert exp.event is not None
    result = exporter.export([exp.event])
    assert isinstance(result, sk.ExportFailure)
    assert "the pipeline is broken" in result.message


def test_force_flush_pushes_what_the_sdk_buffers(app_otel: AppOtel) -> None:
    logs = InMemoryLogRecordExporter()
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(BatchLogRecordProcessor(logs, schedule_delay_millis=60_000))
    exporter = OtelExporter(provider, app_otel.meter_provider)
    client = sk.Client("checkout", exporters=[exporter], secret=SECRET)
    with client.exposure("search"):
        pass
    deadline = time.monotonic() + 5
    while client.stats.exported == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # handed to the SDK: the export() call returned
    assert logs.get_finished_logs() == ()  # still in the SDK's batch processor
    assert exporter.force_flush(5)
    assert len(logs.get_finished_logs()) == 1
    client.shutdown(timeout=5)
    provider.shutdown()


def test_client_flush_reaches_through_the_sdks_own_buffer(app_otel: AppOtel) -> None:
    logs = InMemoryLogRecordExporter()
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(BatchLogRecordProcessor(logs, schedule_delay_millis=60_000))
    exporter = OtelExporter(provider, app_otel.meter_provider)
    client = sk.Client("checkout", exporters=[exporter], secret=SECRET)
    with client.exposure("search"):
        pass
    assert client.flush(5)  # calls the exporter's force_flush with the time left
    assert len(logs.get_finished_logs()) == 1
    client.shutdown(timeout=5)
    provider.shutdown()


# -- OTLP/HTTP, configured from OTEL_* ----------------------------------------------------------


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    # The OTLP pipeline is built only when the process has no real global providers.
    assert type(get_logger_provider()).__module__.startswith("opentelemetry._logs")
    assert type(get_meter_provider()).__module__.startswith("opentelemetry.metrics")
    for name in (
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_COMPRESSION",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_LOGS_EXPORTER",
        "OTEL_METRICS_EXPORTER",
        "OTEL_SDK_DISABLED",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with OtlpReceiver() as server:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", server.endpoint)
        yield server


def test_otlp_pipeline_is_built_from_the_otel_environment(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout-api")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=key-1")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    exporter = OtelExporter()
    client = sk.Client("checkout", exporters=[exporter], secret=SECRET)
    tracer = TracerProvider().get_tracer("app")
    with (
        tracer.start_as_current_span("draft") as span,
        client.exposure("reply-draft", model="drafter", model_version="v1") as exp,
    ):
        pass
    action = client.action(exp, "accepted", attributes={"ab": "b"})
    assert action is not None
    assert client.shutdown(timeout=10)  # shuts the exporter down: its providers flush

    logs = receiver.logs()
    assert [log.record.event_name for log in logs] == ["signalkit.exposure", "signalkit.action"]
    exposure_log, action_log = logs
    assert action_log.attributes["signalkit.event_id"] == action.id
    assert action_log.attributes["signalkit.exposure_id"] == exp.id
    assert action_log.attributes["signalkit.action"] == "accepted"
    assert action_log.attributes["signalkit.attributes.ab"] == "b"
    assert action_log.attributes["signalkit.model.version"] == "v1"
    assert action_log.record.time_unix_nano == _ns(action.ts)
    span_context = span.get_span_context()
    for log in logs:
        assert log.record.trace_id == span_context.trace_id.to_bytes(16, "big")
        assert log.record.span_id == span_context.span_id.to_bytes(8, "big")
        assert log.record.flags & 0xFF == trace.TraceFlags.SAMPLED
        assert log.resource["service.name"] == "checkout-api"
        assert log.resource["deployment.environment.name"] == "test"
        assert log.scope == "signalkit"
    assert exposure_log.record.body.string_value.startswith("exposure on 'reply-draft'")

    (log_request,) = receiver.requests("/v1/logs")
    assert log_request.headers["x-api-key"] == "key-1"
    assert log_request.headers["content-encoding"] == "gzip"
    assert log_request.headers["content-type"] == "application/x-protobuf"

    metrics = receiver.metrics()
    assert {"signalkit.signals", "signalkit.strength", "signalkit.time_to_action"} <= set(metrics)
    signals = metrics["signalkit.signals"]
    total = sum(point.as_int for point in signals.sum.data_points)
    assert total == 2


def test_otlp_service_name_defaults_to_the_signalkit_service(receiver: OtlpReceiver) -> None:
    threads = threading.active_count()
    exporter = OtelExporter()
    assert threading.active_count() == threads  # the SDK's threads start with the first event
    client = sk.Client("support-assistant", exporters=[exporter], secret=SECRET)
    with client.exposure("reply-draft"):
        pass
    assert client.shutdown(timeout=10)
    (log,) = receiver.logs()
    assert log.resource["service.name"] == "support-assistant"


def test_otlp_signal_specific_endpoint_and_disabled_metrics(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", receiver.endpoint + "/otlp/v1/logs")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    client = sk.Client("checkout", exporters=[OtelExporter()], secret=SECRET)
    with client.exposure("reply-draft"):
        pass
    assert client.shutdown(timeout=10)
    assert [r.path for r in receiver.received] == ["/otlp/v1/logs"]


def test_otlp_retries_are_the_otel_exporters_own(receiver: OtlpReceiver) -> None:
    # 503 is retryable in the OTLP spec; Retry-After: 0 lets the test retry at once.
    receiver.fail_next("/v1/logs", 503, retry_after="0")
    client = sk.Client("checkout", exporters=[OtelExporter()], secret=SECRET)
    with client.exposure("reply-draft"):
        pass
    assert client.shutdown(timeout=10)
    assert [r.status for r in receiver.requests("/v1/logs")] == [503, 200]
    assert len(receiver.logs()) == 1


def test_a_non_http_otlp_protocol_is_a_config_error(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with pytest.raises(sk.ConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        OtelExporter()


# -- imports and process-wide providers (subprocesses) -------------------------------------------


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_import_signalkit_does_not_import_opentelemetry() -> None:
    out = _run(
        """
        import sys
        import signalkit
        import signalkit.exporters.otel
        from signalkit.exporters.otel import OtelExporter
        print(sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry"))
        """
    )
    assert out.strip() == "[]"


def test_a_missing_otlp_package_is_a_config_error_with_the_install_hint() -> None:
    out = _run(
        """
        import sys
        sys.modules["opentelemetry.exporter.otlp.proto.http"] = None  # as if not installed
        import signalkit as sk
        from signalkit.exporters.otel import OtelExporter
        try:
            OtelExporter()
        except sk.ConfigError as exc:
            print(exc)
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk.metrics import MeterProvider
        OtelExporter(LoggerProvider(), MeterProvider())  # given providers need no OTLP
        """
    )
    assert "pip install 'signalkit[otlp]'" in out
    assert "opentelemetry-exporter-otlp-proto-http" in out


def test_the_applications_global_providers_are_used_and_never_shut_down() -> None:
    out = _run(
        """
        import sys
        sys.modules["opentelemetry.exporter.otlp.proto.http"] = None  # OTLP is not needed
        from opentelemetry import _logs, metrics
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import (
            InMemoryLogRecordExporter, SimpleLogRecordProcessor,
        )
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        logs = InMemoryLogRecordExporter()
        provider = LoggerProvider()
        provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
        _logs.set_logger_provider(provider)
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

        import signalkit as sk
        from signalkit.exporters.otel import OtelExporter

        client = sk.Client("checkout", exporters=[OtelExporter()], secret="s" * 32)
        with client.exposure("search"):
            pass
        assert client.shutdown(timeout=5)
        provider.get_logger("app").emit(event_name="app.after")
        print([r.log_record.event_name for r in logs.get_finished_logs()])
        names = [
            m.name
            for rm in reader.get_metrics_data().resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        ]
        print("signalkit.signals" in names)
        """
    )
    assert out.split("\n")[:2] == ["['signalkit.exposure', 'app.after']", "True"]
