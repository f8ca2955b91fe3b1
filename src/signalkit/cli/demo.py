"""``signalkit demo``: a simulated support product run through the real public API.

A few hundred users ask for help over a simulated week. Each ticket gets an AI-drafted reply
from one of two model versions (assigned per user, like an A/B test) and a ranked list of
knowledge-base articles. Users accept drafts (fast or after reading), correct them, ignore or
dismiss them, expand and collapse the explanation, rate them, and tickets get resolved hours
later. The backend records exposures; a separate "web relay" client records the browser's
signals from the exposure tokens, as a second process sharing the secret would. Everything is
backfilled with ``at=`` so a week of history runs in seconds, written to JSONL, read back and
summarised per model version.
"""

from __future__ import annotations

import random
import secrets
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import orjson

from .. import Client, Item, JsonlExporter, context

__all__ = ["DemoResult", "run_demo"]

BASELINE, CANDIDATE = "2026-10-01", "2026-11-01"
QUALITY = {BASELINE: 0.52, CANDIDATE: 0.68}
"""Chance a draft is good enough to send as is, per model version."""
SPEED = {BASELINE: 1.0, CANDIDATE: 0.8}
"""Relative time users need to judge a draft: clearer drafts are judged faster."""

PERSONAS = (  # name, share, read-time scale (s), edits instead of dismissing
    ("skimmer", 0.2, 0.6, 0.3),
    ("careful", 0.4, 9.0, 0.6),
    ("editor", 0.25, 6.0, 0.9),
    ("busy", 0.15, 4.0, 0.2),
)
TOPICS = ("refund", "login", "shipping", "billing", "cancel", "upgrade", "bug", "invoice")
OPENERS = ("Hi {name},", "Hello {name},", "Dear {name},")
BODIES = {
    "refund": "your refund for order {n} was approved and will reach your card in 3-5 days.",
    "login": "you can reset your password from the sign-in page using the link we sent.",
    "shipping": "your parcel {n} left our warehouse today and should arrive this week.",
    "billing": "we have corrected the charge on your account; the difference is credited.",
    "cancel": "your subscription is cancelled and you keep access until the period ends.",
    "upgrade": "your plan is now upgraded; the new features are available right away.",
    "bug": "our team reproduced the issue and a fix ships in the next release.",
    "invoice": "you can download invoice {n} from the billing page of your account.",
}
EDITS = (
    "Thanks for your patience!",
    "Sorry for the trouble.",
    "Let me know if anything else comes up.",
)


@dataclass
class DemoResult:
    path: Path
    events: int
    users: int
    exposures: int
    seconds: float


class _Progress:
    """A one-line progress bar on a stream (stderr), redrawn at most every 50 ms."""

    def __init__(self, total: int, stream: TextIO, enabled: bool) -> None:
        self.total, self.stream, self.enabled = total, stream, enabled
        self.start = self.last = time.monotonic()

    def update(self, done: int, note: str) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.05 and done < self.total):
            return
        if not self.stream.isatty():  # a log file gets a line per quarter, not a redraw storm
            quarter = 4 * done // self.total
            if quarter == 4 * (done - 1) // self.total:
                return
            self.stream.write(
                f"  {100 * done / self.total:5.1f}%  {done}/{self.total} users  {note}\n"
            )
            return
        self.last = now
        width = 30
        filled = int(width * done / self.total)
        bar = "█" * filled + "░" * (width - filled)
        pct = 100 * done / self.total
        self.stream.write(f"\r  {bar} {pct:5.1f}%  {done}/{self.total} users  {note}   ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.stream.isatty():
            self.stream.write("\n")
            self.stream.flush()


def _draft(rng: random.Random, topic: str, name: str) -> str:
    """The simulated AI call: a short support reply."""
    time.sleep(0.0005)  # stands in for model latency, so latency_ms is not zero
    n = rng.randint(10_000, 99_999)
    return f"{rng.choice(OPENERS).format(name=name)} {BODIES[topic].format(n=n)}"


def _edit(rng: random.Random, text: str, badness: float) -> str:
    """What the user changes: a typo fix, a sentence added, or a rewrite."""
    if badness < 0.3:
        i = rng.randrange(len(text))
        return text[:i] + text[i + 1 :]
    if badness < 0.7:
        return f"{text} {rng.choice(EDITS)}"
    words = text.split()
    rng.shuffle(words)
    return " ".join(words[: max(3, len(words) // 2)]) + f" {rng.choice(EDITS)}"


def run_demo(
    path: Path,
    *,
    users: int = 300,
    seed: int = 7,
    progress: bool = True,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> DemoResult:
    """Simulate ``users`` users for a week, record their signals, print the summary."""
    out = out or sys.stdout
    err = err or sys.stderr
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    secret = secrets.token_urlsafe(32)  # shared by "both processes", as SIGNALKIT_SECRET would be
    backend = Client("support-assistant", exporters=[JsonlExporter(path)], secret=secret)
    relay = Client("support-web", exporters=[JsonlExporter(path)], secret=secret)
    started = time.monotonic()
    week_start = datetime.now(UTC) - timedelta(days=7)
    bar = _Progress(users, err, progress)
    out.write(f"signalkit demo: {users} users, two reply-drafter versions, one simulated week\n")
    exposures = 0
    for u in range(users):
        user = f"user-{u:04d}"
        version = CANDIDATE if rng.random() < 0.5 else BASELINE
        persona, _, read_s, edits = rng.choices(PERSONAS, weights=[p[1] for p in PERSONAS])[0]
        t = week_start + timedelta(hours=rng.uniform(0, 24))
        for _ in range(rng.randint(2, 9)):
            t += timedelta(hours=rng.expovariate(1 / 14))
            if t >= datetime.now(UTC) - timedelta(minutes=5):
                break
            topic = rng.choice(TOPICS)
            with backend.exposure(
                "reply-draft",
                model="reply-drafter",
                model_version=version,
                user_id=user,
                at=t,
                attributes={"topic": topic, "persona": persona},
            ) as exp:
                draft = _draft(rng, topic, user)
            exposures += 1
            token = exp.token  # travels to the browser with the draft
            with context(user_id=user):  # the relay's request is authenticated as the user
                _simulate_user(rng, relay, token, draft, t, version, read_s, edits)
                if rng.random() < 0.5:
                    _simulate_kb(rng, backend, relay, user, version, t)
                    exposures += 1
        bar.update(u + 1, f"{backend.stats.recorded + relay.stats.recorded:,} events")
    bar.close()
    ok = backend.flush(10) and relay.flush(10)
    backend.shutdown(5)
    relay.shutdown(5)
    elapsed = time.monotonic() - started
    raw = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    out.write(f"\nwrote {len(raw):,} events to {path} in {elapsed:.1f} s\n\n")
    out.write(_report_table(path) + "\n\n")
    dropped = backend.stats.total_dropped + relay.stats.total_dropped
    rejected = backend.stats.total_rejected + relay.stats.total_rejected
    out.write(
        f"recorded {backend.stats.recorded + relay.stats.recorded:,}, written {len(raw):,}, "
        f"dropped {dropped}, rejected {rejected}{'' if ok else ' (flush timed out)'}\n"
    )
    out.write(f"next: signalkit tail {path}   ·   signalkit schema\n")
    out.write(f"      signalkit report {path} --surface reply-draft\n")
    out.write(f"      signalkit report {path} --surface reply-draft --format html -o report.html\n")
    return DemoResult(path, len(raw), users, exposures, elapsed)


def _report_table(path: Path) -> str:
    """The reply drafts' metrics per model version: ``signalkit report``'s own table."""
    try:
        from ..analytics import INSTALL_HINT, MissingDependency, build_report
        from ..analytics._render import render_table

        report = build_report(path, surfaces=["reply-draft"])
    except MissingDependency:
        return f"(the per-version table needs DuckDB: {INSTALL_HINT})"
    return "reply drafts, per model version:\n" + render_table(report)


def _simulate_user(
    rng: random.Random,
    relay: Client,
    token: str,
    draft: str,
    shown: datetime,
    version: str,
    read_s: float,
    edits: float,
) -> None:
    good = rng.random() < QUALITY[version]
    t = shown
    if rng.random() < 0.35:  # opens the "why this reply" explanation
        t += timedelta(seconds=rng.uniform(1, 4))
        relay.toggle(token, "expanded", element="explanation", at=t)
        t += timedelta(seconds=rng.uniform(4, 30) if good else rng.uniform(0.3, 1.8))
        relay.toggle(token, "collapsed", element="explanation", at=t)
    think = timedelta(seconds=rng.lognormvariate(0, 0.5) * read_s * SPEED[version])
    sent = False
    if good:
        relay.action(token, "accepted", at=t + think)
        sent = True
    elif rng.random() < edits:
        badness = rng.random()
        relay.correction(token, draft, _edit(rng, draft, badness), at=t + think * 2)
        sent = True
    elif rng.random() < 0.6:
        relay.action(token, "dismissed", at=t + think)
    # else: ignored; analysis treats it as a censored weak negative
    if rng.random() < 0.12:
        rating = 1 if (good or (sent and rng.random() < 0.5)) else -1
        relay.feedback(token, rating, at=t + think + timedelta(seconds=5))
    p_resolved = 0.75 if good else 0.55 if sent else 0.3
    if rng.random() < 0.8:
        later = t + think + timedelta(hours=rng.expovariate(1 / 6))
        if later < datetime.now(UTC):
            relay.outcome(token, "ticket_resolved", success=rng.random() < p_resolved, at=later)


def _simulate_kb(
    rng: random.Random, backend: Client, relay: Client, user: str, version: str, t: datetime
) -> None:
    articles = rng.sample(range(100, 400), 3)
    with backend.exposure(
        "kb-suggestions", model="kb-ranker", model_version=version, user_id=user, at=t
    ) as exp:
        exp.items = [
            Item(id=f"kb-{a}", position=i, propensity=round(0.6 / (i + 1), 3))
            for i, a in enumerate(articles)
        ]
    if rng.random() < 0.4:
        pick = rng.randrange(3)
        relay.action(
            exp.token,
            "clicked",
            item_id=f"kb-{articles[pick]}",
            at=t + timedelta(seconds=rng.uniform(2, 40)),
        )
