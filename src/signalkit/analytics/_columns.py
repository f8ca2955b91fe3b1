"""The flat table of events every analysis reads: one row per event, one column per field.

Both engines hold the same columns (DuckDB in :mod:`._source`, ClickHouse in
:mod:`signalkit.exporters.clickhouse`), so one set of metric SQL runs on both. Timestamps are
Int64 milliseconds since the Unix epoch: ClickHouse 18.16 (Debian's package) has no
``DateTime64``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COLUMNS", "Column"]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the events table: its name, JSON path in an event, and types."""

    name: str
    path: tuple[str, ...]
    """Where the value sits in the event's JSON (``("score", "strength")``)."""
    duckdb: str
    clickhouse: str
    doc: str = ""


def _c(name: str, path: str, duckdb: str, clickhouse: str, doc: str = "") -> Column:
    return Column(name, tuple(path.split(".")), duckdb, clickhouse, doc)


COLUMNS: tuple[Column, ...] = (
    _c("id", "id", "VARCHAR", "String", "event id (UUIDv7): the dedupe key"),
    _c("kind", "kind", "VARCHAR", "String", "exposure, action, correction, toggle, outcome..."),
    _c("ts_ms", "ts", "BIGINT", "Int64", "event time, ms since the Unix epoch (UTC)"),
    _c("exposure_id", "exposure_id", "VARCHAR", "String", "the exposure this event is about"),
    _c("service", "service", "VARCHAR", "Nullable(String)"),
    _c("producer_id", "producer_id", "VARCHAR", "Nullable(String)"),
    _c("seq", "seq", "BIGINT", "Nullable(Int64)", "1, 2, 3... per producer"),
    _c("schema_version", "schema_version", "BIGINT", "Nullable(Int64)"),
    _c("user_id", "subject.user_id", "VARCHAR", "Nullable(String)"),
    _c("anonymous_id", "subject.anonymous_id", "VARCHAR", "Nullable(String)"),
    _c("session_id", "subject.session_id", "VARCHAR", "Nullable(String)"),
    _c("tenant_id", "subject.tenant_id", "VARCHAR", "Nullable(String)"),
    _c("model_name", "model.name", "VARCHAR", "Nullable(String)"),
    _c("model_version", "model.version", "VARCHAR", "Nullable(String)"),
    _c("model_variant", "model.variant", "VARCHAR", "Nullable(String)"),
    _c("trace_id", "trace_id", "VARCHAR", "Nullable(String)"),
    _c("span_id", "span_id", "VARCHAR", "Nullable(String)"),
    _c("attributes", "attributes", "VARCHAR", "String", "the attributes object as JSON text"),
    _c("strength", "score.strength", "DOUBLE", "Nullable(Float64)", "score strength, [0, 1]"),
    _c("polarity", "score.polarity", "DOUBLE", "Nullable(Float64)", "score polarity, [-1, 1]"),
    _c("policy", "score.policy", "VARCHAR", "Nullable(String)"),
    _c("surface", "surface", "VARCHAR", "Nullable(String)", "exposure: where it was shown"),
    _c("items", "items", "VARCHAR", "Nullable(String)", "exposure: impression list, JSON"),
    _c("latency_ms", "latency_ms", "DOUBLE", "Nullable(Float64)"),
    _c("time_to_action_ms", "time_to_action_ms", "DOUBLE", "Nullable(Float64)"),
    _c("action", "action", "VARCHAR", "Nullable(String)", "action: accepted, clicked..."),
    _c("item_id", "item_id", "VARCHAR", "Nullable(String)"),
    _c("original", "original", "VARCHAR", "Nullable(String)", "correction: the AI output"),
    _c("corrected", "corrected", "VARCHAR", "Nullable(String)", "correction: what was used"),
    _c("edit_distance", "edit_distance", "BIGINT", "Nullable(Int64)"),
    _c("similarity", "similarity", "DOUBLE", "Nullable(Float64)", "correction: [0, 1]"),
    _c("state", "state", "VARCHAR", "Nullable(String)", "toggle: expanded or collapsed"),
    _c("element", "element", "VARCHAR", "Nullable(String)"),
    _c("dwell_ms", "dwell_ms", "DOUBLE", "Nullable(Float64)"),
    _c("name", "name", "VARCHAR", "Nullable(String)", "outcome: its name"),
    _c("value", "value", "DOUBLE", "Nullable(Float64)", "outcome: its value"),
    _c("success", "success", "BOOLEAN", "Nullable(UInt8)", "outcome: succeeded?"),
    _c("delay_ms", "delay_ms", "DOUBLE", "Nullable(Float64)"),
    _c("rating", "rating", "DOUBLE", "Nullable(Float64)", "feedback: the rating"),
    _c("scale_min", "scale.0", "DOUBLE", "Nullable(Float64)", "feedback: worst of the scale"),
    _c("scale_max", "scale.1", "DOUBLE", "Nullable(Float64)", "feedback: best of the scale"),
    _c("choice", "choice", "VARCHAR", "Nullable(String)"),
    _c("comment", "comment", "VARCHAR", "Nullable(String)"),
)
"""The columns of the events table, in order."""
