"""``signalkit tail``: follow a JSONL file of events in a readable form."""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import BinaryIO

import orjson

from .._format import format_event

__all__ = ["tail"]


def _show(line: bytes, number: int, kinds: set[str] | None, raw: bool) -> None:
    try:
        event = orjson.loads(line)
        if not isinstance(event, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        sys.stderr.write(f"line {number}: malformed ({exc})\n")
        return
    if kinds and event.get("kind") not in kinds:
        return
    sys.stdout.write((line.decode("utf-8", "replace") if raw else format_event(event)) + "\n")


def tail(
    path: Path,
    *,
    lines: int = 20,
    follow: bool = False,
    kinds: set[str] | None = None,
    raw: bool = False,
    poll_s: float = 0.25,
    max_polls: int | None = None,
) -> int:
    """Print the last ``lines`` events of ``path``; with ``follow``, keep printing new ones.

    Rotation (the file replaced or truncated) is followed. Malformed lines are reported on
    stderr with their line number and skipped.
    """
    if not path.exists() and not follow:
        sys.stderr.write(f"signalkit tail: no such file {path} (run `signalkit demo` first?)\n")
        return 1
    number = 0
    f = path.open("rb") if path.exists() else None
    pending = b""
    if f is not None:
        last: deque[tuple[int, bytes]] = deque(maxlen=max(lines, 0))
        for line in f:
            if not line.endswith(b"\n"):  # still being written: complete it when following
                pending = line
                break
            number += 1
            if line.strip():
                last.append((number, line.rstrip(b"\n")))
        for n, line in last:
            _show(line, n, kinds, raw)
    sys.stdout.flush()
    polls = 0
    try:
        while follow and (max_polls is None or polls < max_polls):
            polls += 1
            if f is not None:
                number, pending = _drain(f, pending, number, kinds, raw)
                if _replaced(path, f):
                    # rotated: finish the old file (its writer may have added to it), then
                    # start at the top of the new one
                    number, pending = _drain(f, pending, number, kinds, raw)
                    f.close()
                    f, number, pending = None, 0, b""
            if f is None and path.exists():
                f = path.open("rb")
                continue
            time.sleep(poll_s)
    finally:
        if f is not None:
            f.close()
    return 0


def _replaced(path: Path, f: BinaryIO) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return True
    own = os.fstat(f.fileno())
    return st.st_ino != own.st_ino or st.st_size < f.tell()


def _drain(
    f: BinaryIO, pending: bytes, number: int, kinds: set[str] | None, raw: bool
) -> tuple[int, bytes]:
    chunk = f.read()
    if not chunk:
        return number, pending
    *complete, pending = (pending + chunk).split(b"\n")
    for line in complete:
        number += 1
        if line.strip():
            _show(line, number, kinds, raw)
    sys.stdout.flush()
    return number, pending
