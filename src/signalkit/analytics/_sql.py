"""The report's metric SQL, written once and rendered for DuckDB or ClickHouse.

The query uses only what both engines share — ClickHouse 18.16 included: subqueries in FROM,
``LEFT JOIN ... ON`` with distinct column names on each side, ``CASE``, ``count``/``sum``/
``min``/``max``, ``greatest``, ``floor``/``ceil``/``sqrt``, 1-based array subscripts and
``length``. Two things differ and are the whole dialect: how a group collects a sorted array
of non-null values, and how a key is read out of the ``attributes`` JSON text. Everything
else, every metric definition included, is the same text on both engines. Divisions and
intervals are done in Python (:mod:`._stats`) from the counts and order statistics returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "GROUP_KEYS",
    "STRENGTH_EDGES",
    "TTA_EDGES_MS",
    "Dialect",
    "MetricQuery",
    "group_expression",
    "metric_sql",
    "orphan_sql",
]

Dialect = Literal["duckdb", "clickhouse"]

GROUP_KEYS = {
    "model.name": "model_name",
    "model.version": "model_version",
    "model.variant": "model_variant",
    "surface": "surface",
    "service": "service",
    "subject.tenant_id": "tenant_id",
}
"""``--by`` keys and their columns; ``attributes.<key>`` is accepted as well."""

NONE_LABEL = "(none)"
"""The group value of an exposure that has no value for a ``--by`` key."""

TTA_EDGES_MS = (500, 1_000, 2_000, 5_000, 10_000, 20_000, 60_000, 120_000, 300_000, 1_800_000)
"""Upper edges of the time-to-action histogram bins (the last bin is open)."""

STRENGTH_EDGES = tuple(round(0.1 * i, 1) for i in range(1, 10))
"""Upper edges of the strength histogram bins: [0, 0.1), [0.1, 0.2) ... [0.9, 1]."""

QUANTILES = (0.5, 0.9)
Z95 = 1.959963984540054


def _sql_str(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _duck_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _lit(text: str, dialect: Dialect) -> str:
    """A string literal: ClickHouse reads backslash escapes inside quotes, DuckDB does not."""
    return _sql_str(text) if dialect == "clickhouse" else _duck_str(text)


def group_expression(key: str, dialect: Dialect) -> str:
    """SQL for one ``--by`` key over the events table; a missing value reads ``(none)``."""
    if key in GROUP_KEYS:
        expr = GROUP_KEYS[key]
    elif key.startswith("attributes.") and len(key) > len("attributes."):
        name = key[len("attributes.") :]
        if dialect == "duckdb":
            expr = f"json_extract_string(attributes, {_lit('$.' + _json_path_key(name), dialect)})"
        else:
            raw = f"visitParamExtractRaw(attributes, {_lit(name, dialect)})"
            expr = f"replaceRegexpAll({raw}, '^\"|\"$', '')"
    else:
        known = ", ".join([*GROUP_KEYS, "attributes.<key>"])
        raise ValueError(f"--by: unknown key {key!r}; use one of {known}")
    none = _lit(NONE_LABEL, dialect)
    return f"CASE WHEN coalesce({expr}, '') = '' THEN {none} ELSE {expr} END"


def _json_path_key(name: str) -> str:
    return '"' + name.replace('"', '\\"') + '"'


def _sorted_values(expr: str, dialect: Dialect) -> str:
    if dialect == "duckdb":
        return f"list_sort(list({expr}) FILTER (WHERE {expr} IS NOT NULL))"
    return f"arraySort(groupArray({expr}))"


def _quantile(arr: str, n: str, p: float) -> str:
    """Linear interpolation between order statistics (Hyndman & Fan type 7, numpy's default)."""
    h = f"(({n} - 1) * {p!r} + 1)"
    lo = f"CAST(floor({h}) AS Int64)"
    hi = f"CAST(ceil({h}) AS Int64)"
    return (
        f"CASE WHEN {n} > 0 THEN {arr}[{lo}] + ({h} - floor({h})) * ({arr}[{hi}] - {arr}[{lo}]) END"
    )


def _rank_ci(arr: str, n: str, p: float, side: Literal["lo", "hi"]) -> str:
    """Distribution-free 95% interval of the p-quantile: order statistics at binomial ranks."""
    sd = f"sqrt({n} * {p!r} * {1 - p!r})"
    if side == "lo":
        rank = f"greatest(CAST(floor({n} * {p!r} - {Z95!r} * {sd}) AS Int64), 1)"
    else:
        rank = f"least(CAST(ceil({n} * {p!r} + 1 + {Z95!r} * {sd}) AS Int64), {n})"
    return f"CASE WHEN {n} > 0 THEN {arr}[{rank}] END"


@dataclass(frozen=True)
class MetricQuery:
    """The rendered report query and the names of its group columns."""

    sql: str
    group_columns: tuple[str, ...]


def _in_list(values: Sequence[str], dialect: Dialect) -> str:
    return "(" + ", ".join(_lit(v, dialect) for v in values) + ")"


def _tta_bin(expr: str) -> str:
    whens = " ".join(f"WHEN {expr} < {edge} THEN {i}" for i, edge in enumerate(TTA_EDGES_MS))
    return f"CASE WHEN {expr} IS NULL THEN -1 {whens} ELSE {len(TTA_EDGES_MS)} END"


def _strength_bin(expr: str) -> str:
    whens = " ".join(f"WHEN {expr} < {edge!r} THEN {i}" for i, edge in enumerate(STRENGTH_EDGES))
    return f"CASE {whens} ELSE {len(STRENGTH_EDGES)} END"


def metric_sql(
    events: str,
    dialect: Dialect,
    *,
    by: Sequence[str],
    act_on: Sequence[str],
    action_window_ms: int,
    outcome_window_ms: int,
    since_ms: int | None = None,
    until_ms: int | None = None,
    surfaces: Sequence[str] = (),
    models: Sequence[str] = (),
) -> MetricQuery:
    """The per-group report query over ``events`` (a table name or ``db.table FINAL``).

    One row per group: counts, sums and sums of squares, order statistics for the medians and
    90th percentiles (with their interval ends) and histogram counts. Rules, in words, in
    ``docs/report.md``: an exposure's signals count when they come within the attribution
    window of its time (``action_window_ms``; ``outcome_window_ms`` for outcomes).
    """
    if not by:
        raise ValueError("--by: give at least one key")
    gcols = tuple(f"g{i}" for i in range(len(by)))
    gexprs = ", ".join(
        f"{group_expression(k, dialect)} AS {c}" for k, c in zip(by, gcols, strict=True)
    )
    where = ["kind = 'exposure'"]
    if since_ms is not None:
        where.append(f"ts_ms >= {int(since_ms)}")
    if until_ms is not None:
        where.append(f"ts_ms < {int(until_ms)}")
    if surfaces:
        where.append(f"surface IN {_in_list(surfaces, dialect)}")
    if models:
        where.append(f"model_name IN {_in_list(models, dialect)}")
    wa, wo = int(action_window_ms), int(outcome_window_ms)
    acts = _in_list(list(act_on) or ["\x00none"], dialect)

    # Per signal, relative to its exposure. On ClickHouse an unmatched LEFT JOIN row has
    # s_kind = '' (not NULL), so every condition names the kind it counts.
    in_act = f"s_kind IN ('action', 'correction', 'toggle', 'feedback') AND d <= {wa}"
    in_out = f"s_kind = 'outcome' AND d <= {wo}"
    in_any = f"(({in_act}) OR ({in_out}))"
    acted = f"s_kind = 'action' AND s_action IN {acts} AND d <= {wa}"
    corrected = f"s_kind = 'correction' AND d <= {wa}"
    expanded = f"s_kind = 'toggle' AND s_state = 'expanded' AND d <= {wa}"
    outcome_ok = f"{in_out} AND (s_success IS NULL OR s_success = 1)"
    scored = f"{in_any} AND s_strength IS NOT NULL AND s_polarity IS NOT NULL"
    sp = "s_strength * s_polarity"

    strength_bins = ",\n           ".join(
        f"sum(CASE WHEN {scored} AND sbin = {i} THEN 1 ELSE 0 END) AS sb{i}"
        for i in range(len(STRENGTH_EDGES) + 1)
    )
    per_exposure = f"""
    SELECT x_id, {", ".join(gcols)},
           max(CASE WHEN {acted} THEN 1 ELSE 0 END) AS acted,
           min(CASE WHEN {acted} THEN greatest(d, 0) END) AS tta,
           max(CASE WHEN {corrected} THEN 1 ELSE 0 END) AS corrected,
           min(CASE WHEN {corrected} THEN s_similarity END) AS similarity,
           max(CASE WHEN {expanded} THEN 1 ELSE 0 END) AS expanded,
           max(CASE WHEN {in_act} THEN 1 ELSE 0 END) AS interacted,
           max(CASE WHEN {outcome_ok} THEN 1 ELSE 0 END) AS converted,
           sum(CASE WHEN {in_out} AND s_value IS NOT NULL THEN s_value ELSE 0 END) AS value,
           sum(CASE WHEN {in_out} AND s_value IS NOT NULL THEN 1 ELSE 0 END) AS n_valued,
           sum(CASE WHEN {scored} THEN 1 ELSE 0 END) AS n_scored,
           sum(CASE WHEN {scored} THEN s_strength ELSE 0 END) AS s_sum,
           sum(CASE WHEN {scored} THEN s_strength * s_strength ELSE 0 END) AS s_sq,
           sum(CASE WHEN {scored} THEN {sp} ELSE 0 END) AS sp_sum,
           sum(CASE WHEN {scored} THEN {sp} * {sp} ELSE 0 END) AS sp_sq,
           {strength_bins}
    FROM (
        SELECT x.x_id AS x_id, {", ".join(f"x.{c} AS {c}" for c in gcols)},
               s.s_kind AS s_kind, s.s_action AS s_action, s.s_state AS s_state,
               s.s_similarity AS s_similarity, s.s_success AS s_success,
               s.s_value AS s_value, s.s_strength AS s_strength, s.s_polarity AS s_polarity,
               s.s_ts - x.x_ts AS d,
               {_strength_bin("s.s_strength")} AS sbin
        FROM (
            SELECT exposure_id AS x_id, ts_ms AS x_ts, {gexprs}
            FROM {events}
            WHERE {" AND ".join(where)}
        ) AS x
        LEFT JOIN (
            SELECT exposure_id AS s_xid, kind AS s_kind, ts_ms AS s_ts, action AS s_action,
                   state AS s_state, similarity AS s_similarity, success AS s_success,
                   value AS s_value, strength AS s_strength, polarity AS s_polarity
            FROM {events}
            WHERE kind <> 'exposure'
        ) AS s ON x.x_id = s.s_xid
    ) AS joined
    GROUP BY x_id, {", ".join(gcols)}
    """

    tta_bins = ",\n           ".join(
        f"sum(CASE WHEN tbin = {i} THEN 1 ELSE 0 END) AS tb{i}"
        for i in range(len(TTA_EDGES_MS) + 1)
    )
    sb_sums = ", ".join(f"sum(sb{i}) AS sb{i}" for i in range(len(STRENGTH_EDGES) + 1))
    per_group = f"""
    SELECT {", ".join(gcols)},
           count(*) AS exposures,
           sum(acted) AS acted, sum(corrected) AS corrected, sum(expanded) AS expanded,
           sum(interacted) AS interacted, sum(converted) AS converted,
           sum(value) AS value_sum, sum(value * value) AS value_sq, sum(n_valued) AS valued,
           sum(n_scored) AS scored, sum(s_sum) AS strength_sum, sum(s_sq) AS strength_sq,
           sum(sp_sum) AS sp_sum, sum(sp_sq) AS sp_sq,
           {sb_sums},
           {tta_bins},
           {_sorted_values("tta", dialect)} AS tta_sorted,
           {_sorted_values("similarity", dialect)} AS sim_sorted
    FROM (SELECT *, {_tta_bin("tta")} AS tbin FROM ({per_exposure}) AS pe) AS pe2
    GROUP BY {", ".join(gcols)}
    """

    picks = []
    for name, arr in (("tta", "tta_sorted"), ("sim", "sim_sorted")):
        n = f"coalesce(length({arr}), 0)"
        picks.append(f"{n} AS {name}_n")
        for p in QUANTILES:
            tag = f"p{round(p * 100)}"
            picks.append(f"{_quantile(arr, n, p)} AS {name}_{tag}")
            picks.append(f"{_rank_ci(arr, n, p, 'lo')} AS {name}_{tag}_lo")
            picks.append(f"{_rank_ci(arr, n, p, 'hi')} AS {name}_{tag}_hi")
    plain = [
        "exposures", "acted", "corrected", "expanded", "interacted", "converted",
        "value_sum", "value_sq", "valued", "scored",
        "strength_sum", "strength_sq", "sp_sum", "sp_sq",
        *(f"sb{i}" for i in range(len(STRENGTH_EDGES) + 1)),
        *(f"tb{i}" for i in range(len(TTA_EDGES_MS) + 1)),
    ]  # fmt: skip
    sql = f"""
    SELECT {", ".join(gcols)}, {", ".join(plain)},
           {", ".join(picks)}
    FROM ({per_group}) AS grouped
    ORDER BY {", ".join(gcols)}
    """
    return MetricQuery(sql=sql, group_columns=gcols)


def orphan_sql(events: str) -> str:
    """Signals whose exposure is not in the data at all (their group is unknown)."""
    return (
        f"SELECT count(*) AS orphans FROM {events} WHERE kind <> 'exposure' AND exposure_id "
        f"NOT IN (SELECT exposure_id FROM {events} WHERE kind = 'exposure')"
    )
