"""Loading JSONL files of events into DuckDB: one deduplicated, flat ``events`` table.

DuckDB reads the files itself (no line goes through Python), so millions of events load in
seconds. Every line is accounted for: a line that is not a signalkit event is *malformed* and
listed with its file, line number and the reason, never raised; a repeated event id is kept
once (the first copy, in file order) and counted as a duplicate.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import shutil
import tempfile
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._columns import COLUMNS

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "EVENT_KINDS",
    "INSTALL_HINT",
    "LoadedEvents",
    "MalformedLine",
    "MissingDependency",
    "default_source",
    "load_events",
    "require_duckdb",
    "resolve_files",
]

INSTALL_HINT = "pip install 'signalkit[report]'  (or: uv add 'signalkit[report]')"
"""How to install what ``signalkit report``/``dataset``/``check`` need (DuckDB)."""

EVENT_KINDS = ("exposure", "action", "correction", "toggle", "outcome", "feedback")

_ROTATED = re.compile(r"\.jsonl(?:\.(\d+))?$")

MAX_LINE_BYTES = 16 * 1024 * 1024
"""A line longer than this is malformed (``line longer than 16 MiB``), never read whole."""
MEMORY_LIMIT = os.environ.get("SIGNALKIT_DUCKDB_MEMORY", "1GB")
"""DuckDB's memory limit when :func:`load_events` opens its own database: beyond it, DuckDB
spills to a temporary directory, so millions of events load in bounded memory."""
_OVERLONG = b'{"__signalkit_overlong__":true}\n'


class MissingDependency(ImportError):
    """An optional dependency of the analysis commands is not installed; the message says how."""


def require_duckdb() -> Any:
    """Import and return the ``duckdb`` module, or raise :class:`MissingDependency` with a hint."""
    try:
        import duckdb
    except ImportError as exc:
        raise MissingDependency(
            f"signalkit's analysis commands run on DuckDB, which is not installed: {INSTALL_HINT}"
        ) from exc
    return duckdb


@dataclass(frozen=True, slots=True)
class MalformedLine:
    """A line that is not a signalkit event: where it is and why it was skipped."""

    file: str
    line: int
    """1-based line number in ``file``."""
    reason: str
    """``invalid JSON``, ``invalid UTF-8``, ``not a JSON object``, ``missing id``, ..."""


@dataclass
class LoadedEvents:
    """A DuckDB connection holding the table ``events``: one row per distinct event id.

    The table has the columns of :data:`signalkit.analytics.COLUMNS` (timestamps as ``ts_ms``,
    Int64 milliseconds since the epoch, UTC) plus ``file_idx`` (index into :attr:`files`) and
    ``line`` (1-based), where the kept copy of each event was read. Query it with
    ``loaded.connection.sql("SELECT ... FROM events")``.
    """

    connection: duckdb.DuckDBPyConnection
    files: list[str]
    """The files read, in the order read (oldest rotated backup first)."""
    lines: int = 0
    """Non-blank lines read, malformed ones included."""
    events: int = 0
    """Distinct events in the table."""
    duplicates: int = 0
    """Lines that repeated an event id already read (kept once)."""
    malformed_count: int = 0
    malformed: list[MalformedLine] = field(default_factory=list)
    """The first malformed lines (up to ``max_listed``), in file and line order."""
    table: str = "events"
    workdir: str | None = None
    """The temporary directory of the database :func:`load_events` opened (removed by
    :meth:`close`), or None for a connection you passed."""

    def close(self) -> None:
        """Close the DuckDB connection (and remove the temporary database, if any)."""
        self.connection.close()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __post_init__(self) -> None:
        if self.workdir is not None:  # not closed: removed when garbage-collected, or at exit
            weakref.finalize(self, shutil.rmtree, self.workdir, True)

    def __enter__(self) -> LoadedEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_source() -> Path:
    """Where events are when no source is given: ``$SIGNALKIT_DIR`` or ``./.signalkit``."""
    return Path(os.environ.get("SIGNALKIT_DIR") or ".signalkit")


def resolve_files(source: str | os.PathLike[str]) -> list[Path]:
    """The JSONL files a source names: a file, a glob, or a directory.

    A directory means its ``*.jsonl`` files and their rotated backups (``events.jsonl.1``...),
    each family oldest first. Raises ``FileNotFoundError`` when nothing matches.
    """
    text = os.fspath(source)
    path = Path(text)
    if path.is_file():
        return [path]
    if path.is_dir():
        found = [p for p in path.iterdir() if p.is_file() and _ROTATED.search(p.name)]
    elif any(ch in text for ch in "*?["):
        parent = Path(text).parent
        found = sorted(p for p in parent.glob(Path(text).name) if p.is_file())
        if found:
            return found
        found = []
    else:
        found = []
    if not found:
        raise FileNotFoundError(f"no JSONL events at {text} (a file, a directory or a glob)")

    def order(p: Path) -> tuple[str, int]:
        m = _ROTATED.search(p.name)
        assert m is not None
        base = p.name[: m.start()]
        return (base, -int(m.group(1) or 0))

    return sorted(found, key=order)


def _read_json_columns() -> str:
    """The ``columns`` argument of ``read_json``: the event's fields, nested as in the JSON."""
    tree: dict[str, Any] = {}
    for col in COLUMNS:
        if col.name in ("scale_min", "scale_max"):
            tree["scale"] = "DOUBLE[]"
            continue
        node = tree
        for part in col.path[:-1]:
            node = node.setdefault(part, {})
        leaf = col.path[-1]
        if col.name in ("attributes", "items"):
            node[leaf] = "JSON"
        elif col.name == "ts_ms":
            node[leaf] = "TIMESTAMPTZ"
        else:
            node[leaf] = col.duckdb

    def sql_type(value: Any) -> str:
        if isinstance(value, dict):
            inner = ", ".join(f'"{k}" {sql_type(v)}' for k, v in value.items())
            return f"STRUCT({inner})"
        return str(value)

    return "{" + ", ".join(f"{_sql_str(k)}: {_sql_str(sql_type(v))}" for k, v in tree.items()) + "}"


def _select_columns() -> str:
    out = []
    for col in COLUMNS:
        if col.name == "ts_ms":
            expr = "epoch_ms(ts)"
        elif col.name == "scale_min":
            expr = "scale[1]"
        elif col.name == "scale_max":
            expr = "scale[2]"
        elif col.name == "attributes":
            expr = "coalesce(CAST(attributes AS VARCHAR), '{}')"
        elif col.name == "items":
            expr = "CAST(items AS VARCHAR)"
        else:
            expr = ".".join(f'"{p}"' for p in col.path)
        out.append(f'{expr} AS "{col.name}"')
    return ",\n       ".join(out)


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _problem() -> str:
    """Why a row of ``_sk_events`` is not an event (NULL when it is one)."""
    kinds = ", ".join(_sql_str(k) for k in EVENT_KINDS)
    return f"""CASE
        WHEN id IS NULL AND kind IS NULL AND exposure_id IS NULL AND ts_ms IS NULL
            THEN 'unparsed'
        WHEN id IS NULL OR id = '' THEN 'missing id'
        WHEN kind IS NULL THEN 'missing kind'
        WHEN kind NOT IN ({kinds}) THEN 'unknown kind ' || left(kind, 40)
        WHEN exposure_id IS NULL OR exposure_id = '' THEN 'missing exposure_id'
        WHEN ts_ms IS NULL THEN 'missing or invalid ts'
    END"""


def _lines_reader(path: str) -> str:
    # One VARCHAR column per line: a delimiter no JSON text contains unescaped, no quoting.
    # Lines DuckDB rejects (invalid UTF-8) go to _sk_rejects with their line numbers.
    return (
        f"read_csv({_sql_str(path)}, columns = {{'l': 'VARCHAR'}}, delim = '\\x01', "
        "quote = '', escape = '', header = false, auto_detect = false, "
        f"strict_mode = false, max_line_size = {MAX_LINE_BYTES}, "
        f"buffer_size = {2 * MAX_LINE_BYTES}, "
        "new_line = '\\r\\n', "
        "store_rejects = true, rejects_table = '_sk_rejects', "
        "rejects_scan = '_sk_reject_scans')"
    )


def _shift(ks: list[int], skipped: list[int]) -> list[int]:
    """Line numbers of the ``ks``-th lines counting only lines not in ``skipped`` (sorted)."""
    out = []
    j = 0
    for k in ks:  # ks ascending: the k-th kept line is k + #{skipped s_j : s_j - j < k}
        while j < len(skipped) and skipped[j] - (j + 1) < k:
            j += 1
        out.append(k + j)
    return out


def _scan_lines(con: duckdb.DuckDBPyConnection, path: str) -> tuple[int, list[int], list[int]]:
    """One pass over the lines: (lines in the file, blank line numbers, invalid UTF-8 ones)."""
    row = con.execute(
        "SELECT count(*), coalesce(list(k ORDER BY k) FILTER (WHERE l IS NULL OR trim(l) = ''), "
        f"[]) FROM (SELECT ordinality AS k, l FROM {_lines_reader(path)} WITH ORDINALITY)"
    ).fetchall()[0]
    rejects = [
        int(r[0]) for r in con.execute("SELECT line FROM _sk_rejects ORDER BY line").fetchall()
    ]
    con.execute("DROP TABLE IF EXISTS _sk_rejects").fetchall()
    con.execute("DROP TABLE IF EXISTS _sk_reject_scans").fetchall()
    blanks = _shift([int(k) for k in row[1]], rejects)
    return int(row[0]) + len(rejects), blanks, rejects


def _why(raw: bytes) -> str:
    """Why one line (without its newline) is not an event, as DuckDB's reader saw it."""
    text = raw.rstrip(b"\r")
    if text == _OVERLONG.strip():
        return f"line longer than {MAX_LINE_BYTES >> 20} MiB"
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid UTF-8"
    try:
        obj = json.loads(decoded, parse_constant=_reject_constant)
    except ValueError:
        return "invalid JSON"
    if not isinstance(obj, dict):
        return "not a JSON object"
    if obj.get("id") in (None, ""):
        return "missing id"
    if obj.get("kind") is None:
        return "missing kind"
    return "invalid field type"


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _reasons(path: Path, index: list[tuple[int, int]], lines: list[int]) -> dict[int, str]:
    """Why each of these lines (rows ``read_json`` could not read) is malformed.

    Only these few lines are read again, found from ``index`` (the offsets :func:`_count_lines`
    noted): never the whole file a second time.
    """
    starts = [before for _, before in index]
    out: dict[int, str] = {}
    with path.open("rb") as f:
        for n in sorted(lines):
            # the last checkpoint with fewer than n - 1 newlines before it lies before line n
            j = max(0, bisect.bisect_left(starts, n - 1) - 1)
            offset, before = index[j]
            f.seek(offset)
            skip = n - 1 - before
            while skip:
                block = f.read(1 << 20)
                if not block:
                    break
                found = block.count(b"\n")
                if found < skip:
                    skip -= found
                    continue
                at = -1
                for _ in range(skip):
                    at = block.index(b"\n", at + 1)
                f.seek(f.tell() - len(block) + at + 1)
                skip = 0
            if skip:
                out[n] = "unreadable"
                continue
            line = f.readline(MAX_LINE_BYTES + 2)
            out[n] = _why(line[:-1] if line.endswith(b"\n") else line)
    return out


def _renumber(con: duckdb.DuckDBPyConnection, idx: int, blanks: list[int]) -> None:
    """Turn row numbers of file ``idx`` into line numbers, given its blank lines."""
    if not blanks:
        return
    con.execute("CREATE OR REPLACE TEMP TABLE _sk_blank (v BIGINT, j BIGINT)").fetchall()
    con.execute(
        "INSERT INTO _sk_blank SELECT b - j AS v, max(j) FROM (SELECT unnest(?::BIGINT[]) "
        "AS b, generate_subscripts(?::BIGINT[], 1) AS j) GROUP BY b - j",
        [blanks, blanks],
    ).fetchall()
    # the r-th non-blank line is line r + #{blank b_j : b_j - j < r}
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _sk_fix AS SELECT x.line AS r, "
        "x.line + coalesce(bl.j, 0) AS n FROM (SELECT line FROM _sk_events WHERE file_idx = ?) "
        "AS x ASOF LEFT JOIN _sk_blank AS bl ON x.line > bl.v",
        [idx],
    ).fetchall()
    con.execute(
        "UPDATE _sk_events SET line = _sk_fix.n FROM _sk_fix "
        "WHERE _sk_events.file_idx = ? AND _sk_events.line = _sk_fix.r",
        [idx],
    ).fetchall()
    con.execute("DROP TABLE _sk_fix").fetchall()
    con.execute("DROP TABLE _sk_blank").fetchall()


def _read_file(con: duckdb.DuckDBPyConnection, create: str, idx: int, path: Path) -> None:
    """Read one JSONL file into ``_sk_events``: a row per non-blank line, numbered in order."""
    reader = (
        f"read_json({_sql_str(str(path))}, format = 'newline_delimited', records = true, "
        f"ignore_errors = true, maximum_object_size = {MAX_LINE_BYTES}, "
        f"columns = {_read_json_columns()})"
    )
    # In insertion order (DuckDB keeps it), so the file's rows get consecutive rowids: its
    # n-th non-blank line is row base + n - 1. (WITH ORDINALITY would say so too, at twice the
    # cost of the whole read.)
    con.execute(
        f"""{create}
        SELECT {idx} AS file_idx, CAST(NULL AS BIGINT) AS line, {_select_columns()}
        FROM {reader}"""
    ).fetchall()
    con.execute(
        "UPDATE _sk_events SET line = rowid + 1 - "
        "(SELECT min(rowid) FROM _sk_events WHERE file_idx = ?) WHERE file_idx = ?",
        [idx, idx],
    ).fetchall()


def _without_overlong_lines(path: Path, workdir: str) -> Path:
    """A copy of ``path`` in ``workdir`` where each line longer than MAX_LINE_BYTES is a stub
    (same line numbers), read in blocks: an overlong line is never held whole in memory."""
    fd, name = tempfile.mkstemp(suffix=".jsonl", dir=workdir)
    with path.open("rb") as src, os.fdopen(fd, "wb") as dst:
        while True:
            line = src.readline(MAX_LINE_BYTES + 1)
            if not line:
                break
            if len(line) > MAX_LINE_BYTES:
                while line and not line.endswith(b"\n"):  # skip the rest of it
                    line = src.readline(MAX_LINE_BYTES)
                dst.write(_OVERLONG)
            else:
                dst.write(line)
    return Path(name)


def _count_lines(path: Path) -> tuple[int, list[tuple[int, int]]]:
    """Lines in a file (a last line without a newline counts), read in 16 MiB blocks, and an
    index: each block's offset and the newlines before it (to find a line again quickly)."""
    count, last = 0, b"\n"
    index: list[tuple[int, int]] = []
    offset = 0
    with path.open("rb") as f:
        while block := f.read(16 * 1024 * 1024):
            index.append((offset, count))
            offset += len(block)
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n"), index or [(0, 0)]


def load_events(
    source: str | os.PathLike[str] | None = None,
    *,
    connection: duckdb.DuckDBPyConnection | None = None,
    max_listed: int = 20,
) -> LoadedEvents:
    """Read JSONL events from ``source`` (file, directory or glob) into DuckDB.

    Returns a :class:`LoadedEvents` whose ``connection`` has the table ``events``:
    deduplicated by event id (first copy in file order wins), malformed lines skipped and
    reported (``malformed_count`` and the first ``max_listed`` in ``malformed``). Nothing in
    the files makes this raise; a missing source raises ``FileNotFoundError`` and a missing
    DuckDB :class:`MissingDependency`. Pass ``connection`` to load into your own DuckDB
    connection (the tables ``_sk_*`` and ``events`` are replaced).

    DuckDB's ``read_json`` reads each file into typed columns; its ``n``-th row is the ``n``-th
    non-blank line (a malformed line gives an empty row). Only a file with blank lines is read
    a second time, as plain lines, to number them; only malformed lines are looked at again,
    to say why.
    """
    duckdb_mod = require_duckdb()
    files = resolve_files(source if source is not None else default_source())
    # a database file in a temporary directory, with a memory limit: tables larger than the
    # limit spill to disk instead of growing the process (the directory also holds the copy of
    # a file with overlong lines)
    workdir = tempfile.mkdtemp(prefix="signalkit-events-")
    con: duckdb.DuckDBPyConnection = connection or duckdb_mod.connect(
        ":memory:",
        config={"memory_limit": MEMORY_LIMIT, "temp_directory": workdir},
    )
    con.execute("SET TimeZone = 'UTC'").fetchall()
    con.execute("DROP TABLE IF EXISTS events").fetchall()
    con.execute("DROP VIEW IF EXISTS events").fetchall()
    total_lines = 0
    read_paths = list(files)  # what was read: a file, or its copy without overlong lines
    indexes: dict[int, list[tuple[int, int]]] = {}
    counter = ThreadPoolExecutor(1, thread_name_prefix="signalkit-count-lines")
    try:
        for idx, path in enumerate(files):
            create = (
                "CREATE OR REPLACE TABLE _sk_events AS" if idx == 0 else "INSERT INTO _sk_events"
            )
            # count the lines while DuckDB reads the file (it releases the GIL while it runs)
            counting = counter.submit(_count_lines, path)
            try:
                _read_file(con, create, idx, path)
            except duckdb_mod.InvalidInputException as exc:
                if "maximum_object_size" not in str(exc):
                    raise
                # a line longer than MAX_LINE_BYTES: read a copy in which each such line is a stub
                path = read_paths[idx] = _without_overlong_lines(path, workdir)
                counting = counter.submit(_count_lines, path)
                _read_file(con, create, idx, path)
            rows = int(
                con.execute("SELECT count(*) FROM _sk_events WHERE file_idx = ?", [idx]).fetchall()[
                    0
                ][0]
            )
            total_lines += rows
            count, indexes[idx] = counting.result()
            if rows != count:
                # blank lines: read_json skips them, so row n is the n-th non-blank line; number
                # the lines for real (a second pass, only for files that have blank lines)
                _, blanks, _ = _scan_lines(con, str(path))
                _renumber(con, idx, blanks)
    finally:
        counter.shutdown(wait=False, cancel_futures=True)
    problem = _problem()
    # the first malformed rows (one scan); only when there are some, a second to delete them
    bad: list[tuple[int, int, str]] = [
        (int(f), int(n), str(p))
        for f, n, p in con.execute(
            f"SELECT file_idx, line, {problem} AS p FROM _sk_events WHERE p IS NOT NULL "
            "ORDER BY file_idx, line LIMIT ?",
            [max_listed],
        ).fetchall()
    ]
    bad_count = 0
    if bad:
        for idx in sorted({f for f, _, p in bad if p == "unparsed"}):
            todo = [n for f, n, p in bad if f == idx and p == "unparsed"]
            found = _reasons(read_paths[idx], indexes[idx], todo)
            bad = [
                (f, n, found.get(n, "unreadable") if f == idx and p == "unparsed" else p)
                for f, n, p in bad
            ]
        bad_count = int(
            con.execute(f"DELETE FROM _sk_events WHERE ({problem}) IS NOT NULL").fetchall()[0][0]
        )
    valid = int(con.execute("SELECT count(*) FROM _sk_events").fetchall()[0][0])
    # ids read more than once, and which copy to keep: the first (in file, then line order)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _sk_dups AS SELECT id, count(*) AS copies, "
        "min(file_idx * 1099511627776 + line) AS keep FROM _sk_events "
        "GROUP BY id HAVING count(*) > 1"
    ).fetchall()
    extra = int(con.execute("SELECT coalesce(sum(copies - 1), 0) FROM _sk_dups").fetchall()[0][0])
    if extra:
        con.execute(
            "DELETE FROM _sk_events USING _sk_dups WHERE _sk_events.id = _sk_dups.id "
            "AND _sk_events.file_idx * 1099511627776 + _sk_events.line <> _sk_dups.keep"
        ).fetchall()
    con.execute("DROP TABLE _sk_dups").fetchall()
    distinct = valid - extra
    con.execute("ALTER TABLE _sk_events RENAME TO events").fetchall()
    names_of = [str(p) for p in files]
    return LoadedEvents(
        connection=con,
        files=names_of,
        lines=total_lines,
        events=distinct,
        duplicates=valid - distinct,
        malformed_count=bad_count,
        malformed=[MalformedLine(names_of[f], n, p) for f, n, p in bad],
        workdir=workdir,
    )
