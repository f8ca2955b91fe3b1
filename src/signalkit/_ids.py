"""UUIDv7 identifiers (RFC 9562): time-ordered, so sinks can sort and dedupe by id."""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import NamedTuple

__all__ = ["id_time_ms", "new_id", "reseed", "stamp"]

_lock = threading.Lock()
_rng = random.Random(os.urandom(16))
_LOW48 = (1 << 48) - 1
_RAND_A = [f"{0x7000 | i:04x}" for i in range(0x1000)]  # version nibble 7 + 12-bit counter
_MAX_COUNTER = 0xFFF


_MAX_STEP_BACK_MS = 10_000
"""A clock stepping back less than this keeps ids increasing (they stay on the later time);
a bigger step makes ids and timestamps follow the clock again."""


class _Millisecond(NamedTuple):
    """What every id of one millisecond shares, and the counter that tells them apart."""

    ms: int
    head: str
    tail: str
    counter: Iterator[int]
    ts: datetime


def _millisecond(ms: int) -> _Millisecond:
    # rand_b is drawn once per millisecond: within it the counter keeps ids unique and ordered,
    # and 62 random bits keep them unique across processes. Formatting only the counter (from a
    # table) per id keeps the caller's cost to a string concatenation.
    h = f"{ms & _LOW48:012x}"
    rand_b = _rng.getrandbits(62)
    start = _rng.getrandbits(11)  # leave headroom so the counter rarely overflows
    tail = f"-{0x8000 | rand_b >> 48:04x}-{rand_b & _LOW48:012x}"
    ts = datetime.fromtimestamp(ms / 1000, UTC)
    return _Millisecond(ms, f"{h[:8]}-{h[8:]}-", tail, itertools.count(start), ts)


_now = _millisecond(0)


def reseed() -> None:
    """Give this process fresh randomness (called in a forked child)."""
    global _rng, _now
    _rng = random.Random(os.urandom(16))
    _now = _millisecond(0)


def new_id(now_ns: int | None = None) -> str:
    """Return a new UUIDv7 string (for the time ``now_ns`` when backfilling)."""
    if now_ns is None:
        return stamp()[1]
    # backfill: the id carries the event's own time, outside the sequence
    value = (now_ns // 1_000_000 << 80) | (0x7 << 76) | (0b10 << 62)
    value |= (_rng.getrandbits(12) << 64) | _rng.getrandbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def stamp(ms: int | None = None) -> tuple[int, str, datetime]:
    """Now, for a new event: (Unix ms, a new UUIDv7 string with that ms, the same ms as a UTC
    datetime). An event's ``ts`` and its id always carry the same millisecond. ``ms`` is a
    clock reading to use instead of the clock (for tests).

    The 12-bit ``rand_a`` field is a counter within the millisecond (RFC 9562 method 1), so
    ids made by one process are strictly increasing, even within one millisecond and when the
    clock steps back a little. The usual call takes no lock: ``next()`` on an
    ``itertools.count`` is atomic, so two threads never get the same counter value.
    """
    if ms is None:
        ms = time.time_ns() // 1_000_000
    now = _now
    if now.ms - _MAX_STEP_BACK_MS < ms <= now.ms:
        n = next(now.counter)
        if n <= _MAX_COUNTER:
            return now.ms, now.head + _RAND_A[n] + now.tail, now.ts
    return _roll(ms)


def _roll(ms: int) -> tuple[int, str, datetime]:
    """A new millisecond, or the counter ran out: borrow the next one rather than repeat."""
    global _now
    with _lock:
        now = _now
        if now.ms - _MAX_STEP_BACK_MS < ms <= now.ms:  # another thread moved on, or ran out
            n = next(now.counter)
            if n <= _MAX_COUNTER:
                return now.ms, now.head + _RAND_A[n] + now.tail, now.ts
            ms = now.ms + 1
        now = _now = _millisecond(ms)
        return now.ms, now.head + _RAND_A[next(now.counter)] + now.tail, now.ts


def id_time_ms(uuid7: str) -> int:
    """The Unix time in milliseconds stored in a UUIDv7 string."""
    return int(uuid7[:8] + uuid7[9:13], 16)
