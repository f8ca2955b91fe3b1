"""signalkit: capture the strong implicit user signals that make an AI product improve with use.

Wrap an AI call with :func:`recommendation` (or :func:`exposure`), then record what the user
did with it — :func:`action`, :func:`correction`, :func:`toggle`, :func:`outcome`,
:func:`feedback` — from the exposure handle, its token, or its id. Every event is a typed,
frozen model carrying a :class:`Score`. The module-level functions use a default
:class:`Client`, set with :func:`configure`.
"""

import collections.abc as _abc
import datetime as _dt
import logging as _logging
import secrets as _secrets
import threading as _threading
import typing as _t

from ._client import Client, Processor, Target
from ._context import context, current_exposure
from ._errors import ConfigError, InvalidEvent, InvalidToken, SignalkitError
from ._instrument import Exposure
from ._instrument import recommendation_decorator as _recommendation_decorator
from ._stats import Stats
from .events import (
    ActionEvent,
    CorrectionEvent,
    Event,
    ExposureEvent,
    FeedbackEvent,
    Item,
    ModelRef,
    OutcomeEvent,
    Reason,
    Score,
    Subject,
    ToggleEvent,
)
from .exporters import (
    ConsoleExporter,
    Exporter,
    ExportFailure,
    ExportResult,
    HttpExporter,
    JsonlExporter,
    MemoryExporter,
    OtelExporter,
    RetryPolicy,
)
from .scoring import DEFAULT_POLICY, Scorer, ScoringPolicy, rescore, score
from .tokens import TokenClaims

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_POLICY",
    "ActionEvent",
    "Client",
    "ConfigError",
    "ConsoleExporter",
    "CorrectionEvent",
    "Event",
    "ExportFailure",
    "ExportResult",
    "Exporter",
    "Exposure",
    "ExposureEvent",
    "FeedbackEvent",
    "HttpExporter",
    "InvalidEvent",
    "InvalidToken",
    "Item",
    "JsonlExporter",
    "MemoryExporter",
    "ModelRef",
    "OtelExporter",
    "OutcomeEvent",
    "Processor",
    "Reason",
    "RetryPolicy",
    "Score",
    "Scorer",
    "ScoringPolicy",
    "SignalkitError",
    "Stats",
    "Subject",
    "Target",
    "ToggleEvent",
    "TokenClaims",
    "__version__",
    "action",
    "aflush",
    "configure",
    "context",
    "correction",
    "current_exposure",
    "exposure",
    "feedback",
    "flush",
    "get_client",
    "outcome",
    "recommendation",
    "rescore",
    "score",
    "shutdown",
    "stats",
    "toggle",
    "verify",
]

_default: Client | None = None
_default_lock = _threading.Lock()
_config_error_logged = 0.0


def get_client() -> Client:
    """The default client behind the module-level functions (made on first use)."""
    global _default
    client = _default
    if client is None:
        with _default_lock:
            if _default is None:
                _default = Client()
            client = _default
    return client


def _recording_client() -> Client | None:
    """The default client for a recording call, or None if it cannot be built.

    A misconfigured environment (a bad ``SIGNALKIT_SECRET``...) must not turn the host's
    recording calls into exceptions: the error is logged once a minute, the call does nothing.
    """
    global _config_error_logged
    client = _default
    if client is not None:
        return client
    try:
        return get_client()
    except ConfigError as exc:
        import time

        now = time.monotonic()
        if now - _config_error_logged > 60 or not _config_error_logged:
            _config_error_logged = now
            _logging.getLogger("signalkit").error(
                "signalkit is not recording: the default client cannot start: %s", exc
            )
        return None


def configure(service: str | None = None, **options: _t.Any) -> Client:
    """Replace the default client with ``Client(service, **options)`` and return it.

    The previous default client, if any, is flushed and shut down (within 2 s).
    """
    global _default
    new = Client(service, **options)
    with _default_lock:
        old, _default = _default, new
    if old is not None:
        old.shutdown(timeout=2.0)
    return new


def recommendation(
    surface: str,
    *,
    model: str | None = None,
    model_version: str | None = None,
    model_variant: str | None = None,
    attributes: dict[str, _t.Any] | None = None,
    items: _abc.Callable[[_t.Any], _abc.Iterable[_t.Any]] | None = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    session_id: str | None = None,
    tenant_id: str | None = None,
) -> _abc.Callable[[_abc.Callable[..., _t.Any]], _abc.Callable[..., _t.Any]]:
    """:meth:`Client.recommendation` on the default client (looked up at each call)."""
    subject = {
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "session_id": session_id,
        "tenant_id": tenant_id,
    }
    return _recommendation_decorator(
        _recording_client, surface, model, model_version, model_variant, attributes, items, subject
    )


def exposure(surface: str, **kwargs: _t.Any) -> Exposure:
    """:meth:`Client.exposure` on the default client."""
    client = _recording_client()
    if client is None:
        return Exposure(_disabled_client(), surface, ModelRef(), Subject(), None, valid=False)
    return client.exposure(surface, **kwargs)


def action(exposure: Target, action: str = "accepted", **kwargs: _t.Any) -> ActionEvent | None:
    """:meth:`Client.action` on the default client."""
    client = _recording_client()
    return None if client is None else client.action(exposure, action, **kwargs)


def correction(
    exposure: Target, original: str, corrected: str, **kwargs: _t.Any
) -> CorrectionEvent | None:
    """:meth:`Client.correction` on the default client."""
    client = _recording_client()
    return None if client is None else client.correction(exposure, original, corrected, **kwargs)


def toggle(
    exposure: Target, state: _t.Literal["expanded", "collapsed"], **kwargs: _t.Any
) -> ToggleEvent | None:
    """:meth:`Client.toggle` on the default client."""
    client = _recording_client()
    return None if client is None else client.toggle(exposure, state, **kwargs)


def outcome(exposure: Target, name: str, **kwargs: _t.Any) -> OutcomeEvent | None:
    """:meth:`Client.outcome` on the default client."""
    client = _recording_client()
    return None if client is None else client.outcome(exposure, name, **kwargs)


def feedback(
    exposure: Target, rating: float | None = None, **kwargs: _t.Any
) -> FeedbackEvent | None:
    """:meth:`Client.feedback` on the default client."""
    client = _recording_client()
    return None if client is None else client.feedback(exposure, rating, **kwargs)


def verify(token: str, *, at: _dt.datetime | None = None) -> TokenClaims:
    """:meth:`Client.verify` on the default client."""
    return get_client().verify(token, at=at)


def _disabled_client() -> Client:
    # Handles of a default client that could not start still need a client to sign tokens.
    global _disabled
    if _disabled is None:
        _disabled = Client("disabled", exporters=[], secret=_secrets.token_bytes(32))
    return _disabled


_disabled: Client | None = None


def flush(timeout: float | None = None) -> bool:
    """:meth:`Client.flush` on the default client."""
    return get_client().flush(timeout)


async def aflush(timeout: float | None = None) -> bool:
    """:meth:`Client.aflush` on the default client."""
    return await get_client().aflush(timeout)


def shutdown(timeout: float | None = None) -> bool:
    """:meth:`Client.shutdown` on the default client (if one was made)."""
    client = _default
    return True if client is None else client.shutdown(timeout)


def stats() -> Stats:
    """:attr:`Client.stats` of the default client."""
    return get_client().stats
