"""PostHogExporter: signalkit's HTTP exporter speaking PostHog's batch API (``POST /batch/``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from signalkit import ConfigError, ExportFailure, ExportResult, RetryPolicy
from signalkit.events import Event
from signalkit.exporters.http import ENVELOPE_BYTES, HttpExporter
from signalkit.exporters.vendor import (
    check_batch_fits,
    check_event_prefix,
    check_vendor_event_bytes,
    encode_batch,
    fitted_json,
)

from ._event import DEFAULT_EVENT_PREFIX, posthog_event
from ._version import __version__

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_HOST", "MAX_BATCH_BYTES", "MAX_EVENT_BYTES", "PostHogExporter"]

DEFAULT_HOST = "https://us.i.posthog.com"
"""PostHog US Cloud ingestion; EU Cloud is ``https://eu.i.posthog.com``."""

MAX_BATCH_BYTES = 5 * 1024 * 1024
"""Largest request body: 5 MiB, the PostHog Python SDK's batch limit (the server takes 20 MiB)."""

MAX_EVENT_BYTES = 900 * 1024
"""Largest PostHog event (its JSON): 900 KiB, as in the PostHog Python SDK."""

_DEFAULT_POLICY = RetryPolicy()
# The app's own addresses are not ingestion endpoints; the PostHog SDK maps them the same way.
_APP_HOSTS = {
    "https://app.posthog.com": DEFAULT_HOST,
    "https://us.posthog.com": DEFAULT_HOST,
    "https://eu.posthog.com": "https://eu.i.posthog.com",
}


class PostHogExporter(HttpExporter):
    """Sends signalkit events to PostHog's batch API, one ``POST {host}/batch/`` per batch.

    Each event becomes a PostHog event named ``"<event_prefix> <kind>"`` whose ``uuid`` is the
    signalkit event id, and a repeat is identical in every field PostHog's events table
    deduplicates on, so PostHog can collapse what at-least-once delivery sends twice (on its
    ClickHouse merges: best effort, see the README).
    The body is ``{"api_key", "historical_migration", "batch": [...]}`` with no ``sent_at``:
    PostHog then takes each event's ``timestamp`` as it is instead of "correcting" it by how
    long a retried batch waited. Connection reuse, gzip, retries, 413 splitting, pausing on
    401/403 and byte-identical retries are :class:`signalkit.HttpExporter`'s.

    Limits: a request body is at most ``max_batch_bytes`` (5 MiB) and one PostHog event at most
    ``max_vendor_event_bytes`` (900 KiB). An event over it is not dropped: its longest texts are
    cut to fit and named in ``signalkit_truncated``. Only an event that cannot fit even so is
    dropped, counted ``too_large``. ``max_event_bytes``, which :class:`signalkit.HttpExporter`
    checks on signalkit's own JSON before encoding, is therefore as large as a request allows.
    """

    content_type = "application/json"

    def __init__(
        self,
        api_key: str,
        *,
        host: str = DEFAULT_HOST,
        event_prefix: str = DEFAULT_EVENT_PREFIX,
        historical_migration: bool = False,
        max_batch_events: int = 1000,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        max_vendor_event_bytes: int = MAX_EVENT_BYTES,
        timeout_s: float = 10.0,
        gzip_threshold_bytes: int | None = 1024,
        retry_policy: RetryPolicy = _DEFAULT_POLICY,
        name: str = "posthog",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if (
            not isinstance(api_key, str)
            or not api_key.strip()
            or any(c.isspace() or not c.isprintable() for c in api_key)
        ):
            raise ConfigError(
                "PostHogExporter.api_key: must be your project API key (phc_...), "
                "a str without spaces"
            )
        if not isinstance(historical_migration, bool):
            raise ConfigError("PostHogExporter.historical_migration: must be True or False")
        self.event_prefix = check_event_prefix("PostHogExporter", event_prefix)
        self.host = _ingestion_host(host)
        """The ingestion host requests go to (``app``/``us``/``eu.posthog.com`` are mapped to
        their ingestion hosts, as the PostHog SDK does)."""
        self.historical_migration = historical_migration
        """Sent with every batch: PostHog ingests such events apart, for backfills."""
        if isinstance(max_batch_bytes, int) and not isinstance(max_batch_bytes, bool):
            max_event_bytes = max(max_batch_bytes - ENVELOPE_BYTES - 1, 1)
        else:
            max_event_bytes = 1  # HttpExporter names the bad max_batch_bytes
        super().__init__(
            self.host + "/batch/",
            timeout_s=timeout_s,
            gzip_threshold_bytes=gzip_threshold_bytes,
            max_batch_events=max_batch_events,
            max_batch_bytes=max_batch_bytes,
            max_event_bytes=max_event_bytes,
            retry_policy=retry_policy,
            name=name,
            transport=transport,
        )
        self._head = b"".join(
            (
                b'{"api_key":',
                orjson.dumps(api_key),
                b',"historical_migration":',
                b"true" if historical_migration else b"false",
                b',"batch":[',
            )
        )
        self._tail = b"]}"
        room = self.max_batch_bytes - len(self._head) - len(self._tail)
        self.max_vendor_event_bytes = check_vendor_event_bytes(
            "PostHogExporter", max_vendor_event_bytes, room=room
        )
        """Largest PostHog event, in bytes of its JSON; longer texts are cut to fit."""
        self._library = {
            "$lib": "signalkit-posthog",
            "$lib_version": __version__,
            # PostHog would locate the event by the IP it came from: this server's, not the
            # user's. The PostHog SDK disables it by default for the same reason.
            "$geoip_disable": True,
            "$is_server": True,
        }

    def __repr__(self) -> str:
        return f"PostHogExporter({self.endpoint!r}, name={self.name!r})"

    def export(self, batch: Sequence[Event]) -> ExportResult | ExportFailure:
        """POST ``batch`` in one request; an event that cannot be cut to the per-event limit
        makes it ``too_large``, so the lane splits the batch and drops only that event."""
        failure = check_batch_fits(
            batch, self._event_json, limit=self.max_vendor_event_bytes, vendor="PostHog"
        )
        if failure is not None:
            return failure
        return super().export(batch)

    def encode(self, batch: Sequence[Event], sent_at: str) -> bytes:
        """``{"api_key":...,"historical_migration":...,"batch":[...]}``, the same bytes on
        every retry. ``sent_at`` is left out on purpose (see the class docstring)."""
        return encode_batch(batch, self._event_json, self._head, self._tail)

    def _event_json(self, event: Event) -> bytes | None:
        """The event's PostHog JSON, cut to the per-event limit; None if it cannot fit."""
        message = posthog_event(event, event_prefix=self.event_prefix)
        properties: dict[str, Any] = message["properties"]
        properties.update(self._library)
        return fitted_json(message, properties, self.max_vendor_event_bytes)


def _ingestion_host(host: object) -> str:
    if not isinstance(host, str) or not host.lower().startswith(("https://", "http://")):
        raise ConfigError(
            f"PostHogExporter.host: must be a URL such as {DEFAULT_HOST} (US Cloud), "
            "https://eu.i.posthog.com (EU Cloud) or your self-hosted address"
        )
    host = host.rstrip("/")
    return _APP_HOSTS.get(host.lower(), host)
