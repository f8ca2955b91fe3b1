"""Analysis of recorded signals: ``signalkit report`` (and the loading layer under it).

Events are read into an embedded DuckDB (``pip install 'signalkit[report]'``) or queried in
ClickHouse, as one flat table (:data:`COLUMNS`); the metric definitions are SQL that runs on
both engines. Nothing here is imported by ``import signalkit``.
"""

from ._columns import COLUMNS, Column
from ._source import (
    INSTALL_HINT,
    LoadedEvents,
    MalformedLine,
    MissingDependency,
    default_source,
    load_events,
    require_duckdb,
    resolve_files,
)
from .report import Report, build_report

__all__ = [
    "COLUMNS",
    "INSTALL_HINT",
    "Column",
    "LoadedEvents",
    "MalformedLine",
    "MissingDependency",
    "Report",
    "build_report",
    "default_source",
    "load_events",
    "require_duckdb",
    "resolve_files",
]
