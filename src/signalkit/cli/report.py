"""``signalkit report``: flywheel metrics per model version, from JSONL or ClickHouse."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

__all__ = ["add_parser", "parse_duration", "parse_time", "run"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d|w)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``24h``, ``7d``, ``2w`` as a timedelta."""
    m = _DURATION.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30m, 24h, 7d)")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or time (UTC when no offset is given), or ``7d`` meaning 7 days ago."""
    if _DURATION.match(text):
        return datetime.now(UTC) - parse_duration(text)
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (ISO 8601 like 2026-11-01 or 2026-11-01T12:00Z, or 7d ago)"
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``report`` on the ``signalkit`` command's subparsers."""
    p = sub.add_parser(
        "report",
        help="act-on rate, corrections, time-to-action, outcomes per model version",
        description="Flywheel metrics per group of exposures (default: per model.version) "
        "with 95% intervals and the difference from a baseline group. SOURCE is a JSONL "
        "file, a directory of them, a glob, or clickhouse://host:8123/db. Counting rules: "
        "docs/report.md.",
    )
    p.add_argument("source", nargs="?", help="events (default: $SIGNALKIT_DIR or .signalkit)")
    p.add_argument(
        "--source",
        dest="source_option",
        metavar="SOURCE",
        help="the same as the SOURCE argument, e.g. --source clickhouse://127.0.0.1:8123/default",
    )
    p.add_argument(
        "--by",
        action="append",
        metavar="KEY",
        help="group by (repeatable): model.version (default), model.variant, model.name, "
        "surface, service, subject.tenant_id, attributes.<key>",
    )
    p.add_argument("--since", type=parse_time, help="exposures shown at or after (ISO or 7d)")
    p.add_argument("--until", type=parse_time, help="exposures shown before (ISO or 1d)")
    p.add_argument("--baseline", help="group to compare with (default: first in sort order)")
    p.add_argument("--surface", action="append", help="only exposures on this surface")
    p.add_argument("--model", action="append", help="only exposures of this model name")
    p.add_argument(
        "--window",
        type=parse_duration,
        default=timedelta(hours=24),
        help="attribution window for actions, corrections, toggles, feedback (default 24h)",
    )
    p.add_argument(
        "--outcome-window",
        type=parse_duration,
        default=timedelta(days=7),
        help="attribution window for outcomes (default 7d)",
    )
    p.add_argument(
        "--act-on",
        action="append",
        metavar="ACTION",
        help="actions that count as acting on an exposure (default: accepted, clicked, "
        "copied, shared)",
    )
    p.add_argument("--format", choices=("table", "json", "html"), default="table")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        help="write here instead of stdout (--format html default: signalkit-report.html)",
    )


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``signalkit report`` with parsed arguments; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    from ..analytics import INSTALL_HINT, MissingDependency, build_report
    from ..analytics._clickhouse import is_clickhouse_url
    from ..analytics.report import ACT_ON

    option = getattr(args, "source_option", None)
    if option is not None and args.source is not None and option != args.source:
        err.write("signalkit report: give the source once, as SOURCE or as --source\n")
        return 2
    source = option if option is not None else args.source
    if source is None:
        from ..analytics import default_source

        source = default_source()
    try:
        report = build_report(
            source,
            by=args.by or ["model.version"],
            since=args.since,
            until=args.until,
            baseline=args.baseline,
            action_window=args.window,
            outcome_window=args.outcome_window,
            surfaces=args.surface or (),
            models=args.model or (),
            act_on=frozenset(args.act_on) if args.act_on else ACT_ON,
        )
    except MissingDependency:
        err.write(
            "signalkit report needs DuckDB to read JSONL files, and it is not installed.\n"
            f"  {INSTALL_HINT}\n"
        )
        return 3
    except FileNotFoundError as exc:
        err.write(f"signalkit report: {exc}\n")
        return 2
    except ValueError as exc:
        err.write(f"signalkit report: {exc}\n")
        return 2
    except Exception as exc:
        if is_clickhouse_url(source):  # the server's own message, without a traceback
            err.write(f"signalkit report: {exc}\n")
            return 1
        raise
    from ..analytics._render import render_html, render_json, render_table

    if args.format == "html":
        path = args.output or Path("signalkit-report.html")
        path.write_text(render_html(report), encoding="utf-8")
        out.write(f"wrote {path} ({len(report.groups)} groups); open it in a browser\n")
        return 0
    text = render_json(report) if args.format == "json" else render_table(report) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        out.write(f"wrote {args.output}\n")
    else:
        out.write(text)
    return 0
