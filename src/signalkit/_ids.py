"""UUIDv7 identifiers (RFC 9562): time-ordered, so sinks can sort and dedupe by id."""

from __future__ import annotations

import os
import random
import threading
import time

__all__ = ["id_time_ms", "new_id", "reseed"]

_lock = threading.Lock()
_rng = random.Random(os.urandom(16))
_last_ms = 0
_counter = 0
_head = ""
_tail = ""
_LOW48 = (1 << 48) - 1
_RAND_A = [f"{0x7000 | i:04x}" for i in range(0x1000)]  # version nibble 7 + 12-bit counter


def reseed() -> None:
    """Give this process fresh randomness (called in a forked child)."""
    global _rng, _last_ms, _counter
    _rng = random.Random(os.urandom(16))
    _last_ms = 0
    _counter = 0


def new_id(now_ns: int | None = None) -> str:
    """Return a new UUIDv7 string (for the time ``now_ns`` when backfilling).

    The 12-bit ``rand_a`` field is a counter within the millisecond (RFC 9562 method 1),
    so ids made by one process are strictly increasing even within one millisecond.
    """
    global _counter
    if now_ns is not None:  # backfill: the id carries the event's own time, outside the sequence
        value = (now_ns // 1_000_000 << 80) | (0x7 << 76) | (0b10 << 62)
        value |= (_rng.getrandbits(12) << 64) | _rng.getrandbits(62)
        h = f"{value:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    ms = time.time_ns() // 1_000_000
    with _lock:
        if ms > _last_ms:
            _new_millisecond(ms)
        else:
            _counter += 1
            if _counter > 0xFFF:  # borrow the next millisecond rather than repeat an id
                _new_millisecond(_last_ms + 1)
        return _head + _RAND_A[_counter] + _tail


def _new_millisecond(ms: int) -> None:
    # rand_b is drawn once per millisecond: within it the counter keeps ids unique and ordered,
    # and 62 random bits keep them unique across processes. Formatting only the counter (from a
    # table) per id keeps the caller's cost to a string concatenation.
    global _last_ms, _counter, _head, _tail
    _last_ms = ms
    _counter = _rng.getrandbits(11)  # leave headroom so the counter rarely overflows
    h = f"{ms & _LOW48:012x}"
    rand_b = _rng.getrandbits(62)
    _head = f"{h[:8]}-{h[8:]}-"
    _tail = f"-{0x8000 | rand_b >> 48:04x}-{rand_b & _LOW48:012x}"


def id_time_ms(uuid7: str) -> int:
    """The Unix time in milliseconds stored in a UUIDv7 string."""
    return int(uuid7[:8] + uuid7[9:13], 16)
