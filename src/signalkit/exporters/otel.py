"""Exports events to OpenTelemetry: one log-based event per signal, and signal metrics.

Each event becomes a log record emitted with ``event_name="signalkit.<kind>"``, its fields
flattened into ``signalkit.*`` attributes and linked to the trace of its exposure; a counter
and two histograms summarise them. The OpenTelemetry SDK does the batching and the network
I/O, so ``export`` only hands records over. ``import signalkit`` never imports OpenTelemetry:
this module imports it when an :class:`OtelExporter` is built.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from .._errors import ConfigError
from .._stats import logger
from ..events import Event
from .base import ExportFailure, ExportResult

if TYPE_CHECKING:
    from opentelemetry._logs import Logger, LoggerProvider
    from opentelemetry.context import Context
    from opentelemetry.metrics import Counter, Histogram, Meter, MeterProvider
    from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.util.types import AnyValue

__all__ = [
    "GENAI_EVALUATION_EVENT",
    "STRENGTH_BUCKETS",
    "TIME_TO_ACTION_BUCKETS_MS",
    "OtelExporter",
    "event_attributes",
    "genai_evaluation_attributes",
]

GENAI_EVALUATION_EVENT = "gen_ai.evaluation.result"
"""Event name of the GenAI semantic conventions' evaluation result."""

STRENGTH_BUCKETS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""Bucket boundaries advised for ``signalkit.strength`` (strength is in [0, 1])."""

TIME_TO_ACTION_BUCKETS_MS: tuple[float, ...] = (
    250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000, 86_400_000
)  # fmt: skip
"""Bucket boundaries advised for ``signalkit.time_to_action``, in ms: from a reflexive
click to a next-day action (the SDK's defaults stop at 10 s)."""

_INSTALL_HINT = "pip install 'signalkit[otlp]'"
_SHUTDOWN_TIMEOUT_S = 5.0
"""Upper bound of :meth:`OtelExporter.shutdown`: an unreachable collector must not hold up
the host's exit for the OTLP exporter's own timeouts and retries."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# Fields that are not copied as ``signalkit.<field>``: they go elsewhere on the record or are
# flattened by hand below.
_SPECIAL_FIELDS = frozenset(
    {"id", "ts", "trace_id", "span_id", "subject", "model", "attributes", "score", "items"}
)
# OutcomeEvent's bare ``name``/``value``/``success`` would be ambiguous next to model.name.
_RENAMED = {
    "name": "signalkit.outcome.name",
    "value": "signalkit.outcome.value",
    "success": "signalkit.outcome.success",
}


def event_attributes(event: Event) -> dict[str, AnyValue]:
    """The event's fields flattened into OpenTelemetry attributes under ``signalkit.*``.

    ``None`` is omitted; every value is a string, bool, int, float or a homogeneous list of
    them. The event time and its trace ids are not attributes: they go on the log record.
    """
    attrs: dict[str, AnyValue] = {"signalkit.event_id": event.id}
    for field, value in event:
        if value is None or field in _SPECIAL_FIELDS:
            continue
        key = _RENAMED.get(field, "signalkit." + field)
        attrs[key] = _attribute_value(value)
    for field, value in event.subject:
        if value is not None:
            attrs["signalkit.subject." + field] = value
    for field, value in event.model:
        if value is not None:
            attrs["signalkit.model." + field] = value
    score = event.score
    if score is not None:
        attrs["signalkit.strength"] = score.strength
        attrs["signalkit.polarity"] = score.polarity
        if score.policy:
            attrs["signalkit.policy"] = score.policy
        if score.reasons:
            attrs["signalkit.reasons"] = _json([r.model_dump() for r in score.reasons])
    if event.kind == "exposure" and event.items:
        attrs["signalkit.item_ids"] = [item.id for item in event.items]
        attrs["signalkit.items"] = _json([item.model_dump() for item in event.items])
    for key, value in event.attributes.items():
        attrs["signalkit.attributes." + key] = value
    return attrs


def genai_evaluation_attributes(event: Event) -> dict[str, AnyValue] | None:
    """Attributes of the ``gen_ai.evaluation.result`` event for a scored signal.

    ``None`` for an exposure (context, not an evaluation) or an unscored event. The score
    value is strength × polarity, in [-1, 1]; the label is ``positive``, ``negative`` or
    ``neutral`` by the sign of polarity. ``gen_ai.response.id`` is the event's own
    ``gen_ai.response.id`` attribute when it has one, else its exposure id.
    """
    score = event.score
    if event.kind == "exposure" or score is None:
        return None
    attrs: dict[str, AnyValue] = {
        "gen_ai.evaluation.name": "signalkit." + event.kind,
        "gen_ai.evaluation.score.value": score.strength * score.polarity + 0.0,  # no -0.0
        "gen_ai.evaluation.score.label": _direction(score.polarity),
    }
    explanation = "; ".join(reason.note for reason in score.reasons if reason.note)
    if explanation:
        attrs["gen_ai.evaluation.explanation"] = explanation
    response_id = event.attributes.get("gen_ai.response.id")
    attrs["gen_ai.response.id"] = str(response_id) if response_id is not None else event.exposure_id
    attrs["signalkit.event_id"] = event.id
    attrs["signalkit.exposure_id"] = event.exposure_id
    return attrs


def _summary(event: Event) -> str:
    """A short line a person reads in a log viewer, e.g. ``action 'accepted' (strength 0.55,
    polarity +1.00)``; the attributes carry the data."""
    if event.kind == "exposure":
        model = "@".join(v for v in (event.model.name, event.model.version) if v)
        return f"exposure on {event.surface!r}" + (f" by {model}" if model else "")
    if event.kind == "action":
        detail = repr(event.action)
    elif event.kind == "correction":
        detail = f"edit distance {event.edit_distance}, similarity {event.similarity:.2f}"
    elif event.kind == "toggle":
        detail = event.state + (f" {event.element!r}" if event.element else "")
    elif event.kind == "outcome":
        detail = repr(event.name) + (f" = {event.value:g}" if event.value is not None else "")
    elif event.rating is not None:
        detail = f"rating {event.rating:g}"
    else:
        detail = f"choice {event.choice!r}" if event.choice is not None else "comment"
    text = f"{event.kind} {detail}"
    if event.score is not None:
        text += f" (strength {event.score.strength:.2f}, polarity {event.score.polarity:+.2f})"
    return text


def _attribute_value(value: Any) -> AnyValue:
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, tuple) and all(isinstance(v, int | float) for v in value):
        return [float(v) for v in value]  # FeedbackEvent.scale
    return _json(value)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _time_ns(ts: datetime) -> int:
    return (ts - _EPOCH) // _MICROSECOND * 1000


class OtelExporter:
    """Emits each event as an OpenTelemetry log-based event, and records signal metrics.

    Providers, in order: the ``logger_provider``/``meter_provider`` given; else the
    application's global ones when it has set real ones; else an OTLP/HTTP pipeline built on
    the first export from the standard ``OTEL_*`` variables (it needs
    ``pip install 'signalkit[otlp]'``). With ``genai_evaluations=True`` each scored signal
    is also emitted as a ``gen_ai.evaluation.result`` event (GenAI semantic conventions).

    ``export`` hands records to the SDK and returns at once; the SDK's batch processor does
    the network I/O and, with OTLP, its own retries. :meth:`shutdown` flushes and shuts down
    only the providers this exporter built, never the application's.
    """

    def __init__(
        self,
        logger_provider: LoggerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        *,
        name: str = "otel",
        genai_evaluations: bool = False,
    ) -> None:
        try:
            import opentelemetry.sdk  # noqa: F401 - the SDK backs every pipeline we build
            from opentelemetry import _logs, metrics
        except ImportError as exc:  # pragma: no cover - opentelemetry-sdk is a dependency
            raise ConfigError(
                f"OtelExporter: OpenTelemetry is not installed ({exc}): {_INSTALL_HINT}"
            ) from exc
        self.name = name
        self.genai_evaluations = genai_evaluations
        self._given_logger_provider = logger_provider
        self._given_meter_provider = meter_provider
        self._lock = threading.Lock()
        self._sink: _Sink | None = None
        self._owned: list[SdkLoggerProvider | SdkMeterProvider] = []
        self._closed = False
        self._start_failed = False
        needs_otlp = (
            logger_provider is None
            and not _is_real(_logs.get_logger_provider())
            and not _disabled("OTEL_LOGS_EXPORTER")
        ) or (
            meter_provider is None
            and not _is_real(metrics.get_meter_provider())
            and not _disabled("OTEL_METRICS_EXPORTER")
        )
        if needs_otlp:
            _check_otlp()

    def __repr__(self) -> str:
        return f"OtelExporter(name={self.name!r})"

    def export(self, batch: Sequence[Event]) -> ExportResult | ExportFailure:
        """Emit one log record per event (two with ``genai_evaluations``) and record metrics."""
        if self._closed:
            return ExportFailure(retryable=False, message="OtelExporter is shut down")
        if not batch:
            return ExportResult.SUCCESS
        try:
            sink = self._sink or self._start(batch[0].service)
        except Exception as exc:  # a broken OTel setup must not reach the host
            if not self._start_failed:
                self._start_failed = True
                logger.warning("signalkit: OtelExporter cannot start OpenTelemetry: %r", exc)
            return ExportFailure(retryable=False, message=f"cannot start OpenTelemetry: {exc!r}")
        failed = 0
        error: Exception | None = None
        for event in batch:
            try:
                sink.record(event)
            except Exception as exc:
                failed += 1
                error = exc
        if failed:
            logger.warning("signalkit: OtelExporter could not emit %d event(s): %r", failed, error)
            if failed == len(batch):  # nothing went out: say so rather than count it delivered
                return ExportFailure(retryable=False, message=f"emit failed: {error!r}")
        return ExportResult.SUCCESS

    def force_flush(self, timeout_s: float = 30.0) -> bool:
        """Push what the SDK still buffers (the application's providers too); False if that
        did not finish within ``timeout_s``."""
        providers = self._sink.providers if self._sink is not None else []
        return _within(timeout_s, lambda deadline: _flush(providers, deadline))

    def shutdown(self) -> None:
        """Flush and shut down the providers this exporter built (within a few seconds);
        the application's providers are left running."""
        with self._lock:
            self._closed = True
            owned, self._owned = self._owned, []
        if owned and not _within(_SHUTDOWN_TIMEOUT_S, lambda deadline: _shutdown(owned, deadline)):
            logger.warning(
                "signalkit: OtelExporter shutdown did not finish within %.0f s", _SHUTDOWN_TIMEOUT_S
            )

    def _start(self, service: str) -> _Sink:
        with self._lock:
            if self._sink is not None:
                return self._sink
            from opentelemetry import _logs, metrics

            built: list[SdkLoggerProvider | SdkMeterProvider] = []
            try:
                logger_provider = self._given_logger_provider
                if logger_provider is None:
                    logger_provider = _logs.get_logger_provider()
                    if not _is_real(logger_provider):
                        logger_provider = None
                        if not _disabled("OTEL_LOGS_EXPORTER"):
                            logger_provider = _otlp_logger_provider(service)
                            built.append(logger_provider)
                meter_provider = self._given_meter_provider
                if meter_provider is None:
                    meter_provider = metrics.get_meter_provider()
                    if not _is_real(meter_provider):
                        meter_provider = None
                        if not _disabled("OTEL_METRICS_EXPORTER"):
                            meter_provider = _otlp_meter_provider(service)
                            built.append(meter_provider)
                sink = _Sink(logger_provider, meter_provider, self.genai_evaluations)
            except BaseException:
                _shutdown(built, time.monotonic() + 1.0)  # their threads must not linger
                raise
            self._owned.extend(built)
            self._sink = sink
            return sink


class _Sink:
    """The logger and instruments one exporter writes to."""

    def __init__(
        self,
        logger_provider: LoggerProvider | None,
        meter_provider: MeterProvider | None,
        genai_evaluations: bool,
    ) -> None:
        from opentelemetry import trace
        from opentelemetry._logs import SeverityNumber

        from .. import __version__

        self.providers: list[LoggerProvider | MeterProvider] = [
            p for p in (logger_provider, meter_provider) if p is not None
        ]
        self._genai = genai_evaluations
        self._info = SeverityNumber.INFO
        # A context holding an invalid span: an event without a trace gets no trace ids, even
        # if export() is ever called under someone else's active span.
        self._no_trace = trace.set_span_in_context(trace.INVALID_SPAN)
        self._logger: Logger | None = None
        if logger_provider is not None:
            self._logger = logger_provider.get_logger("signalkit", __version__)
        self._metrics: _Metrics | None = None
        if meter_provider is not None:
            self._metrics = _Metrics(meter_provider.get_meter("signalkit", __version__))

    def record(self, event: Event) -> None:
        if self._logger is not None:
            context = self._context(event)
            timestamp = _time_ns(event.ts)
            observed = time.time_ns()
            self._logger.emit(
                timestamp=timestamp,
                observed_timestamp=observed,
                context=context,
                severity_number=self._info,
                severity_text="INFO",
                body=_summary(event),
                attributes=event_attributes(event),
                event_name="signalkit." + event.kind,
            )
            if self._genai:
                genai = genai_evaluation_attributes(event)
                if genai is not None:
                    self._logger.emit(
                        timestamp=timestamp,
                        observed_timestamp=observed,
                        context=context,
                        severity_number=self._info,
                        severity_text="INFO",
                        attributes=genai,
                        event_name=GENAI_EVALUATION_EVENT,
                    )
        if self._metrics is not None:
            self._metrics.record(event)

    def _context(self, event: Event) -> Context:
        """A context whose current span is the exposure's, so the SDK copies its trace id,
        span id and flags onto the record."""
        if not event.trace_id:
            return self._no_trace
        from opentelemetry import trace

        try:
            trace_id = int(event.trace_id, 16)
            span_id = int(event.span_id, 16) if event.span_id else 0
        except ValueError:
            return self._no_trace
        # Events do not record whether the exposure's trace was sampled; a signal belongs with
        # its trace, so it is marked sampled rather than dropped by trace-based log filters.
        span_context = trace.SpanContext(
            trace_id,
            span_id,
            is_remote=True,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
        )
        return trace.set_span_in_context(trace.NonRecordingSpan(span_context))


class _Metrics:
    """The instruments of DESIGN §7: signals by kind, strength and time to action."""

    def __init__(self, meter: Meter) -> None:
        self.signals: Counter = meter.create_counter(
            "signalkit.signals", unit="{signal}", description="Events recorded, by kind."
        )
        self.strength: Histogram = meter.create_histogram(
            "signalkit.strength",
            unit="1",
            description="Strength of each signal's score: trust in it as a label, in [0, 1].",
            explicit_bucket_boundaries_advisory=STRENGTH_BUCKETS,
        )
        self.time_to_action: Histogram = meter.create_histogram(
            "signalkit.time_to_action",
            unit="ms",
            description="Time from an exposure being shown to the user's signal.",
            explicit_bucket_boundaries_advisory=TIME_TO_ACTION_BUCKETS_MS,
        )

    def record(self, event: Event) -> None:
        attrs = _metric_attributes(event)
        self.signals.add(1, attrs)
        if event.kind == "exposure":
            return  # context, not a signal: no strength, no time to action
        if event.score is not None:
            self.strength.record(event.score.strength, attrs)
        if event.kind != "outcome" and event.time_to_action_ms is not None:
            self.time_to_action.record(event.time_to_action_ms, attrs)


def _metric_attributes(event: Event) -> dict[str, str]:
    """Low-cardinality attributes of the metrics: kind, model name and version, direction."""
    attrs: dict[str, str] = {"signalkit.kind": event.kind}
    if event.model.name is not None:
        attrs["signalkit.model.name"] = event.model.name
    if event.model.version is not None:
        attrs["signalkit.model.version"] = event.model.version
    if event.score is not None:
        attrs["signalkit.direction"] = _direction(event.score.polarity)
    return attrs


def _direction(polarity: float) -> str:
    if polarity > 0:
        return "positive"
    return "negative" if polarity < 0 else "neutral"


# -- providers -------------------------------------------------------------------------------


def _is_real(provider: object) -> bool:
    """Whether a global provider was set by the application: the API package itself defines
    only the no-op and proxy defaults, so any provider from elsewhere (the SDK, a vendor's
    distribution) is real."""
    module = type(provider).__module__
    return not module.startswith(("opentelemetry._logs", "opentelemetry.metrics"))


def _disabled(variable: str) -> bool:
    """``OTEL_LOGS_EXPORTER=none`` / ``OTEL_METRICS_EXPORTER=none``: that signal is off."""
    return os.environ.get(variable, "").strip().lower() == "none"


def _check_otlp() -> None:
    """Fail when the client is built, not on the first export, if OTLP cannot work."""
    for variable in ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"):
        protocol = os.environ.get(variable) or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        if protocol and protocol.strip().lower() != "http/protobuf":
            raise ConfigError(
                f"OtelExporter: {variable} / OTEL_EXPORTER_OTLP_PROTOCOL is {protocol!r}; the "
                "pipeline OtelExporter builds speaks OTLP over HTTP (http/protobuf): unset it, "
                "or pass a logger_provider= and meter_provider= with the exporters you want"
            )
    try:
        import opentelemetry.exporter.otlp.proto.http._log_exporter
        import opentelemetry.exporter.otlp.proto.http.metric_exporter  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "OtelExporter: no logger_provider/meter_provider was given and the application "
            "has set none, so it would export over OTLP/HTTP, which needs the "
            f"opentelemetry-exporter-otlp-proto-http package ({exc}): {_INSTALL_HINT}"
        ) from exc


def _resource(service: str) -> Resource:
    """The SDK's resource (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``...), named
    after the signalkit service when the environment names no service."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service}))
    return resource


def _otlp_logger_provider(service: str) -> SdkLoggerProvider:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    # shutdown_on_exit=False: signalkit's own exit handler delivers its queue and then calls
    # shutdown(); the SDK's atexit hook would run first and drop what is still queued.
    provider = SdkLoggerProvider(resource=_resource(service), shutdown_on_exit=False)
    provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    return provider


def _otlp_meter_provider(service: str) -> SdkMeterProvider:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    return SdkMeterProvider(
        resource=_resource(service), metric_readers=[reader], shutdown_on_exit=False
    )


def _within(timeout_s: float, work: Callable[[float], bool]) -> bool:
    """Run ``work(deadline)`` on a helper thread and wait at most ``timeout_s`` for it: the
    SDK's batch processor does not honour its own flush timeout."""
    deadline = time.monotonic() + max(timeout_s, 0.0)
    done: list[bool] = []

    def run() -> None:
        try:
            done.append(work(deadline))
        except Exception as exc:
            logger.warning("signalkit: OtelExporter: %r", exc)
            done.append(False)

    thread = threading.Thread(target=run, name="signalkit-otel-flush", daemon=True)
    thread.start()
    thread.join(max(timeout_s, 0.0))
    return bool(done) and done[0]


def _remaining_ms(deadline: float) -> int:
    return max(int((deadline - time.monotonic()) * 1000), 0)


def _flush(providers: Sequence[LoggerProvider | MeterProvider], deadline: float) -> bool:
    ok = True
    for provider in providers:
        flush = getattr(provider, "force_flush", None)  # the API's providers have none
        if flush is None:
            continue
        try:
            ok = bool(flush(timeout_millis=_remaining_ms(deadline))) and ok
        except Exception as exc:  # the SDK's MeterProvider raises when a reader fails
            logger.warning("signalkit: OtelExporter: flushing %s failed: %r", provider, exc)
            ok = False
    return ok


def _shutdown(providers: Sequence[SdkLoggerProvider | SdkMeterProvider], deadline: float) -> bool:
    """Shut down providers this exporter built; each exports what it still holds first."""
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider

    ok = True
    for provider in providers:  # logs first: they carry the events
        try:
            if isinstance(provider, SdkMeterProvider):
                provider.shutdown(timeout_millis=_remaining_ms(deadline))
            else:
                provider.shutdown()
        except Exception as exc:
            logger.warning("signalkit: OtelExporter: shutting down %s failed: %r", provider, exc)
            ok = False
    return ok
