"""Loading JSONL files of events into DuckDB: one deduplicated, flat ``events`` table.

DuckDB reads the files itself (no line goes through Python), so millions of events load in
seconds. Every line is accounted for: a line that is not a signalkit event is *malformed* and
listed with its file, line number and the reason, never raised; a repeated event id is kept
once (the first copy, in file order) and counted as a duplicate.
"""

from __future__ import annotations

import os
import re
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

    def close(self) -> None:
        """Close the DuckDB connection."""
        self.connection.close()

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


def _structure() -> str:
    """The ``json_transform`` structure for one event line, built from :data:`COLUMNS`."""
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
            node[leaf] = "VARCHAR"
        else:
            node[leaf] = col.duckdb
    import json

    return json.dumps(tree)


def _select_columns() -> str:
    out = []
    for col in COLUMNS:
        if col.name == "ts_ms":
            expr = "epoch_ms(try_cast(j.ts AS TIMESTAMPTZ))"
        elif col.name == "scale_min":
            expr = "j.scale[1]"
        elif col.name == "scale_max":
            expr = "j.scale[2]"
        elif col.name == "attributes":
            expr = "coalesce(CAST(j.attributes AS VARCHAR), '{}')"
        elif col.name in ("items",):
            expr = "CAST(j.items AS VARCHAR)"
        else:
            expr = "j." + ".".join(f'"{p}"' for p in col.path)
        out.append(f'{expr} AS "{col.name}"')
    return ",\n       ".join(out)


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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
    connection (the temp tables ``_sk_*`` and the table ``events`` are replaced).
    """
    duckdb_mod = require_duckdb()
    files = resolve_files(source if source is not None else default_source())
    con: duckdb.DuckDBPyConnection = connection or duckdb_mod.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE OR REPLACE TEMP TABLE _sk_lines (file_idx INTEGER, line BIGINT, l VARCHAR)")
    rejected: list[tuple[int, int, str]] = []
    for idx, path in enumerate(files):
        # One VARCHAR column per line: a delimiter no JSON text contains unescaped, no quoting.
        # Lines DuckDB rejects (invalid UTF-8) are stored in reject_errors with their line
        # number; the line numbers of the rows after them are corrected below.
        reader = (
            f"read_csv({_sql_str(str(path))}, columns = {{'l': 'VARCHAR'}}, delim = '\\x01', "
            "quote = '', escape = '', header = false, auto_detect = false, "
            "strict_mode = false, max_line_size = 1000000000, new_line = '\\r\\n', "
            "store_rejects = true, rejects_table = '_sk_rejects', "
            "rejects_scan = '_sk_reject_scans')"
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _sk_file AS "
            f"SELECT row_number() OVER () AS k, l FROM {reader}"
        )
        rejects = [
            int(r[0]) for r in con.execute("SELECT line FROM _sk_rejects ORDER BY line").fetchall()
        ]
        con.execute("DROP TABLE IF EXISTS _sk_rejects").fetchall()
        con.execute("DROP TABLE IF EXISTS _sk_reject_scans").fetchall()
        if rejects:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _sk_rej AS "
                "SELECT unnest(?::BIGINT[]) AS r, generate_subscripts(?::BIGINT[], 1) AS j",
                [rejects, rejects],
            )
            # valid row k is line k + #{rejected line r_j : r_j - j < k}
            line_expr = "k + (SELECT count(*) FROM _sk_rej WHERE r - j < k)"
            rejected.extend((idx, r, "invalid UTF-8") for r in rejects)
        else:
            line_expr = "k"
        con.execute(f"INSERT INTO _sk_lines SELECT {idx}, {line_expr}, l FROM _sk_file")
    con.execute("DROP TABLE IF EXISTS _sk_file")
    con.execute("DROP TABLE IF EXISTS _sk_rej")

    kinds = ", ".join(_sql_str(k) for k in EVENT_KINDS)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _sk_parsed AS
        SELECT file_idx, line,
               {_select_columns()},
               CASE WHEN NOT ok THEN 'invalid JSON'
                    WHEN NOT obj THEN 'not a JSON object'
                    WHEN j.id IS NULL OR j.id = '' THEN 'missing id'
                    WHEN j.kind IS NULL THEN 'missing kind'
                    WHEN j.kind NOT IN ({kinds}) THEN 'unknown kind ' || left(j.kind, 40)
                    WHEN j.exposure_id IS NULL OR j.exposure_id = '' THEN 'missing exposure_id'
                    WHEN try_cast(j.ts AS TIMESTAMPTZ) IS NULL THEN 'missing or invalid ts'
               END AS problem
        FROM (
            SELECT file_idx, line, ok, obj,
                   json_transform(CASE WHEN obj THEN vl END, {_sql_str(_structure())}) AS j
            FROM (
                SELECT file_idx, line, ok, vl, coalesce(json_type(vl) = 'OBJECT', false) AS obj
                FROM (
                    SELECT file_idx, line, ok, CASE WHEN ok THEN l END AS vl
                    FROM (SELECT file_idx, line, l, json_valid(l) AS ok
                          FROM _sk_lines WHERE trim(coalesce(l, '')) <> '')
                )
            )
        )
        """
    )
    con.execute("DROP TABLE _sk_lines")
    names = ", ".join(f'"{c.name}"' for c in COLUMNS)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE events AS
        SELECT {names}, file_idx, line FROM _sk_parsed WHERE problem IS NULL
        QUALIFY row_number() OVER (PARTITION BY id ORDER BY file_idx, line) = 1
        """
    )
    lines, valid = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE problem IS NULL) FROM _sk_parsed"
    ).fetchall()[0]
    bad = con.execute(
        "SELECT file_idx, line, problem FROM _sk_parsed WHERE problem IS NOT NULL "
        "ORDER BY file_idx, line LIMIT ?",
        [max_listed + len(rejected)],
    ).fetchall()
    bad_count = int(lines) - int(valid)
    con.execute("DROP TABLE _sk_parsed")
    events = int(con.execute("SELECT count(*) FROM events").fetchall()[0][0])
    all_bad = sorted([*((int(f), int(n), str(p)) for f, n, p in bad), *rejected])
    names_of = [str(p) for p in files]
    return LoadedEvents(
        connection=con,
        files=names_of,
        lines=int(lines) + len(rejected),
        events=events,
        duplicates=int(valid) - events,
        malformed_count=bad_count + len(rejected),
        malformed=[MalformedLine(names_of[f], n, p) for f, n, p in all_bad[:max_listed]],
    )
