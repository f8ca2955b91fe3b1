"""The spool: a durable on-disk log between the queue and the exporters, one cursor per exporter.

The worker appends each batch of serialised events (``event.to_json()`` bytes) and gets back
sequence numbers; each exporter's lane reads the log at its own named cursor and acknowledges
what its sink accepted. Records every cursor has acknowledged are deleted. A restart resumes
every cursor where it stopped: delivery is at-least-once, and a re-read record is byte-identical
to what was appended, so sinks dedupe on the event id. See ``docs/spool.md`` for the design
choices, the measured throughput and the crash matrix.

Storage: one SQLite database in WAL mode (``spool.db``, ``-wal``, ``-shm``) and a lock file
(``spool.lock``) in a directory that belongs to one :class:`Spool` at a time.

API::

    spool = Spool(directory, max_bytes=256 * 2**20, fsync="interval", fsync_interval_ms=100,
                  max_age_s=86_400, on_full="drop_oldest")
    spool = Spool.open_slot(root, **options)   # first free <root>/slot-<n>: one per process
    spool.add_cursor("jsonl", start="tail")    # idempotent; returns the cursor's position
    result = spool.append([b"...", b"..."])    # AppendResult: .ok, .last_seq, .refused, .reason
    rows = spool.read("jsonl", 512, max_bytes=4 * 2**20)   # [(seq, bytes), ...] after the ack
    spool.ack("jsonl", rows[-1][0])            # everything <= that seq is delivered
    spool.pending("jsonl"); spool.cursors(); spool.last_seq; spool.stats(); spool.sync()
    spool.remove_cursor("old-exporter"); spool.close()

What can raise:

* ``Spool(...)`` / ``Spool.open_slot(...)``: :class:`signalkit.ConfigError` for a bad option;
  :class:`SpoolLocked` (a ``ConfigError``) when another live ``Spool``, in this process or
  another, holds the directory; :class:`SpoolUnavailable` (a ``ConfigError``) when the directory
  cannot hold a spool at all (cannot be created or written, a full disk at open, a filesystem
  without WAL support, another program holding an exclusive SQLite lock on the file). A
  damaged, truncated or unreadable database never raises: it is renamed aside as
  ``spool.db.corrupt-<unix ms>``, what is readable and passes its checksum is salvaged into a
  fresh one, and the loss is counted ``corrupt``.
* After construction no method raises because of the disk or the database: I/O errors, a full
  disk, a foreign lock on the file, corruption found while running, files deleted underneath —
  all are handled, counted in :meth:`Spool.stats` and reported through return values
  (:class:`AppendResult`, an empty ``read``). What still raises is a caller's bug:
  ``TypeError`` for a record that is not bytes, ``ValueError`` for a bad cursor name or limit,
  ``KeyError`` for a cursor that was never added. After :meth:`Spool.close`, and in a forked
  child, every method is a no-op (``append`` returns a refusal with reason ``closed`` /
  ``forked``; ``read`` returns ``[]``).

Durability of ``append`` (the result is returned after the commit):

* ``"always"``: ``synchronous=FULL`` — the WAL is fsynced before ``append`` returns. Nothing
  that returned ``ok`` is lost, on a process kill or a power loss.
* ``"interval"`` (default): ``synchronous=NORMAL`` plus an fsync of the WAL by a background
  thread at most ``fsync_interval_ms`` after a commit. A process kill (``kill -9``, OOM, crash)
  loses nothing that returned ``ok``: the commit is in the OS page cache. A power loss or kernel
  crash loses at most the commits of the last ``fsync_interval_ms`` (plus one fsync's duration).
* ``"never"``: ``synchronous=OFF`` — a process kill still loses nothing; a power loss can lose
  anything not yet written back by the OS, and can damage the file (found and salvaged at the
  next open).

Acknowledgements are committed without their own fsync (``NORMAL``) under every policy: a power
loss can move a cursor back, which re-delivers records (at-least-once), never loses them.

Maintenance: any call runs, at most every 0.25 s, a check that the lock file, database and WAL
are still the ones opened (a deleted one is restored from the open connection), the expiry of
old records, the write of acknowledgements that failed earlier, and returns free pages.

Threads: every public method takes one internal lock for one short SQLite transaction on one
connection (``check_same_thread=False``), so the worker's ``append`` and each lane's ``read`` /
``ack`` can be called from their own threads; SQLite releases the GIL while it works. With
``fsync="interval"`` a daemon thread ``signalkit-spool-sync`` is started by the first
``append`` and joined by ``close``; it never takes the spool's lock. Call ``close()``.

Fork: the child never touches the parent's connection or lock (R7). An ``os.register_at_fork``
hook (and a pid check in every method) turns the inherited ``Spool`` into a closed one in the
child: it closes the child's copy of the lock file without unlocking it and keeps the inherited
SQLite connection referenced forever, so it is never used nor even closed there. The same hook
holds every spool's lock across ``fork()``, so no thread is inside SQLite (whose process-wide
mutexes a child would inherit locked) when the process forks. The child cannot take the
parent's directory; a pipeline that wants a spool in each process opens
``Spool.open_slot(root)`` there, which takes the first free ``root/slot-<n>`` — so a restarted
worker adopts (and delivers) the backlog a dead one left behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
import stat
import threading
import time
import weakref
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, TypedDict

from ._errors import ConfigError
from ._stats import logger

__all__ = [
    "AppendResult",
    "CursorStart",
    "FsyncPolicy",
    "OnFull",
    "RefuseReason",
    "Spool",
    "SpoolLocked",
    "SpoolStats",
    "SpoolUnavailable",
]

FsyncPolicy = Literal["always", "interval", "never"]
OnFull = Literal["drop_oldest", "reject"]
CursorStart = Literal["tail", "head"]
RefuseReason = Literal[
    "spool_full",  # on_full="reject" and the batch does not fit under max_bytes
    "too_large",  # the batch alone is larger than max_bytes
    "disk_full",  # the filesystem is full (SQLITE_FULL, ENOSPC)
    "io_error",  # any other failure of the disk or of the database file
    "busy",  # another program holds a lock on the database file
    "corrupt",  # damage found, and the retry in a recovered database failed too
    "closed",  # close() was called, or the directory was taken over by another process
    "forked",  # this is a forked child: the spool belongs to the parent
]
_ErrorKind = Literal["corrupt", "disk_full", "busy", "io_error"]

DB_NAME = "spool.db"
LOCK_NAME = "spool.lock"
_SCHEMA_VERSION = 1
_KEEP_ASIDE = 3
"""How many damaged databases (``spool.db.corrupt-*``) to keep for inspection."""
_BUSY_TIMEOUT_S = 0.1
"""How long a write waits for a foreign lock on the file before it is refused as ``busy``."""
_MAINTENANCE_INTERVAL_S = 0.25
"""How often, at most, a call also checks the files, expires old records and frees pages."""
_VACUUM_PAGES = 2048
"""Free pages returned to the filesystem per maintenance pass (8 MiB at 4 KiB pages)."""
_WARN_INTERVAL_S = 60.0
_CURSOR_NAME_MAX = 200
_SQLITE_SYNC = {"always": "FULL", "interval": "NORMAL", "never": "OFF"}

# SQLite primary result codes (https://sqlite.org/rescode.html).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_NOTADB = 5, 6, 11, 13, 26

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    crc INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, acked INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""


class SpoolLocked(ConfigError):
    """Another live :class:`Spool` holds this directory: use one directory per process."""


class SpoolUnavailable(ConfigError):
    """The directory cannot hold a spool (not writable, disk full, no WAL support)."""


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What :meth:`Spool.append` did with a batch: stored all of it, or none of it."""

    last_seq: int
    """Sequence number of the batch's last record; the previous tail when nothing was stored."""
    stored: int
    """Records now in the spool, durable per the fsync policy."""
    refused: int = 0
    """Records not stored: the caller still owns them (keep them in memory, or count a drop)."""
    dropped: int = 0
    """Older records deleted to make room (``on_full="drop_oldest"``), counted ``dropped_full``."""
    reason: RefuseReason | None = None
    """Why the batch was refused; ``None`` when it was stored."""

    @property
    def ok(self) -> bool:
        """True when the whole batch was stored."""
        return self.refused == 0

    @property
    def first_seq(self) -> int:
        """Sequence number of the batch's first record (0 when nothing was stored)."""
        return self.last_seq - self.stored + 1 if self.stored else 0


class SpoolStats(TypedDict):
    """Counters since this :class:`Spool` was opened, and the current size of the log."""

    appended: int
    """Records stored by ``append``."""
    refused: int
    """Records ``append`` refused, for any reason (see :class:`AppendResult`)."""
    refused_full: int
    """Of those, refused for size: ``on_full="reject"`` and full, or a batch over ``max_bytes``."""
    dropped_full: int
    """Records deleted unacknowledged to make room (``on_full="drop_oldest"``)."""
    expired: int
    """Records deleted because they were appended more than ``max_age_s`` ago."""
    corrupt: int
    """Records lost to damage (an estimate when the database's own bookkeeping was damaged)."""
    recoveries: int
    """Times a damaged database was set aside and replaced."""
    errors: int
    """Operations that failed on the disk or the database (full disk, I/O, foreign lock)."""
    bytes: int
    """Payload bytes in the log now: what ``max_bytes`` bounds."""
    records: int
    """Records in the log now."""
    last_seq: int
    """Sequence number of the newest record ever appended."""


@dataclass(slots=True)
class _Changes:
    """What a write transaction did to the in-memory bookkeeping, applied once it commits."""

    records: int = 0
    bytes: int = 0
    head: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def deleted(self, upto: int, count: int, size: int, reason: str | None) -> None:
        self.records -= count
        self.bytes -= size
        self.head = max(self.head, upto + 1)
        if reason is not None:
            self.counts[reason] = self.counts.get(reason, 0) + count


@dataclass(slots=True)
class _Salvage:
    copied: int = 0
    bad: int = 0
    last_seq: int = 0
    floor: int | None = None
    """Lowest seq the damaged log should still have held, when its metadata said so."""


class _Refused(Exception):
    def __init__(self, reason: RefuseReason) -> None:
        self.reason = reason


def _error_kind(exc: BaseException) -> _ErrorKind:
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "malformed" in str(exc):
        return "corrupt"
    if primary == _SQLITE_FULL or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
        return "disk_full"
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return "busy"
    return "io_error"


def _crc(seq: int, data: bytes) -> int:
    # Seeded with the seq, the checksum binds a record to its position: a flipped rowid fails too.
    return zlib.crc32(data, seq & 0xFFFFFFFF)


def _check_option(name: str, value: object, ok: bool) -> None:
    if isinstance(value, bool) or not ok:
        raise ConfigError(f"Spool {name}={value!r} is invalid")


class Spool:
    """A durable log of records in ``directory``, read by named cursors (one per exporter)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = 256 * 2**20,
        fsync: FsyncPolicy = "interval",
        fsync_interval_ms: int = 100,
        max_age_s: float = 86_400,
        on_full: OnFull = "drop_oldest",
    ) -> None:
        _check_option("max_bytes", max_bytes, isinstance(max_bytes, int) and max_bytes > 0)
        _check_option("fsync", fsync, fsync in _SQLITE_SYNC)
        _check_option(
            "fsync_interval_ms",
            fsync_interval_ms,
            isinstance(fsync_interval_ms, int) and fsync_interval_ms > 0,
        )
        _check_option("max_age_s", max_age_s, isinstance(max_age_s, int | float) and max_age_s > 0)
        _check_option("on_full", on_full, on_full in ("drop_oldest", "reject"))
        self.directory = Path(directory)
        """Where the spool lives: ``spool.db`` (+ ``-wal``, ``-shm``) and ``spool.lock``."""
        self.max_bytes = max_bytes
        """Cap on the payload held, in bytes (SQLite's own overhead comes on top)."""
        self.fsync: FsyncPolicy = fsync
        self.fsync_interval_ms = fsync_interval_ms
        self.max_age_s = float(max_age_s)
        """Records appended longer ago than this, in seconds, are deleted (``expired``)."""
        self.on_full: OnFull = on_full
        self._db_path = self.directory / DB_NAME
        self._wal_path = self.directory / (DB_NAME + "-wal")
        self._lock_path = self.directory / LOCK_NAME
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._state: Literal["open", "closed", "forked"] = "open"
        self._conn: sqlite3.Connection | None = None
        self._lock_file: IO[bytes] | None = None
        self._lock_ident: tuple[int, int] | None = None
        self._db_ident: tuple[int, int] | None = None
        self._recovering = False
        self._cursors: dict[str, int] = {}
        self._unsaved: set[str] = set()
        self._last_seq = 0
        self._head = 1
        self._records = 0
        self._bytes = 0
        self._counts = dict.fromkeys(
            (
                "appended",
                "refused",
                "refused_full",
                "dropped_full",
                "expired",
                "corrupt",
                "recoveries",
                "errors",
            ),
            0,
        )
        self._next_maintenance = 0.0
        self._last_warned: dict[str, float] = {}
        # The interval syncer has its own locks and never takes the spool's.
        self._sync_cond = threading.Condition(threading.Lock())
        self._fd_lock = threading.Lock()
        self._sync_thread: threading.Thread | None = None
        self._dirty = False
        self._stopping = False
        self._last_sync = 0.0
        self._wal_fd: int | None = None

        self._take_directory()
        try:
            self._open_db()
            self._maintain(time.monotonic())
        except BaseException:
            self._close_connection()
            self._release_directory()
            raise
        with _live_lock:
            _live.add(self)

    @classmethod
    def open_slot(
        cls, root: str | os.PathLike[str], *, max_slots: int = 64, **options: Any
    ) -> Spool:
        """Open the first free ``root/slot-<n>`` (n < ``max_slots``): one spool per process.

        A process that starts after another died takes the dead one's slot, with its backlog.
        Raises :class:`SpoolLocked` when every slot is held by a live process.
        """
        root_path = Path(root)
        for n in range(max_slots):
            try:
                return cls(root_path / f"slot-{n}", **options)
            except SpoolLocked:
                continue
        raise SpoolLocked(
            f"all {max_slots} spool slots under {str(root_path)!r} are held by live processes; "
            "raise max_slots or give each process its own spool directory"
        )

    def __repr__(self) -> str:
        return f"Spool({str(self.directory)!r}, fsync={self.fsync!r}, state={self._state!r})"

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- public API ----------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest record ever appended (0 for a new spool)."""
        return self._last_seq

    @property
    def usable(self) -> bool:
        """False after :meth:`close`, in a forked child, or once the directory was taken over."""
        return self._unusable() is None

    def append(self, records: Sequence[bytes]) -> AppendResult:
        """Store a batch, all or nothing, durable per the fsync policy when this returns.

        Never raises for the disk's sake: a refused batch says why (``reason``) and how many
        records the caller still owns (``refused``). Raises ``TypeError`` if a record is not bytes.
        """
        total = 0
        for record in records:
            if not isinstance(record, bytes):
                raise TypeError(f"spool records are bytes, not {type(record).__name__}")
            total += len(record)
        n = len(records)
        with self._lock:
            unusable = self._unusable()
            if unusable is not None:
                return self._refuse(n, unusable)
            if n == 0:
                return AppendResult(self._last_seq, 0)
            if total > self.max_bytes:
                self._counts["refused_full"] += n
                return self._refuse(n, "too_large")
            self._maybe_maintain()
            for attempt in range(2):
                try:
                    result = self._append(records, total)
                except _Refused as exc:
                    return self._refuse(n, exc.reason)
                except (sqlite3.Error, OSError) as exc:
                    kind = self._failed("append", exc)
                    if kind == "corrupt" and attempt == 0 and self._conn is not None:
                        continue  # recovered into a fresh database: try once more there
                    return self._refuse(n, kind)
                self._after_commit()
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    def add_cursor(self, name: str, *, start: CursorStart = "tail") -> int:
        """Register a cursor (idempotent) and return its position: the last acknowledged seq.

        A new cursor starts at the ``"tail"`` (only records appended from now on) or at the
        ``"head"`` (every record still in the spool). An existing cursor keeps its position.
        """
        if not isinstance(name, str) or not name or len(name) > _CURSOR_NAME_MAX:
            raise ValueError(f"cursor name must be a non-empty str of at most {_CURSOR_NAME_MAX}")
        if start not in ("tail", "head"):
            raise ValueError(f"start must be 'tail' or 'head', not {start!r}")
        with self._lock:
            if name in self._cursors or self._unusable() is not None:
                return self._cursors.get(name, 0)
            position = self._last_seq if start == "tail" else self._head - 1
            self._cursors[name] = position
            self._unsaved.add(name)
            self._write_cursors()
            return position

    def remove_cursor(self, name: str) -> None:
        """Forget a cursor (an exporter no longer configured) so it holds no records back."""
        with self._lock:
            if self._unusable() is not None or name not in self._cursors:
                return
            del self._cursors[name]
            self._unsaved.discard(name)
            conn = self._conn
            if conn is None:
                return  # the next open reads it back: it is removed again by the caller then
            try:
                with self._transaction(conn) as changes:
                    conn.execute("DELETE FROM cursors WHERE name = ?", (name,))
                    self._compact(conn, changes)
            except (sqlite3.Error, OSError) as exc:
                self._failed("remove_cursor", exc)

    def cursors(self) -> dict[str, int]:
        """Every cursor and its position (the last acknowledged seq)."""
        with self._lock:
            return dict(self._cursors)

    def read(
        self, cursor: str, limit: int, max_bytes: int | None = None, *, after: int | None = None
    ) -> list[tuple[int, bytes]]:
        """The next records after the cursor's acknowledged position (or after seq ``after``).

        At most ``limit`` records and, past the first one, at most ``max_bytes`` of payload.
        Reading does not move the cursor: what is not acknowledged is read again, byte-identical.
        A record that fails its checksum is deleted, counted ``corrupt`` and skipped.
        """
        if limit < 0 or (max_bytes is not None and max_bytes < 0):
            raise ValueError("limit and max_bytes must be >= 0")
        with self._lock:
            if self._unusable() is not None:
                return []
            position = self._position(cursor)
            if after is not None:
                position = max(position, after)
            if limit == 0 or position >= self._last_seq:
                return []
            self._maybe_maintain()
            for attempt in range(2):
                conn = self._conn
                if conn is None:
                    return []
                try:
                    return self._read(conn, position, limit, max_bytes)
                except (sqlite3.Error, OSError) as exc:
                    if self._failed("read", exc) != "corrupt" or attempt:
                        return []
            return []  # pragma: no cover

    def ack(self, cursor: str, up_to_seq: int) -> None:
        """Mark every record up to ``up_to_seq`` delivered for ``cursor``; never moves it back.

        Records every cursor has acknowledged are deleted. If the write fails (full disk), the
        position is kept in memory and written with the next successful write.
        """
        with self._lock:
            if self._unusable() is not None:
                return
            position = self._position(cursor)
            target = min(int(up_to_seq), self._last_seq)
            if target <= position:
                return
            self._cursors[cursor] = target
            self._unsaved.add(cursor)
            self._maybe_maintain()
            self._write_cursors()

    def pending(self, cursor: str) -> int:
        """How many records the cursor has not acknowledged yet."""
        with self._lock:
            if self._unusable() is not None:
                return 0
            position = self._position(cursor)
            estimate = max(0, self._last_seq - max(position, self._head - 1))
            conn = self._conn
            if conn is None:
                return estimate
            try:
                row = conn.execute("SELECT count(*) FROM records WHERE seq > ?", (position,))
                return int(row.fetchone()[0])
            except (sqlite3.Error, OSError) as exc:
                self._failed("pending", exc)
                return estimate

    def sync(self) -> bool:
        """Make every committed record power-loss durable now, whatever the policy.

        Returns False if the spool is not usable or the fsync failed.
        """
        with self._lock:
            if self._unusable() is not None or self._conn is None:
                return False
            try:  # under fsync="never" checkpoints copy pages into the database unsynced
                fd = os.open(self._db_path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                self._warn("fsync", "signalkit: spool %s: fsync failed: %s", self, exc)
                return False
        return self._fsync_wal()

    def stats(self) -> SpoolStats:
        """A snapshot of the counters and of the log's size."""
        with self._lock:
            c = self._counts
            return SpoolStats(
                appended=c["appended"],
                refused=c["refused"],
                refused_full=c["refused_full"],
                dropped_full=c["dropped_full"],
                expired=c["expired"],
                corrupt=c["corrupt"],
                recoveries=c["recoveries"],
                errors=c["errors"],
                bytes=self._bytes,
                records=self._records,
                last_seq=self._last_seq,
            )

    def close(self) -> None:
        """Write pending acknowledgements, checkpoint, release the directory. Idempotent."""
        with self._lock:
            if self._unusable() is not None:
                return
            if self._unsaved:
                self._write_cursors()
            self._state = "closed"
        self._stop_syncer()
        with self._lock:
            # Closing the last connection checkpoints the WAL into the database (fsynced
            # unless fsync="never") and removes the WAL file.
            self._close_connection()
            self._release_directory()
        with _live_lock:
            _live.discard(self)

    # -- the directory and its lock --------------------------------------------------------------

    def _take_directory(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            lock_file = open(self._lock_path, "a+b")  # noqa: SIM115 - held until close()
        except OSError as exc:
            raise SpoolUnavailable(
                f"spool directory {str(self.directory)!r} cannot be used: {exc.strerror or exc}; "
                "choose a writable directory"
            ) from None
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_pid(lock_file)
            lock_file.close()
            who = f" (pid {holder})" if holder else ""
            raise SpoolLocked(
                f"spool directory {str(self.directory)!r} is in use by another Spool{who}; "
                "each process needs its own directory (see Spool.open_slot)"
            ) from None
        with contextlib.suppress(OSError):
            lock_file.truncate(0)
            lock_file.write(f"{os.getpid()}\n".encode())
            lock_file.flush()
        st = os.fstat(lock_file.fileno())
        self._lock_file = lock_file
        self._lock_ident = (st.st_dev, st.st_ino)

    def _release_directory(self) -> None:
        lock_file, self._lock_file = self._lock_file, None
        if lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)
            with contextlib.suppress(OSError):
                lock_file.close()

    def _relock(self) -> bool:
        """The lock file was deleted or replaced: take the directory again, or give it up."""
        old = self._lock_file
        self._lock_file = None
        try:
            self._take_directory()
        except ConfigError as exc:
            self._lock_file = old
            self._warn("lock", "signalkit: spool %s: lock lost (%s); spool closed", self, exc)
            self._state = "closed"
            self._close_connection()
            self._release_directory()
            return False
        if old is not None:
            with contextlib.suppress(OSError):
                old.close()
        return True

    # -- opening, damage and recovery ----------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._db_path.exists() and not stat.S_ISREG(self._db_path.stat().st_mode):
            raise sqlite3.DatabaseError(f"{DB_NAME} is not a regular file")
        conn = sqlite3.connect(
            self._db_path,
            timeout=_BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=32,
        )
        try:
            # page_size and auto_vacuum take effect for a new file only. 16 KiB pages hold
            # 1 KiB records with ~7 % overhead (4 KiB pages: ~34 %) and append twice as fast.
            conn.execute("PRAGMA page_size = 16384")
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise SpoolUnavailable(
                    f"spool directory {str(self.directory)!r} does not support SQLite WAL mode "
                    "(a network filesystem?); use a local directory"
                )
            conn.execute(f"PRAGMA synchronous = {_SQLITE_SYNC[self.fsync]}")
            conn.execute("PRAGMA cell_size_check = ON")
            conn.execute("PRAGMA wal_autocheckpoint = 512")  # pages: ~8 MiB of WAL
            conn.execute("PRAGMA journal_size_limit = 8388608")
            conn.execute("PRAGMA cache_size = -4096")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"spool format {version} is newer than this signalkit")
            if version < _SCHEMA_VERSION:
                conn.executescript(_SCHEMA + f"PRAGMA user_version = {_SCHEMA_VERSION};")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
            raise
        return conn

    def _open_db(self) -> None:
        """Open the database; a damaged one is set aside, salvaged and replaced.

        Raises :class:`SpoolUnavailable` when no database can be had (full disk, read-only).
        """
        self._clear_orphans()
        try:
            conn = self._connect()
            try:
                self._load(conn)
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
                raise
        except (sqlite3.Error, OSError) as exc:
            kind = _error_kind(exc)
            if kind == "disk_full":
                raise SpoolUnavailable(
                    f"spool directory {str(self.directory)!r} is on a full disk; free space "
                    "or choose another directory"
                ) from None
            if kind == "busy":  # not damage: another program has the file open and locked
                raise SpoolUnavailable(
                    f"another program holds a lock on {str(self._db_path)!r}; close it"
                ) from None
            self._replace_damaged(exc)
            return
        self._conn = conn
        self._fsync_directory()

    def _load(self, conn: sqlite3.Connection) -> None:
        """Read the log's bookkeeping: O(log n), unless the counts must be recomputed."""
        # Two statements: SQLite answers a lone min() or max() from the b-tree's edge, but
        # scans the whole table for "SELECT min(seq), max(seq)".
        low = conn.execute("SELECT min(seq) FROM records").fetchone()[0]
        high = conn.execute("SELECT max(seq) FROM records").fetchone()[0]
        stored = dict(conn.execute("SELECT name, acked FROM cursors").fetchall())
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        count, size = meta.get("records"), meta.get("bytes")
        if (
            not isinstance(count, int)
            or not isinstance(size, int)
            or count < 0
            or size < 0
            or (count == 0) != (low is None)
        ):  # no counts (a salvaged database) or implausible ones: count again
            count, size = conn.execute(
                "SELECT count(*), coalesce(sum(length(data)), 0) FROM records"
            ).fetchone()
        last = max(
            self._last_seq,
            int(meta.get("last_seq", 0)),
            int(high or 0),
            max(stored.values(), default=0),
        )
        for name, acked in stored.items():
            mine = self._cursors.get(name)
            if mine is None or acked > mine:
                self._cursors[name] = min(int(acked), last)
            elif mine > acked:
                self._unsaved.add(name)
        self._unsaved.update(name for name in self._cursors if name not in stored)
        st = os.stat(self._db_path)
        self._db_ident = (st.st_dev, st.st_ino)
        self._last_seq = last
        self._records, self._bytes = int(count), int(size)
        self._head = int(low) if low is not None else last + 1

    def _clear_orphans(self) -> None:
        """A WAL without its database would be replayed into a new, empty one: set it aside."""
        if self._db_path.exists() or self._db_path.is_symlink():
            return
        stamp = _stamp()
        for path in _side_files(self._db_path):
            if path.exists():
                self._warn("orphan", "signalkit: spool %s: %s without database", self, path.name)
                with contextlib.suppress(OSError):
                    path.rename(path.with_name(f"{path.name}.orphan-{stamp}"))

    def _set_aside(self) -> Path:
        """Rename the database and its WAL to ``spool.db.corrupt-<unix ms>``; drop its shm."""
        aside = self._db_path.with_name(f"{DB_NAME}.corrupt-{_stamp()}")
        while aside.exists():
            aside = aside.with_name(aside.name + "x")
        if self._db_path.exists() or self._db_path.is_symlink():
            self._db_path.rename(aside)
        if self._wal_path.exists():
            self._wal_path.rename(aside.with_name(aside.name + "-wal"))
        for side in _side_files(self._db_path):
            with contextlib.suppress(FileNotFoundError):
                side.unlink()
        kept = sorted(
            p
            for p in self.directory.glob(f"{DB_NAME}.corrupt-*")
            if not p.name.endswith(("-wal", "-shm", "-journal"))
        )
        for old in kept[:-_KEEP_ASIDE]:
            for path in (old, *_side_files(old)):
                with contextlib.suppress(OSError):
                    if path.is_dir() and not path.is_symlink():
                        path.rmdir()
                    else:
                        path.unlink()
        return aside

    def _replace_damaged(self, error: BaseException) -> None:
        """Set the database aside, start a fresh one and copy into it what is still readable."""
        self._warn("damaged", "signalkit: spool %s is damaged (%s); salvaging", self, error)
        self._close_wal_fd()
        try:
            aside = self._set_aside()
        except OSError as exc:
            raise SpoolUnavailable(
                f"the damaged spool database in {str(self.directory)!r} cannot be moved aside: "
                f"{exc.strerror or exc}"
            ) from None
        try:
            conn = self._connect()
        except (sqlite3.Error, OSError) as exc:
            with contextlib.suppress(OSError):  # put the data back where the next start finds it
                aside.rename(self._db_path)
                aside.with_name(aside.name + "-wal").rename(self._wal_path)
            raise SpoolUnavailable(
                f"spool directory {str(self.directory)!r} cannot hold a new database: {exc}"
            ) from None
        try:
            salvage = self._salvage(aside, conn)
            expected = self._records
            self._last_seq = max(self._last_seq, salvage.last_seq)
            self._load(conn)
            with self._transaction(conn):
                conn.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('last_seq', ?)",
                    (self._last_seq,),
                )
        except (sqlite3.Error, OSError) as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
            raise SpoolUnavailable(
                f"spool directory {str(self.directory)!r} cannot hold a new database: {exc}"
            ) from None
        if expected:
            lost = expected - salvage.copied
        elif salvage.floor is not None:
            lost = self._last_seq - salvage.floor + 1 - salvage.copied
        else:
            lost = salvage.bad
        lost = max(lost, 0 if salvage.copied else 1)
        self._counts["corrupt"] += lost
        self._counts["recoveries"] += 1
        self._conn = conn
        self._write_cursors()
        self._fsync_directory()
        logger.warning(
            "signalkit: spool %s: salvaged %d records, lost %d", self, salvage.copied, lost
        )

    def _salvage(self, aside: Path, dest: sqlite3.Connection) -> _Salvage:
        """Copy every readable, intact record of a damaged database into ``dest``."""
        out = _Salvage()
        if not aside.is_file():
            return out
        try:
            src = sqlite3.connect(aside, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error:
            return out
        try:
            src.execute("PRAGMA cell_size_check = ON")
            # Lets SQLite read a file shorter than its header says (a truncated database)
            # instead of refusing all of it; this connection never writes.
            src.execute("PRAGMA writable_schema = ON")
            with contextlib.suppress(sqlite3.Error, ValueError, TypeError):
                meta = dict(src.execute("SELECT key, value FROM meta").fetchall())
                out.last_seq = int(meta.get("last_seq", 0))
                floor = int(meta.get("dropped_upto", 0))
                for name, acked in src.execute("SELECT name, acked FROM cursors").fetchall():
                    if isinstance(name, str) and isinstance(acked, int):
                        self._cursors[name] = max(acked, self._cursors.get(name, acked))
                if self._cursors:
                    floor = max(floor, min(self._cursors.values()))
                out.floor = floor + 1 if out.last_seq else None
            position = 0
            skipped_at = -1
            while True:
                batch: list[tuple[int, float, int, bytes]] = []
                failed = False
                got = 0
                try:
                    rows = src.execute(
                        "SELECT seq, ts, crc, data FROM records WHERE seq > ? ORDER BY seq "
                        "LIMIT 1024",
                        (position,),
                    )
                    for seq, ts, crc, data in rows:
                        got += 1
                        position = seq
                        if isinstance(data, bytes) and _crc(seq, data) == crc:
                            batch.append((seq, float(ts), crc, data))
                        else:
                            out.bad += 1
                except sqlite3.Error:
                    failed = True
                if batch:
                    with self._transaction(dest):
                        dest.executemany(
                            "INSERT OR IGNORE INTO records(seq, ts, crc, data) VALUES (?, ?, ?, ?)",
                            batch,
                        )
                    out.copied += len(batch)
                    out.last_seq = max(out.last_seq, batch[-1][0])
                if failed:
                    # Skip the unreadable stretch; never retry the same spot twice.
                    start = max(position, skipped_at + 1)
                    skipped_at = start
                    following = _next_readable(src, start, out.last_seq or None)
                    if following is None:
                        break
                    position = following - 1
                elif not got:
                    break
        except (sqlite3.Error, OSError) as exc:
            self._warn("salvage", "signalkit: spool %s: salvage stopped early: %s", self, exc)
        finally:
            with contextlib.suppress(sqlite3.Error):
                src.close()
        return out

    def _reconnect(self) -> None:
        """Close and reopen the connection (its WAL was deleted, or an open failed earlier)."""
        self._close_connection()
        self._open_db()

    def _rescue_deleted_db(self) -> None:
        """The database file was deleted (or replaced) while open: copy it back into place."""
        conn = self._conn
        if conn is None:
            self._open_db()
            return
        self._warn("vanished", "signalkit: spool %s: database file vanished; restoring", self)
        rescue = self._db_path.with_name(DB_NAME + ".rescue")
        for path in (rescue, *_side_files(rescue)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        # The open connection still reads the deleted file: copy it out before closing it.
        conn.execute("VACUUM INTO ?", (str(rescue),))
        self._close_connection()
        if self._db_path.exists() or self._db_path.is_symlink():
            self._set_aside()  # someone else's file: keep it, out of the way
        for side in _side_files(self._db_path):
            with contextlib.suppress(FileNotFoundError):
                side.unlink()
        os.replace(rescue, self._db_path)
        self._open_db()

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        self._close_wal_fd()
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    # -- maintenance -----------------------------------------------------------------------------

    def _maybe_maintain(self) -> None:
        now = time.monotonic()
        if now >= self._next_maintenance:
            self._maintain(now)

    def _maintain(self, now: float) -> None:
        """Every call, at most every 0.25 s: files in place, expiry, unsaved acks, free pages."""
        self._next_maintenance = now + _MAINTENANCE_INTERVAL_S
        try:
            if not self._check_files():
                return
            conn = self._conn
            if conn is None:
                return
            self._expire(conn)
            if self._unsaved:
                self._write_cursors()
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            if free > _VACUUM_PAGES and free * 4 > conn.execute("PRAGMA page_count").fetchone()[0]:
                conn.execute(f"PRAGMA incremental_vacuum({_VACUUM_PAGES})").fetchall()
        except (sqlite3.Error, OSError) as exc:
            self._failed("maintenance", exc)
        except ConfigError as exc:  # no database can be had now: retried at the next pass
            self._warn("unavailable", "signalkit: spool %s: %s", self, exc)

    def _check_files(self) -> bool:
        """Notice a lock file or database deleted underneath us; False if the spool is lost."""
        if _ident(self._lock_path) != self._lock_ident and not self._relock():
            return False
        if self._conn is None:
            self._reconnect()
        elif _ident(self._db_path) != self._db_ident:
            self._rescue_deleted_db()
        elif not self._wal_path.exists():
            self._reconnect()  # closing checkpoints the deleted WAL's content into the db
        return True

    def _expire(self, conn: sqlite3.Connection) -> None:
        """Delete the records appended more than ``max_age_s`` ago (a prefix of the log)."""
        if not self._records:
            return
        cutoff = time.time() - self.max_age_s
        row = conn.execute(
            "SELECT seq FROM records WHERE ts >= ? ORDER BY seq LIMIT 1", (cutoff,)
        ).fetchone()
        upto = (row[0] - 1) if row else self._last_seq
        if upto < self._head:
            return
        with self._transaction(conn) as changes:
            self._delete_upto(conn, upto, changes, "expired")

    def _delete_upto(
        self, conn: sqlite3.Connection, upto: int, changes: _Changes, reason: str | None
    ) -> int:
        count, size = conn.execute(
            "SELECT count(*), coalesce(sum(length(data)), 0) FROM records WHERE seq <= ?", (upto,)
        ).fetchone()
        if count:
            conn.execute("DELETE FROM records WHERE seq <= ?", (upto,))
        if reason is not None:
            # Deleted unacknowledged: remembered so that a salvage knows they are not lost.
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('dropped_upto', ?)", (upto,)
            )
        changes.deleted(upto, int(count), int(size), reason)
        return int(count)

    def _compact(self, conn: sqlite3.Connection, changes: _Changes) -> None:
        """Delete what every cursor has acknowledged (nothing while there is no cursor)."""
        if self._cursors:
            low = min(self._cursors.values())
            if low >= max(self._head, changes.head):
                self._delete_upto(conn, low, changes, None)

    # -- the work --------------------------------------------------------------------------------

    def _append(self, records: Sequence[bytes], total: int) -> AppendResult:
        conn = self._conn
        if conn is None:
            raise _Refused("io_error")
        n = len(records)
        first = self._last_seq + 1
        last = first + n - 1
        with self._transaction(conn) as changes:
            if self._bytes + total > self.max_bytes:
                if self.on_full == "reject":
                    self._counts["refused_full"] += n
                    raise _Refused("spool_full")
                self._drop_oldest(conn, self._bytes + total - self.max_bytes, changes)
            now = time.time()
            conn.executemany(
                "INSERT INTO records(seq, ts, crc, data) VALUES (?, ?, ?, ?)",
                [(first + i, now, _crc(first + i, r), r) for i, r in enumerate(records)],
            )
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('last_seq', ?)", (last,))
            if not self._records + changes.records:
                changes.head = first
            changes.records += n
            changes.bytes += total
            changes.counts["appended"] = n
        self._last_seq = last
        return AppendResult(last, n, 0, changes.counts.get("dropped_full", 0), None)

    def _drop_oldest(self, conn: sqlite3.Connection, need: int, changes: _Changes) -> None:
        freed = 0
        upto = self._head - 1
        while freed < need:
            rows = conn.execute(
                "SELECT seq, length(data) FROM records WHERE seq > ? ORDER BY seq LIMIT 1024",
                (upto,),
            ).fetchall()
            if not rows:
                break
            for seq, size in rows:
                freed += size
                upto = seq
                if freed >= need:
                    break
        self._delete_upto(conn, upto, changes, "dropped_full")

    def _read(
        self, conn: sqlite3.Connection, position: int, limit: int, max_bytes: int | None
    ) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        bad: list[int] = []
        size = 0
        rows = conn.execute(
            "SELECT seq, crc, data FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
            (position, limit),
        )
        try:
            for seq, crc, data in rows:
                if not isinstance(data, bytes) or _crc(seq, data) != crc:
                    bad.append(seq)
                    continue
                if max_bytes is not None and out and size + len(data) > max_bytes:
                    break
                out.append((seq, data))
                size += len(data)
        finally:
            rows.close()
        if bad:
            self._drop_damaged(conn, bad)
        return out

    def _drop_damaged(self, conn: sqlite3.Connection, seqs: list[int]) -> None:
        self._warn("checksum", "signalkit: spool %s: %d damaged records deleted", self, len(seqs))
        try:
            with self._transaction(conn) as changes:
                for seq in seqs:
                    row = conn.execute(
                        "SELECT length(data) FROM records WHERE seq = ?", (seq,)
                    ).fetchone()
                    if row is not None:
                        conn.execute("DELETE FROM records WHERE seq = ?", (seq,))
                        changes.records -= 1
                        changes.bytes -= int(row[0] or 0)
                        changes.counts["corrupt"] = changes.counts.get("corrupt", 0) + 1
        except (sqlite3.Error, OSError) as exc:
            self._failed("delete damaged records", exc)

    def _write_cursors(self) -> None:
        """Persist the cursors changed in memory, then compact; on failure keep them unsaved."""
        conn = self._conn
        if conn is None or not self._unsaved:
            return
        names = list(self._unsaved)
        try:
            with self._ack_durability(conn), self._transaction(conn) as changes:
                conn.executemany(
                    "INSERT OR REPLACE INTO cursors(name, acked) VALUES (?, ?)",
                    [(name, self._cursors[name]) for name in names if name in self._cursors],
                )
                self._compact(conn, changes)
        except (sqlite3.Error, OSError) as exc:
            self._failed("ack", exc)
            return
        self._unsaved.difference_update(names)

    @contextlib.contextmanager
    def _ack_durability(self, conn: sqlite3.Connection) -> Iterator[None]:
        # An ack needs no fsync of its own: one lost to a power cut only re-delivers.
        if self.fsync != "always":
            yield
            return
        conn.execute("PRAGMA synchronous = NORMAL")
        try:
            yield
        finally:
            conn.execute("PRAGMA synchronous = FULL")

    @contextlib.contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[_Changes]:
        """One write transaction; its bookkeeping changes apply only once it has committed."""
        changes = _Changes()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield changes
            if changes.records or changes.bytes:  # so that opening needs no full scan
                conn.executemany(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                    [
                        ("records", self._records + changes.records),
                        ("bytes", self._bytes + changes.bytes),
                    ],
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        self._records += changes.records
        self._bytes += changes.bytes
        self._head = max(self._head, changes.head)
        for key, value in changes.counts.items():
            self._counts[key] += value

    def _position(self, cursor: str) -> int:
        try:
            return self._cursors[cursor]
        except KeyError:
            raise KeyError(f"no spool cursor {cursor!r}; call add_cursor() first") from None

    # -- failures --------------------------------------------------------------------------------

    def _unusable(self) -> RefuseReason | None:
        if self._state == "open" and os.getpid() != self._pid:
            self._abandon_after_fork()
        if self._state == "open":
            return None
        return "forked" if self._state == "forked" else "closed"

    def _refuse(self, n: int, reason: RefuseReason) -> AppendResult:
        self._counts["refused"] += n
        return AppendResult(self._last_seq, 0, n, 0, reason)

    def _failed(self, operation: str, exc: BaseException) -> _ErrorKind:
        """Count and log a failed operation, and recover from damage. Never raises."""
        kind = _error_kind(exc)
        self._counts["errors"] += 1
        self._warn(kind, "signalkit: spool %s: %s failed (%s): %s", self, operation, kind, exc)
        if kind == "corrupt" and not self._recovering:
            self._recovering = True
            try:
                self._close_connection()
                self._replace_damaged(exc)
            except (ConfigError, sqlite3.Error, OSError) as unusable:
                self._warn("unavailable", "signalkit: spool %s: %s", self, unusable)
            finally:
                self._recovering = False
        return kind

    def _warn(self, key: str, message: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last_warned.get(key)
        if last is None or now - last >= _WARN_INTERVAL_S:
            self._last_warned[key] = now
            logger.warning(message, *args)

    # -- durability: the interval syncer -------------------------------------------------------

    def _after_commit(self) -> None:
        if self.fsync != "interval":
            return
        with self._sync_cond:
            self._dirty = True
            if self._sync_thread is None and not self._stopping:
                self._sync_thread = threading.Thread(
                    target=self._sync_loop, name="signalkit-spool-sync", daemon=True
                )
                self._sync_thread.start()
            self._sync_cond.notify()

    def _sync_loop(self) -> None:
        interval = self.fsync_interval_ms / 1000
        cond = self._sync_cond
        while True:
            with cond:
                while not self._dirty and not self._stopping:
                    cond.wait()
                if not self._dirty:
                    return
                deadline = self._last_sync + interval
                while not self._stopping and (left := deadline - time.monotonic()) > 0:
                    cond.wait(left)
                self._dirty = False
            self._fsync_wal()

    def _fsync_wal(self) -> bool:
        with self._fd_lock:
            self._last_sync = time.monotonic()
            try:
                if self._wal_fd is None:
                    self._wal_fd = os.open(self._wal_path, os.O_RDONLY | os.O_CLOEXEC)
                os.fsync(self._wal_fd)
            except FileNotFoundError:
                return True  # no WAL: everything is checkpointed into the database
            except OSError as exc:
                self._warn("fsync", "signalkit: spool %s: fsync failed: %s", self, exc)
                return False
            return True

    def _close_wal_fd(self) -> None:
        with self._fd_lock:
            fd, self._wal_fd = self._wal_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _stop_syncer(self) -> None:
        with self._sync_cond:
            self._stopping = True
            self._sync_cond.notify_all()
            thread = self._sync_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _fsync_directory(self) -> None:
        if self.fsync == "never":
            return
        with contextlib.suppress(OSError):
            fd = os.open(self.directory, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    # -- fork ----------------------------------------------------------------------------------

    def _abandon_after_fork(self) -> None:
        """In a forked child: let go of everything inherited without touching the parent's."""
        self._state = "forked"
        self._lock = threading.RLock()  # the parent's may have been held at fork time
        self._sync_cond = threading.Condition(threading.Lock())
        self._fd_lock = threading.Lock()
        self._sync_thread = None
        if self._conn is not None:
            # Never used nor closed here: closing could checkpoint or unlink the parent's WAL.
            _inherited_connections.append(self._conn)
            self._conn = None
        lock_file, self._lock_file = self._lock_file, None
        if lock_file is not None:
            with contextlib.suppress(OSError):
                lock_file.close()  # no LOCK_UN: the lock is the parent's, shared with us
        fd, self._wal_fd = self._wal_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def _stamp() -> str:
    return str(time.time_ns() // 1_000_000)


def _side_files(db: Path) -> list[Path]:
    return [db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def _ident(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _read_pid(lock_file: IO[bytes]) -> int | None:
    try:
        lock_file.seek(0)
        return int(lock_file.read(32).strip() or b"0") or None
    except (OSError, ValueError):
        return None


def _probe(src: sqlite3.Connection, seq: int) -> int | Literal[False] | None:
    """The first seq >= ``seq`` (None past the end), or False when that part is unreadable."""
    try:
        row = src.execute(
            "SELECT seq FROM records WHERE seq >= ? ORDER BY seq LIMIT 1", (seq,)
        ).fetchone()
    except sqlite3.Error:
        return False
    return None if row is None else int(row[0])


def _next_readable(src: sqlite3.Connection, position: int, last: int | None) -> int | None:
    """Skip a damaged stretch of the records b-tree: the first readable seq after ``position``."""
    bad = position
    step = 1
    while _probe(src, bad + step) is False:
        bad += step
        step *= 2
        if (last is not None and bad > last) or step >= 2**62:
            return None
    good = bad + step
    while good - bad > 1:  # the first probe point past the damage
        middle = (bad + good) // 2
        if _probe(src, middle) is False:
            bad = middle
        else:
            good = middle
    found = _probe(src, good)
    return found if isinstance(found, int) and found is not False else None


_live: weakref.WeakSet[Spool] = weakref.WeakSet()
_live_lock = threading.Lock()
_inherited_connections: list[sqlite3.Connection] = []
"""Connections a forked child inherited: kept referenced so the child never closes them."""
_held_for_fork: list[Spool] = []
_FORK_LOCK_TIMEOUT_S = 10.0


def _before_fork() -> None:
    # SQLite has process-wide mutexes (its allocator, its file table). A thread inside SQLite
    # at fork() would leave one locked forever in the child, and the child's own spool would
    # hang on it. Every spool call holds the spool's lock, so holding them all keeps every
    # thread out of SQLite (through a spool) while the process forks.
    _live_lock.acquire()
    for spool in sorted(_live, key=id):
        if spool._lock.acquire(timeout=_FORK_LOCK_TIMEOUT_S):
            _held_for_fork.append(spool)


def _after_fork_in_parent() -> None:
    while _held_for_fork:
        _held_for_fork.pop()._lock.release()
    _live_lock.release()


def _after_fork_in_child() -> None:
    global _live_lock
    _live_lock = threading.Lock()
    _held_for_fork.clear()
    for spool in list(_live):
        spool._abandon_after_fork()
    _live.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
