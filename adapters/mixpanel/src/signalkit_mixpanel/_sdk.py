"""MixpanelSdkExporter: delivers through the application's own ``mixpanel.Mixpanel`` client.

The Mixpanel SDK is imported when the exporter is built, never by ``import signalkit_mixpanel``;
without it the exporter raises :class:`signalkit.ConfigError` with the install command.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Literal

from signalkit import ConfigError, Event, ExportFailure, ExportResult, RetryPolicy

from ._exporter import MAX_BATCH_EVENTS, RETRY_POLICY
from ._mapping import DEFAULT_EVENT_PREFIX, to_mixpanel_event

__all__ = ["MixpanelSdkExporter"]

INSTALL_HINT = "pip install 'signalkit-mixpanel[sdk]'"
_MESSAGE_CHARS = 300


def require_sdk() -> ModuleType:
    """The ``mixpanel`` module, or a ConfigError saying how to install it."""
    try:
        return importlib.import_module("mixpanel")
    except ImportError:
        raise ConfigError(
            f"MixpanelSdkExporter: the Mixpanel SDK is not installed; {INSTALL_HINT}"
        ) from None


class MixpanelSdkExporter:
    """Calls ``client.track(distinct_id, name, properties)`` (or ``client.import_data(...)``)
    for each event, with the same mapping as :class:`MixpanelExporter`.

    Use it when the application already has a configured ``mixpanel.Mixpanel`` (its consumer,
    credentials, proxy). The properties carry ``time`` (ms) and ``$insert_id`` (the signalkit
    event id), which replace the SDK's own, so an event sent this way and by
    :class:`MixpanelExporter` is one event to Mixpanel's dedupe.

    ``method="track"`` goes to ``/track``, which takes only events of the last 5 days;
    ``method="import"`` goes to ``/import`` (any age) and needs the client's consumer built with
    ``credentials=ServiceAccountCredentials(...)``, or the legacy ``api_secret``.

    The SDK's ``Consumer`` makes one request per event; for batches, build the client with a
    ``BufferedConsumer`` and pass it as ``consumer``: each export ends with its ``flush()``, so
    an export that returns success has been delivered. A failure (``MixpanelException`` or any
    other error) is retryable; a retry sends every event of the batch again, which Mixpanel's
    dedupe absorbs. The client belongs to the application: :meth:`shutdown` leaves it alone.
    """

    def __init__(
        self,
        client: Any,
        *,
        method: Literal["track", "import"] = "track",
        consumer: Any = None,
        api_secret: str | None = None,
        event_prefix: str = DEFAULT_EVENT_PREFIX,
        retry_policy: RetryPolicy = RETRY_POLICY,
        max_batch_events: int = MAX_BATCH_EVENTS,
        name: str = "mixpanel-sdk",
    ) -> None:
        require_sdk()
        if not callable(getattr(client, "track", None)) or not callable(
            getattr(client, "import_data", None)
        ):
            raise ConfigError(
                "MixpanelSdkExporter.client: must be a mixpanel.Mixpanel (with track() and "
                "import_data())"
            )
        if method not in ("track", "import"):
            raise ConfigError(f"MixpanelSdkExporter.method: 'track' or 'import', got {method!r}")
        if consumer is not None and not callable(getattr(consumer, "flush", None)):
            raise ConfigError(
                "MixpanelSdkExporter.consumer: must have flush(), e.g. a BufferedConsumer"
            )
        if api_secret is not None and method != "import":
            raise ConfigError("MixpanelSdkExporter.api_secret: only used with method='import'")
        self.client = client
        self.method = method
        self.consumer = consumer
        self._api_secret = api_secret
        self.event_prefix = event_prefix
        self.retry_policy = retry_policy
        self.max_batch_events = max_batch_events
        self.name = name

    def __repr__(self) -> str:
        return f"MixpanelSdkExporter(method={self.method!r}, name={self.name!r})"

    def export(self, batch: Sequence[Event]) -> ExportResult | ExportFailure:
        """Hand each event to the SDK, then flush ``consumer``; never raises."""
        try:
            for event in batch:
                self._send(event)
            if self.consumer is not None:
                self.consumer.flush()
        except Exception as exc:  # MixpanelException, or the SDK tripping on an odd answer
            detail = " ".join(str(exc).split()) or type(exc).__name__
            message = f"{type(exc).__name__}: {detail}" if str(exc) else detail
            if self._api_secret:
                message = message.replace(self._api_secret, "[redacted]")
            return ExportFailure(retryable=True, message=message[:_MESSAGE_CHARS])
        return ExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release: the client and its consumer are the application's."""

    def _send(self, event: Event) -> None:
        mapped = to_mixpanel_event(event, event_prefix=self.event_prefix)
        properties: dict[str, Any] = mapped["properties"]
        distinct_id = properties.pop("distinct_id")
        if self.method == "track":
            self.client.track(distinct_id, mapped["event"], properties)
        else:
            # api_secret only when given: the SDK before 4.8 has no such argument.
            legacy = {} if self._api_secret is None else {"api_secret": self._api_secret}
            self.client.import_data(
                None, distinct_id, mapped["event"], properties["time"], properties, **legacy
            )
