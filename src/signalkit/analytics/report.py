"""``build_report``: flywheel metrics per group of exposures, with 95% intervals.

The counting rules live in ``docs/report.md``; the SQL in :mod:`._sql` (one text for DuckDB
and ClickHouse), the statistics in :mod:`._stats`. :meth:`Report.to_dict` is the documented,
stable JSON (``"schema": "signalkit.report/1"``).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from ._clickhouse import ClickHouseSource, is_clickhouse_url
from ._source import LoadedEvents, load_events
from ._sql import STRENGTH_EDGES, TTA_EDGES_MS, group_expression, metric_sql, orphan_sql
from ._stats import mean_ci, mean_diff_ci, newcombe_diff_ci, wilson_ci

__all__ = [
    "ACT_ON",
    "METRICS",
    "REPORT_SCHEMA",
    "Comparison",
    "Estimate",
    "GroupReport",
    "Report",
    "build_report",
]

REPORT_SCHEMA = "signalkit.report/1"
"""The ``schema`` value of the JSON report; changes to its meaning get a new number."""

ACT_ON = frozenset({"accepted", "clicked", "copied", "shared"})
"""Actions that count as acting on an exposure (``--act-on`` replaces them)."""

MetricKind = Literal["rate", "quantile", "mean"]

METRICS: dict[str, tuple[MetricKind, str]] = {
    "act_on_rate": ("rate", "exposures acted on (an act-on action within the window)"),
    "correction_rate": ("rate", "exposures corrected within the window"),
    "expand_rate": ("rate", "exposures expanded within the window"),
    "ignored_rate": ("rate", "exposures with no action, correction, toggle or feedback"),
    "outcome_rate": ("rate", "exposures with a successful outcome within the outcome window"),
    "time_to_action_p50_ms": ("quantile", "median ms from exposure to first act-on action"),
    "time_to_action_p90_ms": ("quantile", "90th percentile of the same"),
    "similarity_median": ("quantile", "median similarity of corrected exposures"),
    "outcome_value_mean": ("mean", "outcome value per exposure (sum within the window)"),
    "strength_mean": ("mean", "mean score strength of the attributed signals"),
    "strength_polarity_mean": ("mean", "mean strength × polarity of the attributed signals"),
}
"""Every metric of a group: its kind and what it measures."""


@dataclass(frozen=True)
class Comparison:
    """A group's metric minus the baseline's, with a 95% interval when there is one."""

    diff: float
    ci: tuple[float, float] | None
    significant: bool
    """True when the interval of the difference excludes 0 (rates, means) or, for quantiles,
    when the two groups' 95% intervals do not overlap."""


@dataclass(frozen=True)
class Estimate:
    """One metric of one group: value, sample size, 95% interval, and vs the baseline."""

    value: float | None
    n: int
    """What the metric is computed over: exposures (rates, outcome value), corrected or
    acted-on exposures (quantiles), scored signals (strength)."""
    ci: tuple[float, float] | None = None
    count: int | None = None
    """For a rate: how many of the ``n`` counted."""
    vs_baseline: Comparison | None = None


@dataclass
class GroupReport:
    """The metrics of one group of exposures (one value per ``--by`` key)."""

    key: dict[str, str]
    exposures: int
    metrics: dict[str, Estimate]
    funnel: dict[str, int]
    """exposures → interacted → acted_on → outcome."""
    time_to_action_histogram: list[int]
    """Acted-on exposures per bin of :data:`TTA_EDGES_MS`."""
    strength_histogram: list[int]
    """Scored signals per strength bin (tenths)."""
    is_baseline: bool = False

    @property
    def label(self) -> str:
        """The group's values joined with `` / ``."""
        return " / ".join(self.key.values())


@dataclass
class Report:
    """The whole report: groups (sorted by key), the baseline, and what was read."""

    groups: list[GroupReport]
    by: list[str]
    baseline: str | None
    params: dict[str, Any]
    source: dict[str, Any]
    orphan_signals: int
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def group(self, label: str) -> GroupReport:
        """The group with this label (``"2026-11-01"`` or ``"2026-11-01 / B"``)."""
        for g in self.groups:
            if g.label == label:
                return g
        raise KeyError(label)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data: the stable format documented in docs/report.md."""
        return {
            "schema": REPORT_SCHEMA,
            "generated_at": _iso(self.generated_at),
            "source": self.source,
            "params": self.params,
            "by": self.by,
            "baseline": self.baseline,
            "orphan_signals": self.orphan_signals,
            "histogram_edges": {
                "time_to_action_ms": list(TTA_EDGES_MS),
                "strength": list(STRENGTH_EDGES),
            },
            "groups": [
                {
                    "key": g.key,
                    "label": g.label,
                    "is_baseline": g.is_baseline,
                    "exposures": g.exposures,
                    "funnel": g.funnel,
                    "metrics": {name: _estimate_dict(e) for name, e in g.metrics.items()},
                    "histograms": {
                        "time_to_action": g.time_to_action_histogram,
                        "strength": g.strength_histogram,
                    },
                }
                for g in self.groups
            ],
        }


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _estimate_dict(e: Estimate) -> dict[str, Any]:
    out: dict[str, Any] = {"value": e.value, "n": e.n, "ci": list(e.ci) if e.ci else None}
    if e.count is not None:
        out["count"] = e.count
    out["vs_baseline"] = (
        None
        if e.vs_baseline is None
        else {
            "diff": e.vs_baseline.diff,
            "ci": list(e.vs_baseline.ci) if e.vs_baseline.ci else None,
            "significant": e.vs_baseline.significant,
        }
    )
    return out


def _ms(t: datetime | None, name: str) -> int | None:
    if t is None:
        return None
    if t.tzinfo is None:
        raise ValueError(f"{name}: give a timezone-aware datetime (e.g. 2026-11-01T00:00Z)")
    return int(t.timestamp() * 1000)


def build_report(
    source: str | os.PathLike[str] | LoadedEvents | None = None,
    *,
    by: Sequence[str] = ("model.version",),
    since: datetime | None = None,
    until: datetime | None = None,
    baseline: str | None = None,
    action_window: timedelta = timedelta(hours=24),
    outcome_window: timedelta = timedelta(days=7),
    surfaces: Sequence[str] = (),
    models: Sequence[str] = (),
    act_on: Collection[str] = ACT_ON,
) -> Report:
    """Per-group metrics of the exposures in ``source``, with 95% intervals.

    ``source`` is a JSONL file, directory or glob (read into DuckDB), events already loaded
    with :func:`load_events`, or a ``clickhouse://host:8123/db`` URL (queried in place).
    Exposures shown in ``[since, until)`` (and on ``surfaces``/``models`` when given) are
    grouped by the ``by`` keys; signals are attributed to their exposure when they come within
    ``action_window`` (``outcome_window`` for outcomes) of it. ``baseline`` is the label of the
    group the others are compared with (default: the first group in sort order).
    """
    by = list(by)
    for key in by:
        group_expression(key, "duckdb")  # unknown keys fail before any data is read
    if action_window <= timedelta(0) or outcome_window <= timedelta(0):
        raise ValueError("the attribution windows must be positive")
    params: dict[str, Any] = {
        "since": _iso(since) if since else None,
        "until": _iso(until) if until else None,
        "surfaces": list(surfaces),
        "models": list(models),
        "act_on": sorted(act_on),
        "action_window_ms": int(action_window.total_seconds() * 1000),
        "outcome_window_ms": int(outcome_window.total_seconds() * 1000),
        "confidence": 0.95,
    }
    query_args: dict[str, Any] = {
        "by": by,
        "act_on": sorted(act_on),
        "action_window_ms": params["action_window_ms"],
        "outcome_window_ms": params["outcome_window_ms"],
        "since_ms": _ms(since, "since"),
        "until_ms": _ms(until, "until"),
        "surfaces": list(surfaces),
        "models": list(models),
    }
    if is_clickhouse_url(source):
        ch = ClickHouseSource.from_url(str(source))
        query = metric_sql(ch.events, "clickhouse", **query_args)
        rows = ch.query(query.sql)
        orphans = int(ch.query(orphan_sql(ch.events))[0]["orphans"])
        counts = ch.query(
            f"SELECT count() AS stored, uniqExact(id) AS events FROM {ch.database}.{ch.table}"
        )[0]
        source_info: dict[str, Any] = {
            "engine": "clickhouse",
            "location": ch.display,
            "events": int(counts["events"]),
            "duplicates": int(counts["stored"]) - int(counts["events"]),
        }
    else:
        loaded = source if isinstance(source, LoadedEvents) else load_events(source)
        try:
            query = metric_sql(loaded.table, "duckdb", **query_args)
            cursor = loaded.connection.execute(query.sql)
            names = [d[0] for d in cursor.description or ()]
            rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
            orphans = int(loaded.connection.execute(orphan_sql(loaded.table)).fetchall()[0][0])
        finally:
            if loaded is not source:
                loaded.close()
        source_info = {
            "engine": "duckdb",
            "location": ", ".join(loaded.files),
            "files": loaded.files,
            "lines": loaded.lines,
            "events": loaded.events,
            "duplicates": loaded.duplicates,
            "malformed": {
                "count": loaded.malformed_count,
                "first": [
                    {"file": m.file, "line": m.line, "reason": m.reason} for m in loaded.malformed
                ],
            },
        }
    groups = [_group(row, by, query.group_columns) for row in rows]
    labels = [g.label for g in groups]
    if baseline is not None and groups and baseline not in labels:
        raise ValueError(f"--baseline: no group {baseline!r}; the groups are {labels}")
    base_label = baseline if baseline is not None else (labels[0] if labels else None)
    base = next((g for g in groups if g.label == base_label), None)
    if base is not None:
        base.is_baseline = True
        sums = {id(g): _raw_sums(row) for g, row in zip(groups, rows, strict=True)}
        for g in groups:
            if g is not base:
                _compare(g, base, sums[id(g)], sums[id(base)])
    return Report(
        groups=groups,
        by=by,
        baseline=base_label,
        params=params,
        source=source_info,
        orphan_signals=orphans,
    )


def _num(value: Any) -> float:
    return 0.0 if value is None else float(value)


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def _raw_sums(row: dict[str, Any]) -> dict[str, tuple[float, float, int]]:
    return {
        "outcome_value_mean": (
            _num(row["value_sum"]),
            _num(row["value_sq"]),
            int(row["exposures"]),
        ),
        "strength_mean": (_num(row["strength_sum"]), _num(row["strength_sq"]), int(row["scored"])),
        "strength_polarity_mean": (_num(row["sp_sum"]), _num(row["sp_sq"]), int(row["scored"])),
    }


def _group(row: dict[str, Any], by: list[str], gcols: tuple[str, ...]) -> GroupReport:
    n = int(row["exposures"])
    metrics: dict[str, Estimate] = {}
    for name, column in (
        ("act_on_rate", "acted"),
        ("correction_rate", "corrected"),
        ("expand_rate", "expanded"),
        ("outcome_rate", "converted"),
    ):
        k = int(row[column])
        metrics[name] = Estimate(k / n if n else None, n, wilson_ci(k, n), count=k)
    ignored = n - int(row["interacted"])
    metrics["ignored_rate"] = Estimate(
        ignored / n if n else None, n, wilson_ci(ignored, n), ignored
    )
    for name, prefix in (
        ("time_to_action_p50_ms", "tta_p50"),
        ("time_to_action_p90_ms", "tta_p90"),
        ("similarity_median", "sim_p50"),
    ):
        count = int(row[prefix.split("_")[0] + "_n"])
        lo, hi = _opt(row[f"{prefix}_lo"]), _opt(row[f"{prefix}_hi"])
        ci = (lo, hi) if lo is not None and hi is not None else None
        metrics[name] = Estimate(_opt(row[prefix]) if count else None, count, ci)
    for name, (total, squares, count) in _raw_sums(row).items():
        if name == "outcome_value_mean" and not int(row["valued"]):
            metrics[name] = Estimate(None, count)  # no outcome carried a value
            continue
        m = mean_ci(total, squares, count)
        metrics[name] = Estimate(m[0] if m else None, count, m[1] if m else None)
    ordered = {name: metrics[name] for name in METRICS}
    return GroupReport(
        key={k: str(row[c]) for k, c in zip(by, gcols, strict=True)},
        exposures=n,
        metrics=ordered,
        funnel={
            "exposures": n,
            "interacted": int(row["interacted"]),
            "acted_on": int(row["acted"]),
            "outcome": int(row["converted"]),
        },
        time_to_action_histogram=[int(row[f"tb{i}"]) for i in range(len(TTA_EDGES_MS) + 1)],
        strength_histogram=[int(row[f"sb{i}"]) for i in range(len(STRENGTH_EDGES) + 1)],
    )


def _compare(
    g: GroupReport,
    base: GroupReport,
    sums: dict[str, tuple[float, float, int]],
    base_sums: dict[str, tuple[float, float, int]],
) -> None:
    for name, (kind, _) in METRICS.items():
        e, b = g.metrics[name], base.metrics[name]
        if e.value is None or b.value is None:
            continue
        diff = e.value - b.value
        if kind == "rate":
            ci = newcombe_diff_ci(e.count or 0, e.n, b.count or 0, b.n)
            significant = ci is not None and (ci[0] > 0 or ci[1] < 0)
        elif kind == "mean":
            ci = mean_diff_ci(sums[name], base_sums[name])
            significant = ci is not None and (ci[0] > 0 or ci[1] < 0)
        else:
            ci = None
            significant = (
                e.ci is not None and b.ci is not None and (e.ci[0] > b.ci[1] or e.ci[1] < b.ci[0])
            )
        g.metrics[name] = Estimate(e.value, e.n, e.ci, e.count, Comparison(diff, ci, significant))
