"""``signalkit check``: the flywheel health check (pass / warn / fail per question)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from .dataset import _fraction, _positive, parse_duration_ms, write_malformed

__all__ = ["add_check_parser", "run_check_command"]


def add_check_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``signalkit check`` on the subcommand parsers ``sub``."""
    p: argparse.ArgumentParser = sub.add_parser(
        "check",
        help="flywheel health check: captured, flowing, visible, usage — pass/warn/fail",
        description="Answers the four flywheel questions from the recorded events, each with "
        "pass/warn/fail, the figure behind it and the threshold applied. Exits 1 when any "
        "answer fails (or warns, with --fail-on warn): usable as a CI step. "
        "See docs/check.md.",
    )
    p.add_argument(
        "source",
        nargs="?",
        help="JSONL file, directory (with rotated backups) or glob (default: $SIGNALKIT_DIR "
        "or ./.signalkit)",
    )
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p.add_argument(
        "--only",
        action="append",
        choices=("captured", "flowing", "visible", "usage"),
        default=[],
        help="answer only this question (repeatable)",
    )
    p.add_argument(
        "--fail-on",
        choices=("fail", "warn"),
        default="fail",
        help="exit 1 on any fail (default), or on any warn too",
    )
    g = p.add_argument_group("captured: is high-signal data being captured?")
    g.add_argument("--strong", type=_fraction, default=0.7, help="strong at strength ≥ (0.7)")
    g.add_argument("--strong-pass", type=_fraction, default=0.25, help="share to pass (0.25)")
    g.add_argument("--strong-warn", type=_fraction, default=0.10, help="share to warn (0.10)")
    g.add_argument("--coverage-pass", type=_fraction, default=0.5, help="coverage to pass (0.5)")
    g.add_argument("--coverage-warn", type=_fraction, default=0.2, help="coverage to warn (0.2)")
    g.add_argument(
        "--window",
        type=parse_duration_ms,
        default=parse_duration_ms("24h"),
        help="attribution window (24h): exposures younger than this are not yet counted",
    )
    g = p.add_argument_group("flowing: is it flowing to a sink?")
    g.add_argument(
        "--delivered-pass", type=_fraction, default=0.999, help="delivered share to pass (0.999)"
    )
    g.add_argument(
        "--delivered-warn", type=_fraction, default=0.99, help="delivered share to warn (0.99)"
    )
    g.add_argument(
        "--from-first-seen",
        action="store_true",
        help="count each producer from its first seq in the data, not from 1 (older files "
        "rotated away or pruned)",
    )
    g = p.add_argument_group("visible: is the improvement between model versions visible?")
    g.add_argument(
        "--baseline",
        help="model version to compare from (default: the one before the candidate, by name)",
    )
    g.add_argument(
        "--candidate", help="model version to compare (default: the last by name, v9 < v10)"
    )
    g.add_argument("--model", action="append", default=[], help="only this model (repeatable)")
    g.add_argument("--surface", action="append", default=[], help="only this surface (repeatable)")
    g = p.add_argument_group("usage: does it drive usage?")
    g.add_argument(
        "--period", type=parse_duration_ms, default=parse_duration_ms("1d"), help="period (1d)"
    )
    g.add_argument("--min-periods", type=_positive, default=4, help="complete periods needed (4)")
    g.add_argument("--usage-rise", type=_fraction, default=0.05, help="rise to pass (0.05 = +5%%)")
    g.add_argument(
        "--usage-drop", type=_fraction, default=0.10, help="drop that fails (0.10 = -10%%)"
    )
    p.set_defaults(run=run_check_command)
    return p


def run_check_command(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run ``signalkit check`` with parsed ``args``; 0 = healthy, 1 = failed (or no data)."""
    out = out or sys.stdout
    err = err or sys.stderr
    from ..analytics import MissingDependency, load_events
    from ..analytics.check import Thresholds, render_table, run_check

    if args.period <= 0 or args.window < 0:
        err.write("signalkit check: --period must be positive and --window not negative\n")
        return 2
    thresholds = Thresholds(
        strong=args.strong,
        strong_share_pass=args.strong_pass,
        strong_share_warn=args.strong_warn,
        coverage_pass=args.coverage_pass,
        coverage_warn=args.coverage_warn,
        window_ms=args.window,
        delivered_pass=args.delivered_pass,
        delivered_warn=args.delivered_warn,
        from_first_seen=args.from_first_seen,
        baseline=args.baseline,
        candidate=args.candidate,
        surfaces=tuple(args.surface),
        models=tuple(args.model),
        period_ms=args.period,
        min_periods=args.min_periods,
        usage_rise=args.usage_rise,
        usage_drop=args.usage_drop,
    )
    try:
        loaded = load_events(args.source)
    except MissingDependency as exc:
        err.write(f"signalkit check: {exc}\n")
        return 1
    except FileNotFoundError as exc:
        err.write(f"signalkit check: {exc} (run `signalkit demo` first?)\n")
        return 1
    with loaded:
        result = run_check(loaded, thresholds, only=args.only)
    if args.format == "json":
        import orjson

        out.write(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        where = ", ".join(result.files)
        out.write(
            f"signalkit check: {result.events:,} events from {where} "
            f"({result.duplicates:,} duplicate ids, {result.malformed:,} malformed lines)\n\n"
        )
        out.write(render_table(result) + "\n")
    write_malformed("signalkit check", loaded, err)
    failing = {"fail"} if args.fail_on == "fail" else {"fail", "warn"}
    return 1 if result.verdict in failing else 0
