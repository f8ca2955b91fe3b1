"""MixpanelExporter: signalkit's HttpExporter speaking Mixpanel's Import API (``POST /import``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import orjson

from signalkit import ConfigError, Event, HttpExporter, RetryPolicy
from signalkit.exporters.http import ENVELOPE_BYTES
from signalkit.exporters.vendor import endpoint_url

from ._mapping import DEFAULT_EVENT_PREFIX, to_mixpanel_event

if TYPE_CHECKING:
    import httpx

__all__ = ["MAX_BATCH_BYTES", "MAX_BATCH_EVENTS", "RETRY_POLICY", "MixpanelExporter"]

MAX_BATCH_EVENTS = 2000
"""Events per ``/import`` request (Mixpanel: "up to 2000 events ... per request")."""

MAX_BATCH_BYTES = 2_000_000
"""Bytes of uncompressed JSON per request. Mixpanel's reference says 2 MB (its 413 answer names
2,097,152 bytes); newer pages say 10 MB. The smaller figure costs nothing: a 413 splits anyway."""

RETRY_POLICY = RetryPolicy(base_s=2.0, cap_s=60.0)
"""Mixpanel's advice for 429 and 5xx: exponential backoff from 2 s, doubling up to 60 s, with
jitter (signalkit's is full jitter, never sooner than ``Retry-After``)."""


class MixpanelExporter(HttpExporter):
    """Sends batches to Mixpanel's Import API, ``POST {host}/import?strict=1``, as a JSON array.

    Authentication, in Mixpanel's order of preference: a service account
    (``service_account=(username, secret)`` with ``project_id``), the legacy project
    ``api_secret``, or else the project token itself as the Basic-auth user. Every credential
    is sent as ``Authorization: Basic`` and kept out of ``repr``, messages and logs.

    Everything else is :class:`signalkit.HttpExporter`'s: one request per export, gzip, limits
    (at most 2,000 events and 2 MB per request), 413 splits, 401/403 pauses keeping the data,
    429/5xx retries, and a retried batch sent byte-identical, so Mixpanel's dedupe on event
    name + ``distinct_id`` + ``time`` + ``$insert_id`` (the signalkit event id) holds.

    ``host`` is ``https://api.mixpanel.com``, ``https://api-eu.mixpanel.com`` (EU residency) or
    ``https://api-in.mixpanel.com`` (India), or your proxy (``headers`` go with every request,
    kept out of messages like the credentials). A correction's texts (and any string)
    are cut to Mixpanel's 255 bytes, named in the event's ``truncated`` property, so
    ``max_event_bytes`` (signalkit's own JSON of one event) defaults to what fits a request.
    """

    content_type = "application/json"

    def __init__(
        self,
        project_token: str,
        *,
        service_account: tuple[str, str] | None = None,
        project_id: str | None = None,
        api_secret: str | None = None,
        host: str = "https://api.mixpanel.com",
        event_prefix: str = DEFAULT_EVENT_PREFIX,
        strict: bool = True,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        gzip_threshold_bytes: int | None = 1024,
        max_batch_events: int = MAX_BATCH_EVENTS,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        max_event_bytes: int | None = None,
        retry_policy: RetryPolicy = RETRY_POLICY,
        name: str = "mixpanel",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        token = _credential("project_token", project_token)
        if not isinstance(event_prefix, str) or len(event_prefix) > 200:
            raise ConfigError("MixpanelExporter.event_prefix: must be a str of at most 200 chars")
        query: dict[str, str] = {"strict": "1" if strict else "0"}
        if service_account is not None:
            if api_secret is not None:
                raise ConfigError(
                    "MixpanelExporter.api_secret: give a service account or an api_secret, not both"
                )
            if not isinstance(service_account, tuple) or len(service_account) != 2:
                raise ConfigError(
                    "MixpanelExporter.service_account: must be a (username, secret) pair"
                )
            user = _credential("service_account username", service_account[0])
            password = _credential("service_account secret", service_account[1])
            if project_id is None:
                raise ConfigError(
                    "MixpanelExporter.project_id: required with a service account "
                    "(Project Settings > Overview in Mixpanel)"
                )
            query["project_id"] = _credential("project_id", project_id)
        elif api_secret is not None:
            user, password = _credential("api_secret", api_secret), ""
        else:
            user, password = token, ""
        endpoint = endpoint_url(
            "MixpanelExporter.host",
            host,
            "/import",
            example="https://api.mixpanel.com",
            credentials=(user, password),
            query=query,
        )
        if max_event_bytes is None:
            max_event_bytes = max(max_batch_bytes - ENVELOPE_BYTES - 1, 1)
        super().__init__(
            endpoint,
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
        self.project_token = token
        """The project token, sent in each event's ``token`` property (it is not a secret:
        Mixpanel's browser SDK ships it in the page)."""
        self.event_prefix = event_prefix

    def __repr__(self) -> str:
        return f"MixpanelExporter({self.endpoint!r}, name={self.name!r})"

    def encode(self, batch: Sequence[Event], sent_at: str) -> bytes:
        """A JSON array of ``{"event", "properties"}``, one per signalkit event, in order.

        ``sent_at`` is not sent: Mixpanel has no batch time, and each event carries its own.
        """
        token, prefix = self.project_token, self.event_prefix
        parts = [
            orjson.dumps(to_mixpanel_event(event, token=token, event_prefix=prefix))
            for event in batch
        ]
        return b"[" + b",".join(parts) + b"]"


def _credential(field: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"MixpanelExporter.{field}: must be a non-empty str")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ConfigError(f"MixpanelExporter.{field}: must not contain spaces or control chars")
    return value
