"""AmplitudeExporter: signalkit's HttpExporter speaking Amplitude's HTTP V2 (or Batch) API."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import orjson

from signalkit import ConfigError, Event, ExportFailure, ExportResult, HttpExporter, RetryPolicy
from signalkit.exporters.http import ENVELOPE_BYTES
from signalkit.exporters.vendor import endpoint_url

from ._mapping import DEFAULT_EVENT_PREFIX, to_amplitude_event

if TYPE_CHECKING:
    import httpx

__all__ = ["LIMITS", "THROTTLE_WAIT_S", "AmplitudeExporter"]

LIMITS: dict[str, tuple[str, int, int]] = {
    "http_v2": ("/2/httpapi", 2000, 1_000_000),
    "batch": ("/batch", 2000, 20_000_000),
}
"""Per API: (path, events per request, bytes per request). HTTP V2: "under 1 MB with fewer
than 2000 events per request", else 413. Batch Event Upload: payloads up to 20 MB."""

THROTTLE_WAIT_S = 30.0
"""Amplitude throttles a user or device past its events per second (30 on HTTP V2) with a 429
and asks the sender to hold that user's events for 30 seconds; its 429 has no Retry-After, so
the exporter says 30 s itself (a Retry-After, if one comes, is obeyed instead)."""

_DEFAULT_POLICY = RetryPolicy()
_REDACTED = "[redacted]"
_MIN_PARTIAL = 4  # a cut message can end in the first characters of the key: hide those too


class AmplitudeExporter(HttpExporter):
    """Sends batches to Amplitude: ``POST {host}/2/httpapi`` (or ``/batch``) with
    ``{"api_key", "events": [...], "options": {"min_id_length": 1}}``.

    Everything else is :class:`signalkit.HttpExporter`'s — one request per export, limits (at
    most 2,000 events and 1 MB per request), 413 splits, 5xx retries, byte-identical resends,
    so Amplitude's 7-day dedupe on ``insert_id`` (the signalkit event id) holds — plus what
    Amplitude's answers need:

    - **400 with invalid events** (``events_with_invalid_fields``, ``silenced_events``...):
      Amplitude ingests none of the request. The batch is split in halves, like a 413, until
      the refused events stand alone; each is then dropped, counted ``rejected``, and the rest
      is delivered. A single event refused is dropped at once.
    - **400 "Invalid API key"**: the exporter pauses and keeps the data, as for a 401, and the
      key is taken out of the message (Amplitude echoes it).
    - **429** (a user or device over its rate, or the project's): retried, not sooner than
      :data:`THROTTLE_WAIT_S` unless the answer carries a Retry-After.

    ``api="batch"`` uses the Batch Event Upload API (higher per-user rates, 20 MB requests,
    slower to show up): the choice for backfills with ``at=``. ``min_id_length=1`` lets
    user ids shorter than Amplitude's default 5 characters through; ``None`` sends no options.
    ``host`` is ``https://api2.amplitude.com`` or ``https://api.eu.amplitude.com`` (EU
    residency), or your proxy (``headers`` go with every request, kept out of messages).
    Bodies are not gzipped unless ``gzip_threshold_bytes`` is set: Amplitude's SDKs send plain
    JSON, and its reference does not promise gzip on HTTP V2.
    """

    content_type = "application/json"

    def __init__(
        self,
        api_key: str,
        *,
        host: str = "https://api2.amplitude.com",
        api: Literal["http_v2", "batch"] = "http_v2",
        min_id_length: int | None = 1,
        event_prefix: str = DEFAULT_EVENT_PREFIX,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        gzip_threshold_bytes: int | None = None,
        max_batch_events: int | None = None,
        max_batch_bytes: int | None = None,
        max_event_bytes: int | None = None,
        retry_policy: RetryPolicy = _DEFAULT_POLICY,
        name: str = "amplitude",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigError("AmplitudeExporter.api_key: must be a non-empty str")
        if any(c.isspace() or not c.isprintable() for c in api_key):
            raise ConfigError("AmplitudeExporter.api_key: must not contain spaces or control chars")
        if api not in LIMITS:
            raise ConfigError(f"AmplitudeExporter.api: 'http_v2' or 'batch', got {api!r}")
        if min_id_length is not None and (
            isinstance(min_id_length, bool)
            or not isinstance(min_id_length, int)
            or min_id_length < 1
        ):
            raise ConfigError(
                f"AmplitudeExporter.min_id_length: an int >= 1 or None, got {min_id_length!r}"
            )
        if not isinstance(event_prefix, str) or len(event_prefix) > 200:
            raise ConfigError("AmplitudeExporter.event_prefix: must be a str of at most 200 chars")
        path, vendor_events, vendor_bytes = LIMITS[api]
        if max_batch_events is None:
            max_batch_events = vendor_events
        if max_batch_bytes is None:
            max_batch_bytes = vendor_bytes
        if max_event_bytes is None:
            max_event_bytes = max(max_batch_bytes - ENVELOPE_BYTES - 1, 1)
        super().__init__(
            endpoint_url(
                "AmplitudeExporter.host", host, path, example="https://api2.amplitude.com"
            ),
            headers=headers,
            timeout_s=timeout_s,
            gzip_threshold_bytes=gzip_threshold_bytes,
            max_batch_events=max_batch_events,
            max_batch_bytes=max_batch_bytes,
            max_event_bytes=max_event_bytes,
            retry_policy=retry_policy,
            name=name,
            transport=transport,
        )
        self._api_key = api_key
        self.api = api
        self.min_id_length = min_id_length
        self.event_prefix = event_prefix
        self._head = b'{"api_key":' + orjson.dumps(api_key) + b',"events":['
        options = None if min_id_length is None else {"min_id_length": min_id_length}
        self._tail = b"]" + (b',"options":' + orjson.dumps(options) if options else b"") + b"}"

    def __repr__(self) -> str:
        return f"AmplitudeExporter({self.endpoint!r}, api={self.api!r}, name={self.name!r})"

    def encode(self, batch: Sequence[Event], sent_at: str) -> bytes:
        """``{"api_key": ..., "events": [...], "options": {...}}``, one entry per event.

        ``sent_at`` is not sent: Amplitude has no batch time, and each event carries its own.
        """
        prefix = self.event_prefix
        parts = [orjson.dumps(to_amplitude_event(e, event_prefix=prefix)) for e in batch]
        return self._head + b",".join(parts) + self._tail

    def export(self, batch: Sequence[Event]) -> ExportResult | ExportFailure:
        """One request for ``batch``; Amplitude's 400s and 429s read as the lane needs them."""
        outcome = super().export(batch)
        if not isinstance(outcome, ExportFailure):
            return outcome
        message = self._hide_key(outcome.message)
        status = outcome.status
        if status is not None and 400 <= status < 500 and "invalid api key" in message.lower():
            return dataclasses.replace(outcome, message=message, retryable=False, unauthorized=True)
        if status == 400 and len(batch) > 1:
            return dataclasses.replace(
                outcome,
                message=f"{message} (splitting the batch to set the refused events apart)",
                too_large=True,
            )
        if status == 429 and outcome.retry_after_s is None:
            return dataclasses.replace(outcome, message=message, retry_after_s=THROTTLE_WAIT_S)
        return dataclasses.replace(outcome, message=message)

    def _hide_key(self, message: str) -> str:
        """``message`` without the API key, whole or cut off at the end of the message."""
        key = self._api_key
        message = message.replace(key, _REDACTED)
        tail = message.rstrip("…")
        for size in range(min(len(key) - 1, len(tail)), _MIN_PARTIAL - 1, -1):
            if tail.endswith(key[:size]):
                return tail[:-size] + _REDACTED + message[len(tail) :]
        return message
