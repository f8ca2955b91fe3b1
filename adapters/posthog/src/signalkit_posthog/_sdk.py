"""PostHogClientExporter: hands events to a PostHog client the application already configured.

The PostHog SDK is imported here, when the exporter is built, and nowhere else: the package
and :class:`PostHogExporter` work without it.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from signalkit import ConfigError, ExportFailure, ExportResult
from signalkit.events import Event
from signalkit.exporters.vendor import check_event_prefix, cut_texts_to_fit, utc

from ._event import DEFAULT_EVENT_PREFIX, posthog_event
from ._http import MAX_EVENT_BYTES

__all__ = ["INSTALL_HINT", "PostHogClientExporter", "SdkNotInstalled"]

INSTALL_HINT = "pip install 'signalkit-posthog[sdk]'"

# The SDK adds its own properties ($lib, $os, $python_version, super properties...) after we
# measure, and measures with json.dumps' default spacing and escaping; leave it room.
_SDK_HEADROOM_BYTES = 16 * 1024
_MESSAGE_CHARS = 300


class SdkNotInstalled(ConfigError):
    """The PostHog SDK is not installed: ``pip install 'signalkit-posthog[sdk]'``, or use
    :class:`PostHogExporter`, which needs no SDK. Like sentry_sdk's ``DidNotEnable``, catch it
    to run without this exporter rather than without the application."""


class PostHogClientExporter:
    """Sends each event through a PostHog client's own ``capture()``.

    For an application that already has a configured ``posthog.Posthog`` client (or uses the
    ``posthog`` module's default client: pass ``client=None``): the events get the same name,
    distinct id, properties, timestamp and ``uuid`` as with :class:`PostHogExporter`, and the
    SDK batches, retries and sends them with its own settings.

    Delivery is handed over to the SDK: an event counts as delivered once ``capture()`` took
    it. One event goes per export, so what the client turns away (its queue is full,
    ``before_send`` dropped it, it is shut down) is counted exactly, as dropped ``rejected``;
    a disabled client takes everything and sends nothing, as you configured it. The client is
    yours: :meth:`shutdown` leaves it alone; flush or shut it down as you already do.
    """

    max_batch_events = 1

    def __init__(
        self,
        client: Any = None,
        *,
        event_prefix: str = DEFAULT_EVENT_PREFIX,
        name: str = "posthog",
    ) -> None:
        sdk = _import_sdk()
        target = sdk if client is None else client
        capture = getattr(target, "capture", None)
        if not callable(capture):
            raise ConfigError(
                "PostHogClientExporter.client: must be a posthog.Posthog client, or None for "
                f"the posthog module's default client; got {type(client).__name__}"
            )
        if not isinstance(name, str) or not name.strip():
            raise ConfigError("PostHogClientExporter.name: must be a non-empty str")
        self.client: Any = target
        """The client (or the ``posthog`` module) events are handed to."""
        self.event_prefix = check_event_prefix("PostHogClientExporter", event_prefix)
        self.name = name
        self._capture: Callable[..., Any] = capture

    def __repr__(self) -> str:
        return f"PostHogClientExporter({type(self.client).__name__}, name={self.name!r})"

    def export(self, batch: Sequence[Event]) -> ExportResult | ExportFailure:
        """``capture()`` each event; never raises."""
        for event in batch:
            message = posthog_event(event, event_prefix=self.event_prefix)
            properties: dict[str, Any] = message["properties"]
            if not cut_texts_to_fit(
                message, properties, MAX_EVENT_BYTES - _SDK_HEADROOM_BYTES, _sdk_size
            ):
                return ExportFailure(
                    retryable=False,
                    too_large=True,
                    message=f"event {event.id} is over PostHog's limit even with its texts cut",
                )
            try:
                taken = self._capture(
                    event=message["event"],
                    distinct_id=message["distinct_id"],
                    properties=properties,
                    timestamp=utc(event.ts),
                    uuid=message["uuid"],
                )
            except Exception as exc:  # the SDK refused the arguments: the same on a retry
                return ExportFailure(
                    retryable=False, message=f"posthog capture() raised {exc!r}"[:_MESSAGE_CHARS]
                )
            if taken is None and not getattr(self.client, "disabled", False):
                return ExportFailure(
                    retryable=False,
                    message=(
                        "the posthog client did not take the event (queue full, dropped by "
                        "before_send, or shut down); see the 'posthog' logger"
                    ),
                )
        return ExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release: the client belongs to the application."""


def _import_sdk() -> ModuleType:
    try:
        return importlib.import_module("posthog")
    except ImportError as exc:
        raise SdkNotInstalled(
            "PostHogClientExporter: the PostHog SDK is not installed; "
            f"{INSTALL_HINT}, or use PostHogExporter(api_key), which needs no SDK"
        ) from exc


def _sdk_size(value: Any) -> int:
    """Size as the PostHog SDK measures an event: ``json.dumps`` with its defaults."""
    return len(json.dumps(value, default=str).encode())
