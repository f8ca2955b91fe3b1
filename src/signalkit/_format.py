"""One readable line per event: used by the console exporter and ``signalkit tail``."""

from __future__ import annotations

from typing import Any

__all__ = ["format_event"]

_KIND_WIDTH = 10


def _short(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _detail(e: dict[str, Any]) -> str:
    kind = e.get("kind")
    ttl = e.get("time_to_action_ms")
    after = f" after {ttl / 1000:.1f}s" if isinstance(ttl, int | float) else ""
    if kind == "exposure":
        model = e.get("model") or {}
        ref = "/".join(str(model[k]) for k in ("name", "version", "variant") if model.get(k))
        items = e.get("items") or []
        lat = e.get("latency_ms")
        lat_s = f" in {lat:.0f}ms" if isinstance(lat, int | float) else ""
        return f"{e.get('surface')} by {ref or '?'}{lat_s}" + (
            f", {len(items)} items" if items else ""
        )
    if kind == "action":
        item = f" item {e['item_id']}" if e.get("item_id") else ""
        return f"{e.get('action')}{item}{after}"
    if kind == "correction":
        sim = e.get("similarity")
        sim_s = f"similarity {sim:.2f}" if isinstance(sim, int | float) else ""
        return f"{sim_s}, {_short(str(e.get('original', '')), 24)!r} → " + repr(
            _short(str(e.get("corrected", "")), 24)
        )
    if kind == "toggle":
        elem = f" {e['element']}" if e.get("element") else ""
        dwell = e.get("dwell_ms")
        dwell_s = f", open {dwell / 1000:.1f}s" if isinstance(dwell, int | float) else ""
        return f"{e.get('state')}{elem}{after}{dwell_s}"
    if kind == "outcome":
        value = f" value={e['value']:g}" if isinstance(e.get("value"), int | float) else ""
        success = e.get("success")
        ok = " success" if success is True else " failed" if success is False else ""
        delay = e.get("delay_ms")
        delay_s = f" after {delay / 3_600_000:.2f}h" if isinstance(delay, int | float) else ""
        return f"{e.get('name')}{value}{ok}{delay_s}"
    if kind == "feedback":
        parts = []
        if e.get("rating") is not None:
            parts.append(f"rating {e['rating']:g}")
        if e.get("choice"):
            parts.append(f"chose {e['choice']}")
        if e.get("comment"):
            parts.append(repr(_short(str(e["comment"]))))
        return ", ".join(parts)
    return ""


def format_event(e: dict[str, Any]) -> str:
    """One line: ``11-24 12:00:01.234 action  accepted after 2.1s  s=0.66 p=+1.00  exp …``."""
    ts = str(e.get("ts", ""))
    clock = f"{ts[5:10]} {ts[11:23]}" if len(ts) >= 23 else ts
    score = e.get("score") or {}
    strength, polarity = score.get("strength"), score.get("polarity")
    score_s = (
        f"s={strength:.2f} p={polarity:+.2f}"
        if isinstance(strength, int | float) and isinstance(polarity, int | float)
        else "s=?    p=?    "
    )
    user = (e.get("subject") or {}).get("user_id")
    exp = str(e.get("exposure_id", ""))[:13]
    tail = f"  user {user}" if user else ""
    kind = str(e.get("kind", "?")).ljust(_KIND_WIDTH)
    return f"{clock} {kind} {_short(_detail(e), 56):<56} {score_s}  exp {exp}{tail}"
