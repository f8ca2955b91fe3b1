"""Prints one readable line per event: for local development."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

import orjson

from .._format import format_event
from ..events import Event
from .base import ExportResult

__all__ = ["ConsoleExporter"]


class ConsoleExporter:
    """Writes each event as a readable line (or its JSON with ``json=True``) to a stream."""

    def __init__(self, stream: TextIO | None = None, *, json: bool = False) -> None:
        self._stream = stream
        self._json = json

    def export(self, batch: Sequence[Event]) -> ExportResult:
        out = self._stream or sys.stderr
        for event in batch:
            if self._json:
                out.write(event.to_json().decode() + "\n")
            else:
                out.write(format_event(orjson.loads(event.to_json())) + "\n")
        out.flush()
        return ExportResult.SUCCESS

    def shutdown(self) -> None:
        pass
