"""``build_report``: per-group flywheel metrics with confidence intervals (work in progress)."""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ._source import LoadedEvents

__all__ = ["ACT_ON", "Report", "build_report"]

ACT_ON = frozenset({"accepted", "clicked", "copied", "shared"})
"""Actions that count as acting on an exposure."""


@dataclass
class Report:
    """The report: one entry per group, the baseline, and what was read."""

    groups: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


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
    """Per-group metrics of the exposures in ``source`` (JSONL path, ``clickhouse://`` URL,
    or already loaded events). Signature stable; implementation in progress."""
    raise NotImplementedError("build_report is being written")
