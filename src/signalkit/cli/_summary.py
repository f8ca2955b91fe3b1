"""A per-model-version summary of a JSONL file of events (what ``signalkit demo`` prints)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["VersionSummary", "render_table", "summarise"]

ACT_ON = frozenset({"accepted", "clicked", "copied", "shared"})


@dataclass
class VersionSummary:
    """Counts for one model version; rates are per exposure."""

    version: str
    exposures: int = 0
    acted_on: int = 0
    corrected: int = 0
    converted: int = 0
    first_action_ms: list[float] = field(default_factory=list)
    strengths: list[float] = field(default_factory=list)
    directed: list[float] = field(default_factory=list)

    @property
    def act_on_rate(self) -> float:
        return self.acted_on / self.exposures if self.exposures else 0.0

    @property
    def correction_rate(self) -> float:
        return self.corrected / self.exposures if self.exposures else 0.0

    @property
    def outcome_rate(self) -> float:
        return self.converted / self.exposures if self.exposures else 0.0

    @property
    def median_tta_s(self) -> float | None:
        return statistics.median(self.first_action_ms) / 1000 if self.first_action_ms else None

    @property
    def mean_strength(self) -> float | None:
        return statistics.fmean(self.strengths) if self.strengths else None

    @property
    def mean_directed(self) -> float | None:
        """Mean of strength × polarity: how strongly, on balance, users endorsed the output."""
        return statistics.fmean(self.directed) if self.directed else None


def summarise(events: Iterable[dict[str, Any]]) -> list[VersionSummary]:
    """Group exposures by ``model.version`` and attribute every signal to its exposure.

    An exposure is *acted on* if it got an accept/click/copy/share, *corrected* if it got a
    correction, *converted* if it got a successful outcome; time-to-action is the first
    action or correction. Duplicate event ids count once.
    """
    seen: set[str] = set()
    version_of: dict[str, str] = {}
    signals: list[dict[str, Any]] = []
    for e in events:
        if e.get("id") in seen:
            continue
        seen.add(e["id"])
        if e.get("kind") == "exposure":
            version_of[e["exposure_id"]] = (e.get("model") or {}).get("version") or "(none)"
        else:
            signals.append(e)
    out: dict[str, VersionSummary] = {}
    for v in version_of.values():
        out.setdefault(v, VersionSummary(v)).exposures += 1
    flags: dict[str, set[str]] = defaultdict(set)
    first: dict[str, float] = {}
    for e in signals:
        exp_id = e.get("exposure_id", "")
        version = version_of.get(exp_id)
        if version is None:
            continue
        summary = out[version]
        score = e.get("score") or {}
        strength, polarity = score.get("strength"), score.get("polarity")
        if isinstance(strength, int | float) and isinstance(polarity, int | float):
            summary.strengths.append(float(strength))
            summary.directed.append(float(strength) * float(polarity))
        kind = e.get("kind")
        if kind == "action" and e.get("action") in ACT_ON:
            flags[exp_id].add("acted")
        elif kind == "correction":
            flags[exp_id].add("corrected")
        elif kind == "outcome" and e.get("success") is True:
            flags[exp_id].add("converted")
        tta = e.get("time_to_action_ms")
        if kind in ("action", "correction") and isinstance(tta, int | float):
            first[exp_id] = min(first.get(exp_id, tta), tta)
    for exp_id, f in flags.items():
        s = out[version_of[exp_id]]
        s.acted_on += "acted" in f
        s.corrected += "corrected" in f
        s.converted += "converted" in f
    for exp_id, tta in first.items():
        out[version_of[exp_id]].first_action_ms.append(tta)
    return [out[k] for k in sorted(out)]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def render_table(rows: list[VersionSummary]) -> str:
    """A plain-text table, one row per model version."""
    header = (
        "model version",
        "exposures",
        "act-on rate",
        "correction rate",
        "median time-to-action",
        "outcome rate",
        "mean strength",
        "mean strength×polarity",
    )
    body = [
        (
            r.version,
            f"{r.exposures:,}",
            _pct(r.act_on_rate),
            _pct(r.correction_rate),
            f"{r.median_tta_s:.1f} s" if r.median_tta_s is not None else "-",
            _pct(r.outcome_rate),
            f"{r.mean_strength:.3f}" if r.mean_strength is not None else "-",
            f"{r.mean_directed:+.3f}" if r.mean_directed is not None else "-",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = "  ".join(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return f"  {first}  {rest}"

    rule = "  " + "  ".join("─" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in body)])
