"""SegmentClientExporter: hands events to a Segment client the application already configured.

Segment's SDK (``segment-analytics-python``) is imported here, when the exporter is built, and
nowhere else: the package and :class:`SegmentExporter` work without it.
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

from ._event import DEFAULT_EVENT_PREFIX, segment_event

__all__ = ["INSTALL_HINT", "SdkNotInstalled", "SegmentClientExporter"]

INSTALL_HINT = "pip install 'signalkit-segment[sdk]'"

_SDK_MAX_MSG_BYTES = 32 * 1024  # analytics-python refuses a bigger call (MAX_MSG_SIZE)
# The SDK adds context.library and integrations after we measure: leave it room.
_SDK_HEADROOM_BYTES = 1024
_MESSAGE_CHARS = 300


class SdkNotInstalled(ConfigError):
    """Segment's SDK is not installed: ``pip install 'signalkit-segment[sdk]'``, or use
    :class:`SegmentExporter`, which needs no SDK. Like sentry_sdk's ``DidNotEnable``, catch it
    to run without this exporter rather than without the application."""


class SegmentClientExporter:
    """Sends each event through a Segment client's own ``track()``.

    For an application that already has a configured ``segment.analytics.Client`` (or uses
    the ``segment.analytics`` module's default client: pass ``client=None``): the calls get the
    same name, ``userId``/``anonymousId``, properties, timestamp, ``messageId`` and
    ``context.groupId`` as with :class:`SegmentExporter`, and the SDK batches, retries and
    sends them with its own settings.

    Delivery is handed over to the SDK: an event counts as delivered once ``track()`` took it.
    One event goes per export, so each is accounted for exactly: a full SDK queue is retried
    with backoff (``messageId`` makes a repeat harmless); a call the SDK refuses is dropped,
    counted ``rejected``. The client is yours: :meth:`shutdown` leaves it alone; flush or shut
    it down as you already do.
    """

    max_batch_events = 1

    def __init__(
        self,
        client: Any = None,
        *,
        event_prefix: str = DEFAULT_EVENT_PREFIX,
        name: str = "segment",
    ) -> None:
        sdk = _import_sdk()
        target = sdk if client is None else client
        track = getattr(target, "track", None)
        if not callable(track):
            raise ConfigError(
                "SegmentClientExporter.client: must be a segment.analytics.Client, or None "
                f"for the segment.analytics module's default client; got {type(client).__name__}"
            )
        if not isinstance(name, str) or not name.strip():
            raise ConfigError("SegmentClientExporter.name: must be a non-empty str")
        self.client: Any = target
        """The client (or the ``segment.analytics`` module) calls are handed to."""
        self.event_prefix = check_event_prefix("SegmentClientExporter", event_prefix)
        self.name = name
        self._track: Callable[..., Any] = track

    def __repr__(self) -> str:
        return f"SegmentClientExporter({type(self.client).__name__}, name={self.name!r})"

    def export(self, batch: Sequence[Event]) -> ExportResult | ExportFailure:
        """``track()`` each event; never raises."""
        for event in batch:
            message = segment_event(event, event_prefix=self.event_prefix)
            properties: dict[str, Any] = message["properties"]
            limit = _SDK_MAX_MSG_BYTES - _SDK_HEADROOM_BYTES
            if not cut_texts_to_fit(message, properties, limit, _sdk_size):
                return ExportFailure(
                    retryable=False,
                    too_large=True,
                    message=f"event {event.id} is over Segment's 32 KB even with its texts cut",
                )
            try:
                outcome = self._track(
                    user_id=message.get("userId"),
                    anonymous_id=message.get("anonymousId"),
                    event=message["event"],
                    properties=properties,
                    context=message["context"],
                    timestamp=utc(event.ts),
                    message_id=message["messageId"],
                )
            except Exception as exc:
                return _failure(exc)
            if isinstance(outcome, tuple) and outcome and outcome[0] is False:
                return ExportFailure(
                    retryable=True, message="the segment client's queue is full; retrying"
                )
        return ExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release: the client belongs to the application."""


def _failure(exc: Exception) -> ExportFailure:
    """What an exception from ``track()`` means: the SDK refused the call (bad argument, too
    big), or, in ``sync_mode``, the request failed (retried unless Segment refused it)."""
    message = f"segment track() raised {exc!r}"[:_MESSAGE_CHARS]
    status = getattr(exc, "status", None)
    if isinstance(exc, AssertionError | TypeError | ValueError | RuntimeError):
        return ExportFailure(retryable=False, message=message)
    if isinstance(status, int) and 400 <= status < 500 and status not in (408, 429):
        return ExportFailure(retryable=False, message=message, status=status)
    return ExportFailure(retryable=True, message=message)


def _import_sdk() -> ModuleType:
    try:
        return importlib.import_module("segment.analytics")
    except ImportError as exc:
        raise SdkNotInstalled(
            "SegmentClientExporter: Segment's SDK (segment-analytics-python) is not installed; "
            f"{INSTALL_HINT}, or use SegmentExporter(write_key), which needs no SDK"
        ) from exc


def _sdk_size(value: Any) -> int:
    """Size as analytics-python measures a call: ``json.dumps`` with its defaults."""
    return len(json.dumps(value, default=str).encode())
