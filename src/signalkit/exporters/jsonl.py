"""Appends events to a JSON Lines file, rotating by size: signalkit's embedded default."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .._errors import ConfigError
from .._stats import logger
from ..events import Event
from .base import ExportResult

__all__ = ["DEFAULT_DIR", "JsonlExporter"]

DEFAULT_DIR = Path(".signalkit")


class JsonlExporter:
    """One event per line, the same JSON as the HTTP body's events.

    When the file would grow past ``max_bytes`` it is renamed ``<name>.1`` (older files shift
    to ``.2``...; at most ``backups`` are kept) and a new file is started. Each batch is one
    ``write`` to a file opened with ``O_APPEND``, so several processes can share a file
    without interleaving lines.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_DIR / "events.jsonl",
        *,
        max_bytes: int = 256 * 1024 * 1024,
        backups: int = 5,
        fsync: bool = False,
    ) -> None:
        if max_bytes <= 0:
            raise ConfigError("JsonlExporter.max_bytes: must be > 0")
        if backups < 0:
            raise ConfigError("JsonlExporter.backups: must be >= 0")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.fsync = fsync
        self._fd: int | None = None
        self._pid = os.getpid()
        self._size = 0

    def __repr__(self) -> str:
        return f"JsonlExporter({str(self.path)!r})"

    def _open(self) -> int:
        if self._pid != os.getpid():  # forked child: keep the parent's descriptor out of it
            self._fd, self._pid = None, os.getpid()
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._size = os.fstat(self._fd).st_size
        return self._fd

    def _rotate(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.path.exists():
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))

    def export(self, batch: Sequence[Event]) -> ExportResult:
        data = b"".join(event.to_json() + b"\n" for event in batch)
        try:
            fd = self._open()
            if self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
                fd = self._open()
            view = memoryview(data)
            while view:  # a regular file may take a large write in several pieces
                view = view[os.write(fd, view) :]
            self._size += len(data)
            if self.fsync:
                os.fsync(fd)
        except OSError as exc:
            logger.warning("signalkit: cannot write %s: %s", self.path, exc.strerror or exc)
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            return ExportResult.RETRY
        return ExportResult.SUCCESS

    def shutdown(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
