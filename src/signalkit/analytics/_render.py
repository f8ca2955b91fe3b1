"""The report as text: a terminal table, JSON, and one self-contained HTML page (inline SVG)."""

from __future__ import annotations

import html
import math
from collections.abc import Callable

import orjson

from ._sql import STRENGTH_EDGES, TTA_EDGES_MS
from .report import Estimate, GroupReport, Report

__all__ = ["render_html", "render_json", "render_table"]


def render_json(report: Report) -> str:
    """The stable JSON report (``schema: signalkit.report/1``), indented."""
    return orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _secs(ms: float) -> str:
    if abs(ms) < 600_000:
        return f"{ms / 1000:.1f} s"
    if abs(ms) < 7_200_000:
        return f"{ms / 60_000:.0f} min"
    if abs(ms) < 172_800_000:
        return f"{ms / 3_600_000:.0f} h"
    return f"{ms / 86_400_000:.0f} d"


def _tick_duration(ms: float) -> str:
    """A short axis label: 0.5s, 2s, 1m, 30m, 2h."""
    if ms < 60_000:
        return f"{ms / 1000:g}s"
    if ms < 3_600_000:
        return f"{ms / 60_000:g}m"
    return f"{ms / 3_600_000:g}h"


def _nice_axis(top: float) -> tuple[float, int]:
    """A round tick step (as a share) and the number of steps (at most 5) that reach ``top``."""
    for pct in (1, 2, 2.5, 5, 10, 20, 25):
        steps = math.ceil(round(100 * top / pct, 9))
        if steps <= 5:
            return pct / 100, max(1, steps)
    return 0.25, 4


def _signed(fmt: Callable[[float], str], d: float) -> str:
    """A difference in the metric's own unit: +8.5 pp, -2.2 s, +0.084."""
    if fmt is _pct:
        return f"{100 * d:+.1f} pp"
    text = fmt(d)
    return text if text.startswith(("+", "-")) else "+" + text


def _cell(e: Estimate, fmt: Callable[[float], str], is_baseline: bool) -> str:
    if e.value is None:
        return "-"
    text = fmt(e.value)
    if e.ci is not None:
        text += f" ({fmt(e.ci[0]).rstrip('%s ').strip()}–{fmt(e.ci[1])})"
    if not is_baseline:
        text += "*" if e.vs_baseline is not None and e.vs_baseline.significant else " "
    elif e.vs_baseline is None:
        text += " "
    return text


def _num3(x: float) -> str:
    return f"{x:.3f}"


def _signed3(x: float) -> str:
    return f"{x:+.3f}"


def _value(x: float) -> str:
    return f"{x:.2f}"


def _sim(x: float) -> str:
    return f"{x:.2f}"


TABLE_BLOCKS: tuple[tuple[tuple[str, str, Callable[[float], str]], ...], ...] = (
    (
        ("act-on rate", "act_on_rate", _pct),
        ("correction rate", "correction_rate", _pct),
        ("expand rate", "expand_rate", _pct),
        ("ignored rate", "ignored_rate", _pct),
        ("outcome rate", "outcome_rate", _pct),
    ),
    (
        ("median time-to-action", "time_to_action_p50_ms", _secs),
        ("p90 time-to-action", "time_to_action_p90_ms", _secs),
        ("median similarity", "similarity_median", _sim),
        ("outcome value", "outcome_value_mean", _value),
        ("mean strength", "strength_mean", _num3),
        ("mean strength×polarity", "strength_polarity_mean", _signed3),
    ),
)


def _grid(header: list[str], body: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = "  ".join(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return f"  {first}  {rest}".rstrip()

    rule = "  " + "  ".join("─" * w for w in widths)
    return [line(header), rule, *(line(r) for r in body)]


def render_table(report: Report) -> str:
    """Plain-text tables, one row per group; ``*`` marks a significant difference."""
    key_title = " / ".join(report.by)
    out: list[str] = []
    if not report.groups:
        return "  no exposures matched (check the source, --since/--until and the filters)"
    for i, block in enumerate(TABLE_BLOCKS):
        header = [key_title] + (["exposures"] if i == 0 else []) + [b[0] for b in block]
        body = []
        for g in report.groups:
            cells = [g.label]
            if i == 0:
                cells.append(f"{g.exposures:,}")
            cells += [_cell(g.metrics[m], fmt, g.is_baseline) for _, m, fmt in block]
            body.append(cells)
        out += _grid(header, body)
        out.append("")
    out.append(
        f"  95% intervals in brackets; * differs significantly from the baseline "
        f"{report.baseline!r}."
    )
    out.append("  " + _source_line(report))
    malformed = report.source.get("malformed") or {}
    if malformed.get("count"):
        shown = ", ".join(
            f"{m['file'].rsplit('/', 1)[-1]}:{m['line']} ({m['reason']})"
            for m in malformed["first"][:5]
        )
        more = malformed["count"] - min(5, len(malformed["first"]))
        out.append(
            f"  skipped {malformed['count']:,} malformed lines: {shown}"
            + (f" and {more:,} more (--format json lists up to 20)" if more > 0 else "")
        )
    if report.orphan_signals:
        out.append(f"  {report.orphan_signals:,} signals have no exposure in the source")
    return "\n".join(out)


def _source_line(report: Report) -> str:
    s = report.source
    dup = f", {s['duplicates']:,} duplicates counted once" if s.get("duplicates") else ""
    return f"{s.get('events', 0):,} events from {s['engine']} ({s['location']}){dup}"


# -- HTML ------------------------------------------------------------------------------------

PALETTE = ("#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5")
_E = html.escape


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _svg_rates(groups: list[GroupReport], metric: str, title: str) -> str:
    """Horizontal bars with 95% interval whiskers, one per group, on a 0-100% axis."""
    width, left, row = 640, 170, 34
    height = 40 + row * len(groups)
    scale = width - left - 30
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{_E(title)}">']
    for t in range(0, 101, 20):
        x = left + scale * t / 100
        parts.append(f'<line x1="{x}" y1="20" x2="{x}" y2="{height - 14}" class="grid"/>')
        parts.append(f'<text x="{x}" y="{height - 2}" class="tick">{t}%</text>')
    for i, g in enumerate(groups):
        e = g.metrics[metric]
        y = 24 + i * row
        parts.append(f'<text x="{left - 8}" y="{y + 16}" class="label">{_E(g.label)}</text>')
        if e.value is None:
            continue
        parts.append(
            f'<rect x="{left}" y="{y + 4}" width="{scale * e.value:.1f}" height="18" '
            f'fill="{_colour(i)}"><title>{_pct(e.value)}</title></rect>'
        )
        if e.ci:
            x0, x1 = left + scale * e.ci[0], left + scale * e.ci[1]
            parts.append(
                f'<path d="M{x0:.1f},{y + 13}H{x1:.1f}M{x0:.1f},{y + 7}V{y + 19}'
                f'M{x1:.1f},{y + 7}V{y + 19}" class="whisker"/>'
            )
        parts.append(
            f'<text x="{left + scale * max(e.value, (e.ci or (0, 0))[1]) + 6:.1f}" y="{y + 17}" '
            f'class="value">{_pct(e.value)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _svg_histogram(
    groups: list[GroupReport],
    counts_of: Callable[[GroupReport], list[int]],
    labels: list[str],
    title: str,
) -> str:
    """Grouped bars: the share of each group's total in each bin (so groups compare)."""
    width, height, left, bottom = 640, 240, 40, 40
    bins = len(labels)
    inner_w, inner_h = width - left - 10, height - bottom - 20
    shares: list[list[float]] = []
    for g in groups:
        counts = counts_of(g)
        total = sum(counts)
        shares.append([c / total if total else 0.0 for c in counts])
    step, ticks = _nice_axis(max([max(s) for s in shares if s] + [0.0]))
    top = ticks * step
    slot = inner_w / bins
    bar = slot * 0.8 / max(1, len(groups))
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{_E(title)}">']
    for t in range(0, ticks + 1):
        y = 20 + inner_h * (1 - t / ticks)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" class="ytick">{100 * step * t:g}%</text>'
        )
    for b in range(bins):
        x = left + b * slot
        parts.append(
            f'<text x="{x + slot / 2:.1f}" y="{height - bottom + 14}" class="tick">'
            f"{_E(labels[b])}</text>"
        )
        for i, s in enumerate(shares):
            h = inner_h * s[b] / top
            parts.append(
                f'<rect x="{x + slot * 0.1 + i * bar:.1f}" y="{20 + inner_h - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" fill="{_colour(i)}">'
                f"<title>{_E(groups[i].label)}: {_pct(s[b])}</title></rect>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _svg_funnel(groups: list[GroupReport]) -> str:
    """Per group: exposures → interacted → acted on → outcome, as shares of exposures."""
    steps = ("exposures", "interacted", "acted_on", "outcome")
    names = ("exposures", "interacted", "acted on", "outcome")
    width, left = 640, 170
    row = 22
    height = 20 + len(groups) * (row * (len(steps) + 1) + 10)
    scale = width - left - 130
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="outcome funnel">']
    y = 10
    for i, g in enumerate(groups):
        parts.append(f'<text x="4" y="{y + 14}" class="glabel">{_E(g.label)}</text>')
        y += row
        for step, name in zip(steps, names, strict=True):
            share = g.funnel[step] / g.funnel["exposures"] if g.funnel["exposures"] else 0.0
            parts.append(f'<text x="{left - 8}" y="{y + 15}" class="label">{name}</text>')
            parts.append(
                f'<rect x="{left}" y="{y + 3}" width="{scale * share:.1f}" height="16" '
                f'fill="{_colour(i)}" opacity="{1 - 0.18 * steps.index(step):.2f}"/>'
            )
            parts.append(
                f'<text x="{left + scale * share + 6:.1f}" y="{y + 15}" class="value">'
                f"{g.funnel[step]:,} ({_pct(share)})</text>"
            )
            y += row
        y += 10
    parts.append("</svg>")
    return "".join(parts)


def _legend(groups: list[GroupReport]) -> str:
    return "".join(
        f'<span class="key"><i style="background:{_colour(i)}"></i>{_E(g.label)}</span>'
        for i, g in enumerate(groups)
    )


def _metric_rows(report: Report) -> str:
    rows = []
    for block in TABLE_BLOCKS:
        for title, metric, fmt in block:
            cells = [f"<th>{_E(title)}</th>"]
            for g in report.groups:
                e = g.metrics[metric]
                if e.value is None:
                    cells.append("<td>–</td>")
                    continue
                ci = f"<small>{fmt(e.ci[0])} – {fmt(e.ci[1])}</small>" if e.ci else ""
                diff = ""
                cls = ""
                if e.vs_baseline is not None:
                    d = e.vs_baseline.diff
                    shown = _signed(fmt, d)
                    cls = ' class="sig"' if e.vs_baseline.significant else ""
                    diff = f"<small>{'significant ' if cls else ''}vs baseline {shown}</small>"
                cells.append(f"<td{cls}>{fmt(e.value)}{ci}{diff}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
    return "".join(rows)


def render_html(report: Report) -> str:
    """One self-contained page (inline CSS and SVG; no script, font or network).

    A Content-Security-Policy of ``default-src 'none'`` makes the browser refuse any fetch
    the page might try, so opening it never touches the network.
    """
    groups = report.groups
    tta_labels = [f"<{_tick_duration(e)}" for e in TTA_EDGES_MS] + [
        f"≥{_tick_duration(TTA_EDGES_MS[-1])}"
    ]
    strength_labels = [f"{e - 0.1:g}–{e:g}" for e in STRENGTH_EDGES] + [f"{STRENGTH_EDGES[-1]:g}–1"]
    head = "".join(
        f"<th>{_E(g.label)}{' <em>baseline</em>' if g.is_baseline else ''}"
        f"<small>{g.exposures:,} exposures</small></th>"
        for g in groups
    )
    malformed = report.source.get("malformed") or {"count": 0, "first": []}
    bad = "".join(
        f"<li><code>{_E(m['file'])}:{m['line']}</code> {_E(m['reason'])}</li>"
        for m in malformed["first"]
    )
    params = report.params
    window = (
        f"act-on window {_secs(params['action_window_ms'])}, "
        f"outcome window {_secs(params['outcome_window_ms'])}"
    )
    span = ""
    if params.get("since") or params.get("until"):
        span = f" · exposures from {params.get('since') or '…'} to {params.get('until') or '…'}"
    body = f"""
<header><h1>signalkit report</h1>
<p>{len(groups)} groups by <b>{_E(" / ".join(report.by))}</b> · baseline
<b>{_E(str(report.baseline))}</b> · {_E(window)}{_E(span)}</p>
<p class="muted">{_E(_source_line(report))} · generated {_E(report.to_dict()["generated_at"])}</p>
</header>
<section><h2>Metrics</h2>
<div class="scroll"><table><thead><tr><th></th>{head}</tr></thead>
<tbody>{_metric_rows(report)}</tbody></table></div>
<p class="muted">95% intervals under each value: Wilson for rates, normal for means,
order statistics for medians and p90. Highlighted: the difference from the baseline is
significant (see docs/report.md).</p></section>
<section class="charts">
<figure><figcaption>Act-on rate (95% interval)</figcaption>
{_svg_rates(groups, "act_on_rate", "act-on rate per group")}</figure>
<figure><figcaption>Time to action (share of acted-on exposures)</figcaption>
<div class="legend">{_legend(groups)}</div>
{_svg_histogram(groups, lambda g: g.time_to_action_histogram, tta_labels, "time to action")}
</figure>
<figure><figcaption>Signal strength (share of scored signals)</figcaption>
<div class="legend">{_legend(groups)}</div>
{_svg_histogram(groups, lambda g: g.strength_histogram, strength_labels, "strength")}
</figure>
<figure><figcaption>Outcome funnel</figcaption>{_svg_funnel(groups)}</figure>
</section>
<section><h2>Data</h2>
<p>{malformed["count"]:,} malformed lines skipped{":" if bad else "."}</p>
{"<ul>" + bad + "</ul>" if bad else ""}
<p>{report.orphan_signals:,} signals whose exposure is not in the source.</p></section>
"""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>signalkit report — {_E(" / ".join(report.by))}</title>
<style>
body{{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;
max-width:1400px;padding:24px;color:#1d2330;background:#fff}}
h1{{margin:0 0 4px;font-size:24px}} h2{{font-size:18px;margin:28px 0 8px}}
.muted{{color:#667085;font-size:13px}}
table{{border-collapse:collapse;width:100%}}
th,td{{text-align:left;padding:6px 10px;border-bottom:1px solid #e4e7ec;vertical-align:top;
min-width:150px}}
.scroll{{overflow-x:auto}} tr>:first-child{{position:sticky;left:0;background:#fff;
min-width:180px;z-index:1}} thead tr>:first-child{{background:#f6f7f9}}
td small,th small{{display:block;color:#667085;font-size:12px;font-weight:normal}}
thead th{{background:#f6f7f9}} em{{font-style:normal;font-size:11px;background:#e4e7ec;
padding:1px 5px;border-radius:8px;margin-left:4px}}
td.sig{{background:#eef4ff}} td.sig small:last-child{{color:#1f4fc1;font-weight:600}}
.charts{{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:18px;
margin-top:24px;align-items:start}}
figure{{margin:0;border:1px solid #e4e7ec;border-radius:8px;padding:12px}}
figcaption{{font-weight:600;margin-bottom:6px}}
svg{{width:100%;height:auto;font-size:12px}}
.grid{{stroke:#e4e7ec}} .tick{{text-anchor:middle;fill:#667085}}
.ytick{{text-anchor:end;fill:#667085}} .label{{text-anchor:end;fill:#1d2330}}
.glabel{{font-weight:600;fill:#1d2330}} .value{{fill:#1d2330}}
.whisker{{stroke:#1d2330;stroke-width:1.5;fill:none}}
.legend{{font-size:12px}} .key{{margin-right:14px;white-space:nowrap;display:inline-block}}
.key i{{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}}
</style></head><body>{body}</body></html>
"""
