"""LangfuseExporter: signalkit's HTTP exporter speaking Langfuse's batch ingestion API."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import orjson

from signalkit import ConfigError, ExportFailure, ExportResult, RetryPolicy
from signalkit.events import Event, ExposureEvent
from signalkit.exporters.http import ENVELOPE_BYTES, HttpExporter
from signalkit.exporters.vendor import check_vendor_event_bytes, endpoint_url, fitted_json, utc

from ._score import (
    DEFAULT_SCORE_PREFIX,
    Target,
    check_environment,
    check_score_prefix,
    exposure_target,
    langfuse_scores,
    score_target,
)
from ._tap import ResponseTap

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_HOST",
    "INGESTION_PATH",
    "MAX_BATCH_BYTES",
    "MAX_EVENT_BYTES",
    "LangfuseExporter",
    "ingestion_event",
]

DEFAULT_HOST = "https://cloud.langfuse.com"
"""Langfuse Cloud EU; US is ``https://us.cloud.langfuse.com``, or your self-hosted address."""

INGESTION_PATH = "/api/public/ingestion"
"""Langfuse's batch ingestion endpoint (answers 207 with per-event results)."""

MAX_BATCH_BYTES = 2_500_000
"""Largest request body: the Langfuse Python SDK's ingestion batch limit (the server takes
4.5 MB)."""

MAX_EVENT_BYTES = 1_000_000
"""Largest ingestion event (its JSON): the Langfuse Python SDK's per-event limit."""

REMEMBERED = 65_536
"""How many score ids (accepted or refused) and exposure traces an exporter keeps in memory."""

_DEFAULT_POLICY = RetryPolicy()
_MESSAGE_CHARS = 300
_HEAD = b'{"batch":['
_TAIL = b"]}"


def ingestion_event(score: dict[str, Any], timestamp: str) -> dict[str, Any]:
    """The ingestion API's envelope for one score: ``{"id", "timestamp", "type":
    "score-create", "body"}``; the envelope id is the score id, so it is as stable."""
    return {"id": score["id"], "timestamp": timestamp, "type": "score-create", "body": score}


class LangfuseExporter(HttpExporter):
    """Sends signals to Langfuse as scores, one ``POST {host}/api/public/ingestion`` per batch.

    Each signal becomes one or more ``score-create`` events (see
    :func:`signalkit_langfuse.langfuse_scores`) on the trace and observation of its exposure
    (see :func:`signalkit_langfuse.score_target`); exposures themselves send nothing, but teach
    the exporter the trace their attributes name. The public and secret keys go as HTTP Basic
    auth and are kept out of every message.

    Langfuse answers 207 with ``successes`` and ``errors`` per event. Accepted scores are
    remembered and never sent again; scores refused with a 4xx are dropped, each event
    counted ``rejected`` with Langfuse's message (the batch is split until the refused events
    stand alone, without sending anything again); scores that met a 5xx or 429 are retried,
    alone. Score ids are the signalkit event ids, so a score Langfuse took although the answer
    was lost is overwritten, not counted twice, when it is sent again. Whole-request answers
    (401/403 pause, 413 split, 5xx retry, other 4xx drop), connection reuse and limits are
    :class:`signalkit.HttpExporter`'s.

    Limits: a request body is at most ``max_batch_bytes`` (2.5 MB) and one ingestion event at
    most ``max_vendor_event_bytes`` (1 MB); an event over it has its longest metadata texts cut
    (named in ``signalkit_truncated``), and only one that cannot fit even so is dropped, counted
    ``too_large``. Bodies are not gzipped unless ``gzip_threshold_bytes`` is set (the Langfuse
    SDKs send plain JSON).
    """

    content_type = "application/json"

    def __init__(
        self,
        public_key: str,
        secret_key: str,
        *,
        host: str = DEFAULT_HOST,
        environment: str | None = None,
        score_prefix: str = DEFAULT_SCORE_PREFIX,
        use_otel_ids: bool = True,
        max_batch_events: int = 500,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        max_vendor_event_bytes: int = MAX_EVENT_BYTES,
        timeout_s: float = 10.0,
        gzip_threshold_bytes: int | None = None,
        retry_policy: RetryPolicy = _DEFAULT_POLICY,
        name: str = "langfuse",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        for field, key, start in (
            ("public_key", public_key, "pk-lf-..."),
            ("secret_key", secret_key, "sk-lf-..."),
        ):
            if (
                not isinstance(key, str)
                or not key.strip()
                or any(c.isspace() or not c.isprintable() for c in key)
            ):
                raise ConfigError(
                    f"LangfuseExporter.{field}: must be your project's {field.replace('_', ' ')} "
                    f"({start}), a str without spaces"
                )
        if not isinstance(use_otel_ids, bool):
            raise ConfigError("LangfuseExporter.use_otel_ids: must be True or False")
        self.environment = check_environment("LangfuseExporter", environment)
        """Sent as every score's ``environment`` (None: Langfuse's ``default``)."""
        self.score_prefix = check_score_prefix("LangfuseExporter", score_prefix)
        self.use_otel_ids = use_otel_ids
        """Whether the OpenTelemetry trace/span ids signalkit recorded name the trace."""
        if isinstance(max_batch_bytes, int) and not isinstance(max_batch_bytes, bool):
            max_event_bytes = max(max_batch_bytes - ENVELOPE_BYTES - 1, 1)
        else:
            max_event_bytes = 1  # HttpExporter names the bad max_batch_bytes
        if transport is not None and not callable(getattr(transport, "handle_request", None)):
            raise ConfigError(
                "LangfuseExporter.transport: must be an httpx.BaseTransport (with handle_request)"
            )
        self._tap = ResponseTap(transport)
        super().__init__(
            endpoint_url(
                "LangfuseExporter.host",
                host,
                INGESTION_PATH,
                example=DEFAULT_HOST,
                credentials=(public_key, secret_key),
            ),
            headers={"x-langfuse-sdk-name": "signalkit-langfuse"},
            timeout_s=timeout_s,
            gzip_threshold_bytes=gzip_threshold_bytes,
            max_batch_events=max_batch_events,
            max_batch_bytes=max_batch_bytes,
            max_event_bytes=max_event_bytes,
            retry_policy=retry_policy,
            name=name,
            transport=cast("httpx.BaseTransport", self._tap),
        )
        room = self.max_batch_bytes - len(_HEAD) - len(_TAIL)
        self.max_vendor_event_bytes = check_vendor_event_bytes(
            "LangfuseExporter", max_vendor_event_bytes, room=room
        )
        """Largest ingestion event, in bytes of its JSON; longer metadata texts are cut."""
        self._state = threading.Lock()
        self._accepted: OrderedDict[str, None] = OrderedDict()
        self._refused: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._targets: OrderedDict[str, Target] = OrderedDict()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"LangfuseExporter({self.endpoint!r}, name={self.name!r})"

    # -- the exporter protocol -------------------------------------------------------------------

    def export(self, batch: Sequence[Event]) -> ExportResult | ExportFailure:
        """Send the scores of ``batch`` Langfuse has not yet accepted or refused, and say what
        became of the batch (see the class docstring); never raises."""
        try:
            return self._export_scores(batch)
        except Exception as exc:  # a bug of ours must reach the lane as a result, not a crash
            return ExportFailure(retryable=True, message=f"internal error: {exc!r}"[:300])

    def encode(self, batch: Sequence[Event], sent_at: str) -> bytes:
        """``{"batch":[...]}`` with the events' scores Langfuse has not answered yet.
        ``sent_at`` is not sent: each score carries its event's own time."""
        items: dict[str, list[tuple[str, bytes]]] = self._local.items
        with self._state:
            parts = [
                data
                for event in batch
                for score_id, data in items[event.id]
                if score_id not in self._accepted and score_id not in self._refused
            ]
        return _HEAD + b",".join(parts) + _TAIL

    def shutdown(self) -> None:
        """Close the connections and forget what Langfuse answered."""
        super().shutdown()
        with self._state:
            self._accepted.clear()
            self._refused.clear()
            self._targets.clear()

    # -- one export ------------------------------------------------------------------------------

    def _export_scores(self, batch: Sequence[Event]) -> ExportResult | ExportFailure:
        self._learn(batch)
        items: dict[str, list[tuple[str, bytes]]] = {}
        for event in batch:
            encoded = self._encode_event(event)
            if encoded is None:
                return ExportFailure(
                    retryable=False,
                    too_large=True,
                    message=(
                        f"batch not sent: event {event.id} is over max_vendor_event_bytes="
                        f"{self.max_vendor_event_bytes} even with its texts cut"
                    ),
                )
            items[event.id] = encoded
        with self._state:
            sent = [i for e in batch for i, _ in items[e.id] if self._unanswered(i)]
        if sent:
            waiting = set(sent)
            unanswered = [e for e in batch if any(i in waiting for i, _ in items[e.id])]
            self._local.items = items
            self._tap.take()  # nothing left over from an earlier request of this thread
            try:
                outcome = super().export(unanswered)
            finally:
                self._local.items = None
            answer = self._tap.take()
            if outcome is not ExportResult.SUCCESS:
                return outcome
            retry = self._account(sent, answer)
            if retry:
                status, message = retry[0]
                return ExportFailure(
                    retryable=True,
                    message=(
                        f"Langfuse did not take {len(retry)} of {len(sent)} scores "
                        f"(HTTP {status}: {message}); sending those again"
                    )[:_MESSAGE_CHARS],
                    status=status,
                )
        return self._verdict(batch, items)

    def _unanswered(self, score_id: str) -> bool:
        return score_id not in self._accepted and score_id not in self._refused

    def _verdict(
        self, batch: Sequence[Event], items: dict[str, list[tuple[str, bytes]]]
    ) -> ExportResult | ExportFailure:
        """Every score of ``batch`` is answered: SUCCESS if all were accepted, else the failure
        that drops exactly the events with a refused score."""
        with self._state:
            refused = [
                (event, answer)
                for event in batch
                for score_id, _ in items[event.id]
                if (answer := self._refused.get(score_id)) is not None
            ]
            if not refused:
                for event in batch:
                    for score_id, _ in items[event.id]:
                        self._accepted.pop(score_id, None)
                return ExportResult.SUCCESS
            if len(batch) == 1:
                for score_id, _ in items[batch[0].id]:
                    self._accepted.pop(score_id, None)
                    self._refused.pop(score_id, None)
        status, message = refused[0][1]
        if len(batch) == 1:
            return ExportFailure(
                retryable=False,
                message=f"Langfuse refused a score of event {batch[0].id}: {message}"[
                    :_MESSAGE_CHARS
                ],
                status=status,
            )
        events = len({event.id for event, _ in refused})
        return ExportFailure(
            retryable=False,
            too_large=True,
            message=(
                f"Langfuse refused scores of {events} of {len(batch)} events (HTTP {status}: "
                f"{message}); splitting the batch to drop only those, nothing is sent again"
            )[:_MESSAGE_CHARS],
            status=status,
        )

    def _account(self, sent: list[str], answer: bytes | None) -> list[tuple[int, str]]:
        """Record Langfuse's 207 answer for the ``sent`` score ids; the (status, message) of
        those to send again. An answer that cannot be read counts as all accepted (it was a
        2xx), so a broken proxy cannot make the exporter resend forever."""
        errors: dict[str, tuple[int, str]] = {}
        if answer:
            try:
                parsed = orjson.loads(answer)
            except orjson.JSONDecodeError:
                parsed = None
            found = parsed.get("errors") if isinstance(parsed, dict) else None
            if isinstance(found, list):
                for error in found:
                    if isinstance(error, dict) and isinstance(error.get("id"), str):
                        errors[error["id"]] = _error_of(error)
        retry: list[tuple[int, str]] = []
        with self._state:
            for score_id in sent:
                error = errors.get(score_id)
                if error is None:
                    _remember(self._accepted, score_id, None)
                elif error[0] == 429 or error[0] >= 500 or error[0] < 400:
                    retry.append(error)
                else:
                    _remember(self._refused, score_id, error)
        return retry

    def _learn(self, batch: Sequence[Event]) -> None:
        """Remember the trace each exposure's attributes name, for its signals."""
        for event in batch:
            if isinstance(event, ExposureEvent):
                target = exposure_target(event)
                if target is not None:
                    with self._state:
                        _remember(self._targets, event.exposure_id, target)

    def _encode_event(self, event: Event) -> list[tuple[str, bytes]] | None:
        """(score id, ingestion event JSON) for each score of ``event``; None if one cannot be
        cut to the per-event limit."""
        with self._state:
            target = score_target(event, self._targets, use_otel_ids=self.use_otel_ids)
        scores = langfuse_scores(
            event, target=target, score_prefix=self.score_prefix, environment=self.environment
        )
        timestamp = utc(event.ts).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        out: list[tuple[str, bytes]] = []
        for score in scores:
            data = fitted_json(
                ingestion_event(score, timestamp), score["metadata"], self.max_vendor_event_bytes
            )
            if data is None:
                return None
            out.append((score["id"], data))
        return out


def _error_of(error: dict[str, Any]) -> tuple[int, str]:
    status = error.get("status")
    if isinstance(status, bool) or not isinstance(status, int):
        status = 500
    said = [str(error[key]) for key in ("message", "error") if error.get(key)]
    text = " ".join(": ".join(said).split()) or "no message"
    return status, text[:_MESSAGE_CHARS]


def _remember(memory: OrderedDict[str, Any], key: str, value: Any) -> None:
    memory[key] = value
    memory.move_to_end(key)
    if len(memory) > REMEMBERED:
        memory.popitem(last=False)
