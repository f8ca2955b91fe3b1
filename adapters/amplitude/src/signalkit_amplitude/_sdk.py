"""AmplitudeSdkExporter: delivers through the application's own ``amplitude.Amplitude`` client.

The Amplitude SDK is imported when the exporter is built, never by ``import
signalkit_amplitude``; without it the exporter raises :class:`signalkit.ConfigError` with the
install command.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from signalkit import ConfigError, Event, ExportFailure, ExportResult, RetryPolicy

from ._mapping import DEFAULT_EVENT_PREFIX, to_amplitude_event

__all__ = ["AmplitudeSdkExporter"]

INSTALL_HINT = "pip install 'signalkit-amplitude[sdk]'"
_MESSAGE_CHARS = 300
_DEFAULT_POLICY = RetryPolicy()

Outcome = tuple[int, str]


def require_sdk() -> ModuleType:
    """The ``amplitude`` module, or a ConfigError saying how to install it."""
    try:
        return importlib.import_module("amplitude")
    except ImportError:
        raise ConfigError(
            f"AmplitudeSdkExporter: the Amplitude SDK is not installed; {INSTALL_HINT}"
        ) from None


class AmplitudeSdkExporter:
    """Calls ``client.track(BaseEvent(...))`` for each event, with the same mapping as
    :class:`AmplitudeExporter`, then ``client.flush()``, and waits for the SDK's verdict.

    Use it when the application already has a configured ``amplitude.Amplitude`` (its server
    zone, plan, plugins, storage). Each event carries ``time`` (ms) and ``insert_id`` (the
    signalkit event id), so an event sent this way and by :class:`AmplitudeExporter` is one
    event to Amplitude's dedupe. The SDK sets ``library`` to its own name.

    The SDK sends in its own threads and retries on its own; it reports each event's final
    answer to a callback. :meth:`export` waits up to ``timeout_s`` for all of them: all 2xx is
    success; a 429, 5xx or no answer in time (an invalid API key gets no callback at all) is
    retryable; a refused event (4xx) is set apart by splitting the batch, and dropped alone.
    A retry tracks every event of the batch again, which ``insert_id`` dedupes. The client
    belongs to the application: :meth:`shutdown` leaves it running.
    """

    def __init__(
        self,
        client: Any,
        *,
        timeout_s: float = 60.0,
        event_prefix: str = DEFAULT_EVENT_PREFIX,
        retry_policy: RetryPolicy = _DEFAULT_POLICY,
        max_batch_events: int = 2000,
        name: str = "amplitude-sdk",
    ) -> None:
        amplitude = require_sdk()
        if not callable(getattr(client, "track", None)) or not callable(
            getattr(client, "flush", None)
        ):
            raise ConfigError(
                "AmplitudeSdkExporter.client: must be an amplitude.Amplitude (with track() and "
                "flush())"
            )
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or timeout_s <= 0:
            raise ConfigError(f"AmplitudeSdkExporter.timeout_s: a number > 0, got {timeout_s!r}")
        self.client = client
        self.timeout_s = float(timeout_s)
        self.event_prefix = event_prefix
        self.retry_policy = retry_policy
        self.max_batch_events = max_batch_events
        self.name = name
        self._base_event: Callable[..., Any] = amplitude.BaseEvent

    def __repr__(self) -> str:
        return f"AmplitudeSdkExporter(name={self.name!r})"

    def export(self, batch: Sequence[Event]) -> ExportResult | ExportFailure:
        """Track each event, flush, and wait for the SDK to report on all of them."""
        if not batch:
            return ExportResult.SUCCESS
        outcomes: list[Outcome | None] = [None] * len(batch)
        lock = threading.Lock()
        all_reported = threading.Event()

        def reporter(index: int) -> Callable[[Any, int, str | None], None]:
            def report(_event: Any, code: int, message: str | None = None) -> None:
                with lock:
                    if outcomes[index] is None:
                        outcomes[index] = (code, message or "")
                        if all(o is not None for o in outcomes):
                            all_reported.set()

            return report

        try:
            for index, event in enumerate(batch):
                self.client.track(self._sdk_event(event, reporter(index)))
            self.client.flush()
        except Exception as exc:  # the SDK refusing an event, or a bug of its own
            return ExportFailure(retryable=True, message=self._redact(_one_line(exc)))
        if not all_reported.wait(self.timeout_s):
            with lock:
                reported = sum(o is not None for o in outcomes)
            return ExportFailure(
                retryable=True,
                message=f"the Amplitude SDK reported on {reported} of {len(batch)} events "
                f"within timeout_s={self.timeout_s:g} (an invalid API key is never reported)",
            )
        return _verdict([o for o in outcomes if o is not None], len(batch))

    def shutdown(self) -> None:
        """Nothing to release: the client is the application's."""

    def _redact(self, text: str) -> str:
        key = getattr(getattr(self.client, "configuration", None), "api_key", None)
        return text.replace(key, "[redacted]") if isinstance(key, str) and key else text

    def _sdk_event(self, event: Event, callback: Callable[[Any, int, str | None], None]) -> Any:
        mapped = to_amplitude_event(event, event_prefix=self.event_prefix)
        return self._base_event(
            mapped["event_type"],
            user_id=mapped.get("user_id"),
            device_id=mapped.get("device_id"),
            time=mapped["time"],
            insert_id=mapped["insert_id"],
            event_properties=mapped["event_properties"],
            callback=callback,
        )


def _verdict(outcomes: list[Outcome], size: int) -> ExportResult | ExportFailure:
    failed = [(code, message) for code, message in outcomes if not 200 <= code < 300]
    if not failed:
        return ExportResult.SUCCESS
    code, message = failed[0]
    said = f"{len(failed)} of {size} events not delivered; Amplitude said {code}: {message}"
    said = " ".join(said.split())[:_MESSAGE_CHARS]
    if any(c in (408, 429) or c >= 500 or c < 100 for c, _ in failed):
        return ExportFailure(retryable=True, message=said, status=code)
    if size > 1:  # set the refused events apart; the others are tracked again (and deduped)
        return ExportFailure(retryable=False, too_large=True, message=said, status=code)
    return ExportFailure(retryable=False, too_large=code == 413, message=said, status=code)


def _one_line(exc: Exception) -> str:
    detail = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return text[:_MESSAGE_CHARS]
