"""``signalkit check``: a flywheel health check, answered from the recorded events.

DESIGN §1 says an AI product improves with use only if four things hold. Each is a question
answered here from the data, with a verdict (``pass`` / ``warn`` / ``fail``), the figures behind
it and the thresholds that turned the figures into the verdict (``docs/check.md``):

1. ``captured`` — is high-signal data being captured? The share of signals that are strong,
   and the share of exposures (past their attribution window) that got any signal.
2. ``flowing`` — is it flowing to a sink? Every event carries ``producer_id`` and ``seq``
   (1, 2, 3... per producer, in record order), so the sink's own data shows which recorded
   events never arrived: the delivered share is distinct ``seq`` seen over ``seq`` expected.
3. ``visible`` — is the improvement between model versions visible? The act-on and
   correction rates of the newest version against the one before it, and whether their
   difference is significant, from :func:`~signalkit.analytics.build_report` (one definition
   of each metric and of significance, shared with ``signalkit report``).
4. ``usage`` — does it drive usage? Exposures per active user, per period, the later half
   of the data's history against the earlier half.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ._source import LoadedEvents

__all__ = ["QUESTIONS", "Answer", "CheckResult", "Figure", "Thresholds", "run_check"]

Verdict = Literal["pass", "warn", "fail"]
_RANK: dict[str, int] = {"fail": 0, "warn": 1, "pass": 2}

DAY_MS = 86_400_000

QUESTIONS: dict[str, str] = {
    "captured": "is high-signal data being captured?",
    "flowing": "is it flowing to a sink?",
    "visible": "is the improvement between model versions visible?",
    "usage": "does it drive usage?",
}
"""The four questions, by the name used in output and ``--only``."""


@dataclass(frozen=True)
class Thresholds:
    """The numbers that turn each figure into a verdict (all adjustable from the command)."""

    strong: float = 0.7
    """A signal is *strong* at this strength or above (corrections, feedback, prompt outcomes)."""
    strong_share_pass: float = 0.25
    strong_share_warn: float = 0.10
    coverage_pass: float = 0.5
    """Share of exposures (past their window) with any signal, to pass."""
    coverage_warn: float = 0.2
    window_ms: int = DAY_MS
    """Attribution window: an exposure counts for coverage once this long has passed since it
    was shown (against the latest event time in the data)."""
    delivered_pass: float = 0.999
    """Share of recorded events that reached the sink, to pass."""
    delivered_warn: float = 0.99
    from_first_seen: bool = False
    """Count each producer's events from its first ``seq`` in the data instead of from 1
    (for files whose older part was rotated away or pruned)."""
    baseline: str | None = None
    """Model version to compare from (default: the one before the candidate, by name)."""
    candidate: str | None = None
    """Model version to compare (default: the last by name, in natural order)."""
    surfaces: tuple[str, ...] = ()
    """Compare versions on these surfaces only (empty: all)."""
    models: tuple[str, ...] = ()
    """Compare versions of these model names only (empty: all)."""
    period_ms: int = DAY_MS
    """Usage is counted per period of this length, ending at the latest event."""
    min_periods: int = 4
    """Complete periods needed before usage gets a pass or a fail."""
    usage_rise: float = 0.05
    """Exposures per active user must rise by this share (later half vs earlier) to pass..."""
    usage_drop: float = 0.10
    """... and fail when they fall by this share or more."""


@dataclass(frozen=True)
class Figure:
    """One measured figure behind an answer, its verdict and the rule that gave it."""

    name: str
    value: float | None
    """The figure (a share in [0, 1], a relative change, a p-value...); None if not measurable."""
    text: str
    """The figure for a person, with the counts it came from."""
    verdict: Verdict
    threshold: str
    """The rule applied, e.g. ``pass ≥ 25%, warn ≥ 10%``."""
    detail: dict[str, Any] = field(default_factory=dict)
    """The counts behind the figure."""


@dataclass(frozen=True)
class Answer:
    """The answer to one question: the worst verdict among its figures."""

    question: str
    title: str
    figures: tuple[Figure, ...]

    @property
    def verdict(self) -> Verdict:
        return _worst(f.verdict for f in self.figures)


@dataclass
class CheckResult:
    """All four answers and what they were read from."""

    answers: list[Answer]
    files: list[str] = field(default_factory=list)
    events: int = 0
    duplicates: int = 0
    malformed: int = 0

    @property
    def verdict(self) -> Verdict:
        return _worst(a.verdict for a in self.answers)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the overall verdict, each answer with its figures."""
        return {
            "verdict": self.verdict,
            "files": self.files,
            "events": self.events,
            "duplicates": self.duplicates,
            "malformed": self.malformed,
            "answers": [
                {
                    "question": a.question,
                    "title": a.title,
                    "verdict": a.verdict,
                    "figures": [asdict(f) for f in a.figures],
                }
                for a in self.answers
            ],
        }


def _worst(verdicts: Any) -> Verdict:
    out: Verdict = "pass"
    for v in verdicts:
        if _RANK[v] < _RANK[out]:
            out = v
    return out


def _grade(value: float, pass_at: float, warn_at: float) -> Verdict:
    """Higher is better: pass at ``pass_at`` or above, warn at ``warn_at`` or above."""
    if value >= pass_at:
        return "pass"
    return "warn" if value >= warn_at else "fail"


def _pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}%"


def _scalar(loaded: LoadedEvents, sql: str, params: Sequence[Any] = ()) -> Any:
    rows = loaded.connection.execute(sql, list(params)).fetchall()
    return rows[0][0] if rows else None


# -- 1. captured ------------------------------------------------------------------------------


def _captured(loaded: LoadedEvents, t: Thresholds) -> Answer:
    table = loaded.table
    signals, strong = loaded.connection.execute(
        f"SELECT count(*), count(*) FILTER (WHERE strength >= ?) FROM {table} "
        "WHERE kind <> 'exposure' AND strength IS NOT NULL",
        [t.strong],
    ).fetchall()[0]
    latest = _scalar(loaded, f"SELECT max(ts_ms) FROM {table}")
    closed, covered = loaded.connection.execute(
        f"""
        SELECT count(*), count(s.exposure_id)
        FROM {table} e
        LEFT JOIN (SELECT DISTINCT exposure_id FROM {table} WHERE kind <> 'exposure') s
               ON s.exposure_id = e.id
        WHERE e.kind = 'exposure' AND e.ts_ms + ? <= ?
        """,
        [t.window_ms, latest if latest is not None else 0],
    ).fetchall()[0]
    window = _duration(t.window_ms)
    strong_rule = f"pass ≥ {_pct(t.strong_share_pass, 0)}, warn ≥ {_pct(t.strong_share_warn, 0)}"
    if signals:
        share = strong / signals
        strong_fig = Figure(
            "strong_share",
            share,
            f"{_pct(share)} of signals are strong ({strong:,} of {signals:,} with strength "
            f"≥ {t.strong:g})",
            _grade(share, t.strong_share_pass, t.strong_share_warn),
            strong_rule,
            {"signals": signals, "strong": strong, "strong_at": t.strong},
        )
    else:
        strong_fig = Figure(
            "strong_share", None, "no signals recorded", "fail", strong_rule, {"signals": 0}
        )
    cover_rule = f"pass ≥ {_pct(t.coverage_pass, 0)}, warn ≥ {_pct(t.coverage_warn, 0)}"
    if closed:
        coverage = covered / closed
        cover_fig = Figure(
            "coverage",
            coverage,
            f"{_pct(coverage)} of exposures got a signal ({covered:,} of {closed:,} shown at "
            f"least {window} before the latest event)",
            _grade(coverage, t.coverage_pass, t.coverage_warn),
            cover_rule,
            {"exposures": closed, "with_signal": covered, "window_ms": t.window_ms},
        )
    else:
        cover_fig = Figure(
            "coverage",
            None,
            f"no exposure is {window} older than the latest event yet",
            "warn",
            cover_rule,
            {"exposures": 0, "window_ms": t.window_ms},
        )
    return Answer("captured", QUESTIONS["captured"], (strong_fig, cover_fig))


# -- 2. flowing -------------------------------------------------------------------------------


def _flowing(loaded: LoadedEvents, t: Thresholds) -> Answer:
    table = loaded.table
    first = "min(seq)" if t.from_first_seen else "1"
    producers, seen, expected, late_start = loaded.connection.execute(
        f"""
        SELECT count(*), coalesce(sum(seen), 0), coalesce(sum(expected), 0),
               count(*) FILTER (WHERE first_seq > 1)
        FROM (SELECT producer_id, count(DISTINCT seq) AS seen, min(seq) AS first_seq,
                     max(seq) - {first} + 1 AS expected
              FROM {table} WHERE producer_id IS NOT NULL AND seq >= 1
              GROUP BY producer_id)
        """
    ).fetchall()[0]
    unsequenced = _scalar(
        loaded, f"SELECT count(*) FROM {table} WHERE producer_id IS NULL OR seq IS NULL OR seq < 1"
    )
    rule = f"pass ≥ {_pct(t.delivered_pass)}, warn ≥ {_pct(t.delivered_warn)}"
    detail = {
        "producers": producers,
        "delivered": seen,
        "expected": expected,
        "missing": expected - seen,
        "producers_starting_after_1": late_start,
        "unsequenced": unsequenced,
        "duplicates": loaded.duplicates,
        "counted_from": "first seq seen" if t.from_first_seen else "seq 1",
    }
    if not expected:
        return Answer(
            "flowing",
            QUESTIONS["flowing"],
            (Figure("delivered_share", None, "no sequenced events", "fail", rule, detail),),
        )
    share = seen / expected
    text = (
        f"{_pct(share, 2)} of recorded events reached this sink ({seen:,} of {expected:,} "
        f"by producer seq; {expected - seen:,} missing from {producers:,} "
        f"producer{'' if producers == 1 else 's'}"
    )
    if loaded.duplicates:
        text += f"; {loaded.duplicates:,} redelivered copies kept once"
    text += ")"
    return Answer(
        "flowing",
        QUESTIONS["flowing"],
        (
            Figure(
                "delivered_share",
                share,
                text,
                _grade(share, t.delivered_pass, t.delivered_warn),
                rule,
                detail,
            ),
        ),
    )


# -- 3. visible -------------------------------------------------------------------------------

_VISIBLE_METRICS = (
    ("act_on_rate", "act-on rate", True),
    ("correction_rate", "correction rate", False),
)
"""The report's metrics this question reads, and whether higher is better."""


def _versions(loaded: LoadedEvents, t: Thresholds) -> list[str]:
    """The model versions with exposures (on the selected surfaces/models), oldest first.

    Oldest by *name*, in natural order (``v9`` before ``v10``, ``2026-10-01`` before
    ``2026-11-01``): versions under an A/B test are shown at the same time, so the time they
    were first seen says nothing about which is newer.
    """
    where = ["kind = 'exposure'", "model_version IS NOT NULL"]
    params: list[Any] = []
    if t.surfaces:
        where.append(f"surface IN ({', '.join('?' for _ in t.surfaces)})")
        params.extend(t.surfaces)
    if t.models:
        where.append(f"model_name IN ({', '.join('?' for _ in t.models)})")
        params.extend(t.models)
    rows = loaded.connection.execute(
        f"SELECT DISTINCT model_version FROM {loaded.table} WHERE {' AND '.join(where)}",
        params,
    ).fetchall()
    return sorted((str(r[0]) for r in rows), key=_natural)


def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part
    )


def _visible(loaded: LoadedEvents, t: Thresholds) -> Answer:
    from .report import build_report

    rule_all = (
        "pass: a significant change in the better direction and none in the worse; "
        "fail: a significant change in the worse direction"
    )
    order = _versions(loaded, t)
    missing = [
        f"{name} {want!r}"
        for name, want in (("baseline", t.baseline), ("candidate", t.candidate))
        if want and want not in order
    ]
    candidate = t.candidate or (order[-1] if order else None)
    if t.baseline:
        baseline: str | None = t.baseline
    else:
        earlier = order[: order.index(candidate)] if candidate in order else []
        baseline = earlier[-1] if earlier else None
    if missing or candidate is None or baseline is None or baseline == candidate:
        if missing:
            text = (
                f"no exposures of {' and '.join(missing)} "
                f"(versions in the data: {', '.join(order) or 'none'})"
            )
        elif order:
            text = f"only one model version in the data ({order[0]}): nothing to compare"
        else:
            text = "no exposures with a model version"
        return Answer(
            "visible",
            QUESTIONS["visible"],
            (Figure("versions", None, text, "warn", rule_all, {"versions": order}),),
        )
    report = build_report(
        loaded,
        by=("model.version",),
        baseline=baseline,
        action_window=timedelta(milliseconds=t.window_ms),
        surfaces=t.surfaces,
        models=t.models,
    )
    groups = {g.key.get("model.version"): g for g in report.groups}
    base, cand = groups.get(baseline), groups.get(candidate)
    if base is None or cand is None:  # pragma: no cover - both have exposures
        return Answer(
            "visible",
            QUESTIONS["visible"],
            (Figure("versions", None, "no report for the versions", "warn", rule_all),),
        )
    figures = []
    for name, label, better_up in _VISIBLE_METRICS:
        b, c = base.metrics[name], cand.metrics[name]
        vs = c.vs_baseline
        significant = bool(vs and vs.significant)
        diff = vs.diff if vs is not None else None
        if diff is None or not significant:
            verdict: Verdict = "warn"
        else:
            verdict = "pass" if (diff > 0) == better_up else "fail"
        ci = vs.ci if vs is not None else None
        interval = f"95% CI {ci[0] * 100:+.1f} to {ci[1] * 100:+.1f}" if ci else "no interval"
        text = (
            f"{label} {_pct(b.value or 0.0)} → {_pct(c.value or 0.0)} "
            f"({baseline} → {candidate}: {(diff or 0.0) * 100:+.1f} points, {interval}, "
            f"{'significant' if significant else 'not significant'})"
        )
        figures.append(
            Figure(
                name,
                diff,
                text,
                verdict,
                f"{'higher' if better_up else 'lower'} is better; significant when the 95% "
                "interval of the difference excludes 0 (as in signalkit report)",
                {
                    "baseline": baseline,
                    "candidate": candidate,
                    "baseline_rate": b.value,
                    "candidate_rate": c.value,
                    "baseline_count": b.count,
                    "baseline_exposures": b.n,
                    "candidate_count": c.count,
                    "candidate_exposures": c.n,
                    "ci": list(ci) if ci else None,
                    "significant": significant,
                },
            )
        )
    # one significant improvement is enough when nothing got significantly worse
    verdicts = {f.verdict for f in figures}
    if "pass" in verdicts and "fail" not in verdicts:
        figures = [replace(f, verdict="pass") for f in figures]
    return Answer("visible", QUESTIONS["visible"], tuple(figures))


# -- 4. usage ---------------------------------------------------------------------------------


def _usage(loaded: LoadedEvents, t: Thresholds) -> Answer:
    table = loaded.table
    latest, earliest = loaded.connection.execute(
        f"SELECT max(ts_ms), min(ts_ms) FROM {table}"
    ).fetchall()[0]
    period = _duration(t.period_ms)
    rule = (
        f"pass: +{_pct(t.usage_rise, 0)} or more, fail: −{_pct(t.usage_drop, 0)} or less "
        f"(later half of the periods vs the earlier half; at least {t.min_periods} periods)"
    )
    complete = 0 if latest is None else (latest - earliest) // t.period_ms
    rows = []
    if complete:
        rows = loaded.connection.execute(
            f"""
            SELECT (? - ts_ms) // ? AS k, count(*) AS exposures,
                   count(DISTINCT coalesce(user_id, anonymous_id)) AS users
            FROM {table}
            WHERE kind = 'exposure' AND coalesce(user_id, anonymous_id) IS NOT NULL
              AND (? - ts_ms) // ? < ?
            GROUP BY k
            """,
            [latest, t.period_ms, latest, t.period_ms, complete],
        ).fetchall()
    by_k = {int(k): (int(e), int(u)) for k, e, u in rows}
    # oldest first; a period with no active user has no rate and is left out
    periods = [
        (k, *by_k[k]) for k in range(int(complete) - 1, -1, -1) if k in by_k and by_k[k][1] > 0
    ]
    series = [
        {"period": int(complete) - 1 - k, "exposures": e, "active_users": u, "per_user": e / u}
        for k, e, u in periods
    ]
    detail: dict[str, Any] = {"period_ms": t.period_ms, "periods": series}
    if len(series) < max(2, t.min_periods):
        return Answer(
            "usage",
            QUESTIONS["usage"],
            (
                Figure(
                    "usage_change",
                    None,
                    f"{len(series)} complete {period} periods with active users; "
                    f"{max(2, t.min_periods)} needed to see a trend",
                    "warn",
                    rule,
                    detail,
                ),
            ),
        )
    half = len(series) // 2
    early_rates = [p["per_user"] for p in series[:half]]
    late_rates = [p["per_user"] for p in series[-half:]]
    early = sum(early_rates) / half
    late = sum(late_rates) / half
    change = late / early - 1 if early else 0.0
    if change >= t.usage_rise:
        verdict: Verdict = "pass"
    elif change <= -t.usage_drop:
        verdict = "fail"
    else:
        verdict = "warn"
    detail.update({"earlier": early, "later": late, "change": change, "half": half})
    return Answer(
        "usage",
        QUESTIONS["usage"],
        (
            Figure(
                "usage_change",
                change,
                f"exposures per active user {early:.2f} → {late:.2f} per {period} "
                f"({change * 100:+.1f}%; first {half} vs last {half} of {len(series)} periods)",
                verdict,
                rule,
                detail,
            ),
        ),
    )


def _duration(ms: int) -> str:
    for unit, size in (("w", 604_800_000), ("d", DAY_MS), ("h", 3_600_000), ("m", 60_000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms / 1000:g}s"


# -- all four ---------------------------------------------------------------------------------


def run_check(
    loaded: LoadedEvents,
    thresholds: Thresholds | None = None,
    *,
    only: Sequence[str] = (),
) -> CheckResult:
    """Answer the four questions (or those in ``only``) from ``loaded`` events."""
    t = thresholds or Thresholds()
    unknown = [q for q in only if q not in QUESTIONS]
    if unknown:
        raise ValueError(f"only: unknown question {unknown[0]!r}; one of {', '.join(QUESTIONS)}")
    steps: dict[str, Callable[[], Answer]] = {
        "captured": lambda: _captured(loaded, t),
        "flowing": lambda: _flowing(loaded, t),
        "visible": lambda: _visible(loaded, t),
        "usage": lambda: _usage(loaded, t),
    }
    answers = [steps[q]() for q in QUESTIONS if not only or q in only]
    return CheckResult(
        answers,
        files=list(loaded.files),
        events=loaded.events,
        duplicates=loaded.duplicates,
        malformed=loaded.malformed_count,
    )


def render_table(result: CheckResult) -> str:
    """The answers for a terminal: one block per question, a line per figure."""
    lines = []
    for answer in result.answers:
        lines.append(f"  {answer.verdict.upper():4}  {answer.question}: {answer.title}")
        for f in answer.figures:
            lines.append(f"        {f.verdict:4}  {f.text}")
            lines.append(f"              threshold: {f.threshold}")
    lines.append("")
    lines.append(f"  overall: {result.verdict.upper()}")
    return "\n".join(lines)
