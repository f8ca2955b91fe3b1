"""``signalkit tail``: follow a JSONL file of events in a readable form."""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from pathlib import Path

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
    position = 0
    inode = None
    if path.exists():
        with path.open("rb") as f:
            last: deque[tuple[int, bytes]] = deque(maxlen=max(lines, 0))
            for line in f:
                if not line.endswith(b"\n"):  # still being written: read it again when done
                    break
                number += 1
                position += len(line)
                if line.strip():
                    last.append((number, line.rstrip(b"\n")))
            inode = os.fstat(f.fileno()).st_ino
        for n, line in last:
            _show(line, n, kinds, raw)
    sys.stdout.flush()
    polls = 0
    pending = b""
    while follow and (max_polls is None or polls < max_polls):
        polls += 1
        time.sleep(poll_s)
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if st.st_ino != inode or st.st_size < position:  # rotated or truncated
            inode, position, number, pending = st.st_ino, 0, 0, b""
        if st.st_size == position:
            continue
        with path.open("rb") as f:
            f.seek(position)
            chunk = f.read()
            position = f.tell()
        data = pending + chunk
        *complete, pending = data.split(b"\n")
        for line in complete:
            number += 1
            if line.strip():
                _show(line, number, kinds, raw)
        sys.stdout.flush()
    return 0
