"""SegmentExporter: signalkit's HTTP exporter speaking Segment's batch API (``POST /v1/batch``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from signalkit import ConfigError, ExportFailure, ExportResult, RetryPolicy
from signalkit.events import Event
from signalkit.exporters.http import ENVELOPE_BYTES, HttpExporter
from signalkit.exporters.vendor import (
    check_batch_fits,
    check_event_prefix,
    check_vendor_event_bytes,
    encode_batch,
    endpoint_url,
    fitted_json,
)

from ._event import DEFAULT_EVENT_PREFIX, segment_event
from ._version import __version__

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_HOST", "MAX_BATCH_BYTES", "MAX_EVENT_BYTES", "SegmentExporter"]

DEFAULT_HOST = "https://api.segment.io"
"""Segment's HTTP Tracking API; EU workspaces use ``https://events.eu1.segmentapis.com``."""

MAX_BATCH_BYTES = 500_000
"""Largest request body: Segment's "500 KB per batch request" (counted as 1000-byte KB)."""

MAX_EVENT_BYTES = 32_000
"""Largest Segment call in a batch: "32 KB per event" (counted as 1000-byte KB, under 32 KiB)."""

_DEFAULT_POLICY = RetryPolicy()


class SegmentExporter(HttpExporter):
    """Sends signalkit events to Segment's batch API, one ``POST {host}/v1/batch`` per batch.

    Each event becomes a Segment ``track`` call named ``"<event_prefix> <kind>"`` whose
    ``messageId`` is the signalkit event id, so Segment drops the duplicates that
    at-least-once delivery can send. The write key goes as HTTP Basic auth (the key as user
    name, no password), never in the body, and is kept out of every message. The body is
    ``{"batch": [...]}`` with no ``sentAt``: Segment then keeps each call's ``timestamp`` as it
    is, instead of shifting it by how long a retried batch waited (``timestamp = receivedAt -
    (sentAt - originalTimestamp)``). Connection reuse, gzip, retries, pausing on 401/403 and
    byte-identical retries are :class:`signalkit.HttpExporter`'s.

    Limits: a request body is at most ``max_batch_bytes`` (500 KB) and one call at most
    ``max_vendor_event_bytes`` (32 KB). Segment answers 400, not 413, to a call or batch over
    them, and that would drop the batch, so the exporter never sends one: a call over the
    limit has its longest texts cut to fit and named in ``signalkit_truncated``; only a call
    that cannot fit even so is dropped, counted ``too_large``. ``max_event_bytes``, which
    :class:`signalkit.HttpExporter` checks on signalkit's own JSON before encoding, is therefore
    as large as a request allows.
    """

    content_type = "application/json"

    def __init__(
        self,
        write_key: str,
        *,
        host: str = DEFAULT_HOST,
        event_prefix: str = DEFAULT_EVENT_PREFIX,
        max_batch_events: int = 1000,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        max_vendor_event_bytes: int = MAX_EVENT_BYTES,
        timeout_s: float = 10.0,
        gzip_threshold_bytes: int | None = 1024,
        retry_policy: RetryPolicy = _DEFAULT_POLICY,
        name: str = "segment",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if (
            not isinstance(write_key, str)
            or not write_key.strip()
            or any(c.isspace() or not c.isprintable() for c in write_key)
        ):
            raise ConfigError(
                "SegmentExporter.write_key: must be your source's write key, a str without spaces"
            )
        self.event_prefix = check_event_prefix("SegmentExporter", event_prefix)
        if isinstance(max_batch_bytes, int) and not isinstance(max_batch_bytes, bool):
            max_event_bytes = max(max_batch_bytes - ENVELOPE_BYTES - 1, 1)
        else:
            max_event_bytes = 1  # HttpExporter names the bad max_batch_bytes
        # Credentials in the URL become "Authorization: Basic base64(key + ':')", and the
        # exporter keeps the key and its Basic form out of repr, messages and logs.
        super().__init__(
            endpoint_url(
                "SegmentExporter.host",
                host,
                "/v1/batch",
                example=DEFAULT_HOST,
                credentials=(write_key, ""),
            ),
            timeout_s=timeout_s,
            gzip_threshold_bytes=gzip_threshold_bytes,
            max_batch_events=max_batch_events,
            max_batch_bytes=max_batch_bytes,
            max_event_bytes=max_event_bytes,
            retry_policy=retry_policy,
            name=name,
            transport=transport,
        )
        room = self.max_batch_bytes - len(_HEAD) - len(_TAIL)
        self.max_vendor_event_bytes = check_vendor_event_bytes(
            "SegmentExporter", max_vendor_event_bytes, room=room
        )
        """Largest Segment call, in bytes of its JSON; longer texts are cut to fit."""
        self._library = {"name": "signalkit-segment", "version": __version__}

    def __repr__(self) -> str:
        return f"SegmentExporter({self.endpoint!r}, name={self.name!r})"

    def export(self, batch: Sequence[Event]) -> ExportResult | ExportFailure:
        """POST ``batch`` in one request; a call that cannot be cut to the per-event limit
        makes it ``too_large``, so the lane splits the batch and drops only that event."""
        failure = check_batch_fits(
            batch, self._event_json, limit=self.max_vendor_event_bytes, vendor="Segment"
        )
        if failure is not None:
            return failure
        return super().export(batch)

    def encode(self, batch: Sequence[Event], sent_at: str) -> bytes:
        """``{"batch":[...]}``, the same bytes on every retry. ``sent_at`` is left out on
        purpose (see the class docstring)."""
        return encode_batch(batch, self._event_json, _HEAD, _TAIL)

    def _event_json(self, event: Event) -> bytes | None:
        """The event's Segment JSON, cut to the per-event limit; None if it cannot fit."""
        message = segment_event(event, event_prefix=self.event_prefix)
        message["context"]["library"] = self._library
        properties: dict[str, Any] = message["properties"]
        return fitted_json(message, properties, self.max_vendor_event_bytes)


_HEAD = b'{"batch":['
_TAIL = b"]}"
