"""What web-framework adapters share: the ids an ``identify`` callable returns, checked, a log
that reports a recurring failure without flooding, a bounded body read and the relay's
rate-limit key.

The Starlette, Django and Flask adapters each let the application say who a request is for
with an ``identify`` callable; this is where its answer is checked, the same way in each.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .events import Subject

__all__ = ["FIELDS", "Identity", "ThrottledLog", "identity_of", "rate_key", "read_at_most"]

FIELDS = ("user_id", "anonymous_id", "session_id", "tenant_id")
"""The keys an ``identify`` callable may return (those of :class:`signalkit.Subject`)."""

Identity = dict[str, str]
"""Request ids by field name; a field left out is not known."""


def identity_of(result: object) -> Identity:
    """Check what an ``identify`` callable returned: a mapping, a ``Subject`` or ``None``.

    Values may be ``str``, ``int`` (a primary key) or ``None``; anything else raises
    ``TypeError``/``ValueError`` naming the field.
    """
    if result is None:
        return {}
    if isinstance(result, Subject):
        items: Mapping[Any, Any] = result.model_dump(exclude_none=True)
    elif isinstance(result, Mapping):
        items = result
    else:
        raise TypeError(
            f"identify must return a mapping of {', '.join(FIELDS)} (or a signalkit.Subject, "
            f"or None), not {type(result).__name__}"
        )
    ids: Identity = {}
    for key, value in items.items():
        if key not in FIELDS:
            raise ValueError(f"identify returned unknown field {key!r:.40}; known: {FIELDS}")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise TypeError(f"identify returned {key}={type(value).__name__}; expected str")
        ids[key] = str(value)
    return ids


def read_at_most(read: Callable[[int], bytes], size: int) -> bytes:
    """Read until ``size`` bytes or the end of a stream that may return less than asked.

    Ask for one byte more than a limit to learn that a body is over it without reading all
    of it.
    """
    chunks: list[bytes] = []
    left = size
    while left > 0 and (chunk := read(left)):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def rate_key(subject: object, address: str | None) -> str:
    """The relay's rate-limit key for a request: its session, else its user, else its address.

    ``subject`` is the request's :class:`signalkit.Subject` (or ``None``).
    """
    for name in ("session_id", "user_id"):
        value = getattr(subject, name, None)
        if value:
            return f"{name}:{value}"
    return f"addr:{address or ''}"


class ThrottledLog:
    """Log an SDK-side failure at most once per ``interval_s``, with how many were not logged."""

    def __init__(self, logger: logging.Logger, interval_s: float = 60.0) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.count = 0
        self._lock = threading.Lock()
        self._last: float | None = None
        self._quiet = 0

    def exception(self, message: str) -> None:
        """Count the current exception; log it (with traceback) unless one was logged lately."""
        now = time.monotonic()
        with self._lock:
            self.count += 1
            if self._last is not None and now - self._last < self.interval_s:
                self._quiet += 1
                return
            self._last, quiet, self._quiet = now, self._quiet, 0
        if quiet:
            message += f" (and {quiet} more since the last message)"
        self.logger.warning(message, exc_info=True)
