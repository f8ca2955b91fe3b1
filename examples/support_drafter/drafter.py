"""A support agent's reply drafter on OpenAI, recording what agents do with each draft.

    uv run examples/support_drafter/drafter.py [--dir DIR] [--tickets N] [--seed S]

For each simulated ticket it asks ``openai.OpenAI().chat.completions.create`` for a draft
reply, with the client instrumented by ``signalkit_openai``: every draft is an exposure
(model, latency, ``gen_ai.response.id``, token usage). The draft and its exposure token are
stored with the ticket, as a helpdesk would; later a simulated agent reads the ticket and
sends the draft as is, edits it (a correction, scored by the size of the edit), expands its
sources or discards it, and later still the ticket is resolved or comes back (an outcome).

With ``OPENAI_API_KEY`` set it uses the real API (``OPENAI_BASE_URL`` is honoured, as the SDK
does); without it, it starts a local stand-in for the Chat Completions API on 127.0.0.1.
Events go to ``DIR/support_drafter.jsonl`` (``DIR``: ``--dir``, else ``$SIGNALKIT_DIR``, else
``./.signalkit``). It exits 1 if a draft failed or an event was rejected or not written.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openai
import signalkit_openai
from stand_in import LocalChatCompletions

import signalkit as sk

SYSTEM = (
    "You draft replies to customer support tickets for an online shop. Write a short, "
    "friendly email: a greeting with the customer's first name, what we did or will do, "
    "and a sign-off from 'The Support Team'. Plain text, no placeholders."
)

CUSTOMERS = ["Dana Whitfield", "Luis Ortega", "Mei Chen", "Sam Okafor", "Ines Duarte",
             "Tom Berg", "Aisha Rahman", "Noah Klein", "Zoe Martin", "Ravi Patel"]  # fmt: skip
ISSUES = [
    ("billing", "I was charged twice for order #{order}. Can I get a refund for the extra charge?"),
    ("shipping", "Where is my parcel? Order #{order} was due on Monday and has not arrived."),
    ("account", "I can't log in to my account: my password is refused and now I'm locked out."),
    ("cancellation", "Please cancel my subscription, I don't use it anymore."),
    ("damage", "The lamp from order #{order} arrived broken, the shade is cracked."),
]
AGENTS = ["Priya", "Jonas", "Keiko"]
FIXES = {  # what the agent knows and the draft could not
    "billing": "The duplicate charge on order #{order} is refunded today; banks show it within "
    "3 business days.",
    "shipping": "Order #{order} is held at your local depot after a failed delivery; you can "
    "pick it up tomorrow after 9 am or book a new delivery slot from the tracking page.",
    "account": "I've unlocked your account. Please use the reset link I just sent; it works for "
    "30 minutes.",
    "cancellation": "Your subscription is cancelled as of today and you won't be charged again. "
    "Your saved lists stay available if you come back.",
    "damage": "A new lamp from order #{order} ships today by express; no need to send the broken "
    "one back.",
}


@dataclass(frozen=True)
class Ticket:
    """One simulated support ticket."""

    id: str
    topic: str
    customer: str
    order: int
    text: str


def make_tickets(n: int, rng: random.Random) -> list[Ticket]:
    """N tickets from a few customers and issues (the same seed gives the same tickets)."""
    tickets = []
    for i in range(n):
        topic, template = rng.choice(ISSUES)
        customer = rng.choice(CUSTOMERS)
        order = rng.randint(10_000, 99_999)
        email = customer.lower().replace(" ", ".") + "@example.com"
        text = f"From: {customer} <{email}>\n\n{template.format(order=order)}"
        tickets.append(Ticket(f"T-{1001 + i}", topic, customer, order, text))
    return tickets


# -- the helpdesk: tickets, their drafts and the draft's exposure token ------------------------


def open_helpdesk() -> sqlite3.Connection:
    """The helpdesk's database (in memory here): a draft is stored with its ticket."""
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE TABLE tickets (id TEXT PRIMARY KEY, topic TEXT, customer TEXT, "
        "ord INTEGER, body TEXT, draft TEXT, signalkit_token TEXT, status TEXT)"
    )
    return db


def draft_replies(
    db: sqlite3.Connection, llm: openai.OpenAI, model: str, tickets: list[Ticket]
) -> tuple[list[sk.ExposureEvent], list[str]]:
    """Ask the model for a draft per ticket; store the draft and its exposure token.

    ``signalkit_openai.instrument`` records each completion as an exposure. Its attributes
    are per client, so each ticket is drafted on a copy (``with_options()`` shares the
    connection pool) that adds the ticket text as ``prompt``: the prompt of the preference
    pairs ``signalkit dataset`` builds. Returns the recorded exposures and the errors of
    drafts that failed.
    """
    exposures: list[sk.ExposureEvent] = []
    errors: list[str] = []
    for t in tickets:
        drafter = signalkit_openai.instrument(
            llm.with_options(),
            surface="reply-draft",
            digest=True,  # lets anyone check that a correction's original is what was shown
            attributes={"prompt": t.text, "ticket.id": t.id, "ticket.topic": t.topic},
        )
        try:
            completion = drafter.chat.completions.create(
                model=model,
                messages=[
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": t.text},
                ],
            )
        except openai.APIError as exc:  # nothing was shown: no exposure, no draft
            errors.append(f"{t.id}: {type(exc).__name__}: {exc}")
            if isinstance(exc, openai.AuthenticationError | openai.NotFoundError):
                break  # every other ticket would fail the same way
            continue
        exposure = signalkit_openai.exposure_of(completion)
        if exposure is not None and exposure.event is not None:
            exposures.append(exposure.event)
        draft = completion.choices[0].message.content or ""
        db.execute(
            "INSERT INTO tickets VALUES (?, ?, ?, ?, ?, ?, ?, 'drafted')",
            (t.id, t.topic, t.customer, t.order, t.text, draft,
             exposure.token if exposure else None),
        )  # fmt: skip
    db.commit()
    return exposures, errors


# -- the agents: what they do with each draft, later, knowing only the ticket row --------------


def edit(draft: str, row: sqlite3.Row, agent: str, rng: random.Random) -> str:
    """The agent's edit of a draft: from a touch-up to their own reply. Always a change."""
    first = row["customer"].split()[0]
    fix = FIXES[row["topic"]].format(order=row["ord"])
    paras = [p for p in draft.split("\n\n") if p.strip()]
    greeting, sign_off = f"Hi {first},", f"Best,\n{agent}"
    middle = paras[1:-1] if len(paras) >= 3 else paras
    kinds = ["touch-up", "add-fact", "replace-facts", "rewrite"]
    kind = rng.choices(kinds, weights=[3, 3, 2, 1])[0]
    if kind == "touch-up":  # personal greeting and sign-off
        paras = [greeting, *middle, sign_off]
    elif kind == "add-fact":  # the draft was vague: add what the agent knows
        paras = [greeting, *middle[:1], fix, *middle[1:], sign_off]
    elif kind == "replace-facts":  # the facts replaced, the draft's courtesy kept
        paras = [greeting, fix, *middle[1:], sign_off]
    else:  # the agent writes their own reply
        paras = [greeting, fix, sign_off]
    return "\n\n".join(paras)


def work_the_queue(db: sqlite3.Connection, rng: random.Random) -> dict[str, list[sk.Event]]:
    """The agents go through the drafted tickets; every choice is recorded against the token.

    Times are on a simulated clock (``at=``): seconds to minutes after the draft was shown,
    as when a person reads, edits and sends, so time-to-action is scored as in real use.
    """
    db.row_factory = sqlite3.Row
    done: dict[str, list[sk.Event]] = {
        k: [] for k in ("expanded", "sent", "edited", "discarded", "resolved", "unresolved")
    }

    def keep(name: str, event: sk.Event | None) -> None:
        if event is not None:  # None: rejected, counted in stats.rejected
            done[name].append(event)

    rows = db.execute("SELECT * FROM tickets WHERE signalkit_token IS NOT NULL ORDER BY id")
    for n, row in enumerate(rows.fetchall()):
        token, draft = row["signalkit_token"], row["draft"]
        agent = AGENTS[n % len(AGENTS)]
        # When the draft appeared: carried in the token, as in another process it would be.
        shown = datetime.fromtimestamp(sk.verify(token).shown_at_ms / 1000, UTC)
        with sk.context(user_id=f"agent-{agent.lower()}"):
            at = shown + timedelta(seconds=rng.uniform(4, 15))
            if rng.random() < 0.3:  # the agent checks which help articles the draft used
                keep("expanded", sk.toggle(token, "expanded", element="sources", at=at))
                at += timedelta(seconds=rng.uniform(5, 30))
            choice = rng.choices(["send", "edit", "discard"], weights=[4, 4, 2])[0]
            if choice == "send":
                keep("sent", sk.action(token, "accepted", at=at + timedelta(seconds=5)))
                reply, p_resolved = draft, 0.75
            elif choice == "edit":
                reply = edit(draft, row, agent, rng)
                at += timedelta(seconds=rng.uniform(30, 240))
                keep("edited", sk.correction(token, original=draft, corrected=reply, at=at))
                p_resolved = 0.9
            else:  # the agent throws the draft away and writes from scratch
                keep("discarded", sk.action(token, "rejected", at=at))
                db.execute("UPDATE tickets SET status = 'replied' WHERE id = ?", (row["id"],))
                continue  # the reply is the agent's own: its outcome says nothing of the draft
        # Later, the customer's answer (or silence) settles the ticket.
        resolved = rng.random() < p_resolved
        later = at + timedelta(minutes=rng.uniform(3, 30))
        keep(
            "resolved" if resolved else "unresolved",
            sk.outcome(token, "ticket_resolved", success=resolved, at=later),
        )
        status = "resolved" if resolved else "reopened"
        db.execute("UPDATE tickets SET status = ? WHERE id = ?", (status, row["id"]))
    db.commit()
    return done


# -- the run --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="where the JSONL goes (default ./.signalkit)")
    parser.add_argument("--tickets", type=int, default=40, help="how many tickets (default 40)")
    parser.add_argument("--seed", type=int, default=4, help="the simulation's seed (default 4)")
    parser.add_argument("--model", default="gpt-4o-mini", help="default gpt-4o-mini")
    args = parser.parse_args(argv)
    if args.tickets < 1:
        parser.error("--tickets: must be at least 1")
    out_dir = args.dir or Path(os.environ.get("SIGNALKIT_DIR") or ".signalkit")
    out = out_dir / "support_drafter.jsonl"
    rng = random.Random(args.seed)

    client = sk.configure("support-drafter", exporters=[sk.JsonlExporter(out)])
    stand_in = None
    if os.environ.get("OPENAI_API_KEY"):
        llm = openai.OpenAI()
        where = f"the OpenAI API at {llm.base_url} (OPENAI_API_KEY is set)"
    else:
        stand_in = LocalChatCompletions().__enter__()
        llm = openai.OpenAI(api_key="sk-local-stand-in", base_url=stand_in.base_url)
        where = f"a local stand-in for the OpenAI API at {stand_in.base_url} (no OPENAI_API_KEY)"
    db = open_helpdesk()
    try:
        exposures, errors = draft_replies(db, llm, args.model, make_tickets(args.tickets, rng))
        done = work_the_queue(db, rng)
    finally:
        if stand_in is not None:
            stand_in.__exit__()
    delivered = client.shutdown(timeout=5)  # a local file: 5 s is ample, or it is failing
    stats = client.stats

    latencies = [e.latency_ms for e in exposures if e.latency_ms is not None]
    models = sorted({e.model.name or "?" for e in exposures})
    similarities = [e.similarity for e in done["edited"] if isinstance(e, sk.CorrectionEvent)]
    sent = len(done["sent"]) + len(done["edited"])
    print(f"Drafted replies with {', '.join(models) or args.model} via {where}")
    rows = [
        ("tickets", f"{args.tickets}"),
        ("drafts", f"{len(exposures)}"
         + (f"   median latency {statistics.median(latencies):.0f} ms" if latencies else "")),
        ("sources expanded", f"{len(done['expanded'])}"),
        ("sent as is", f"{len(done['sent'])}"),
        ("edited", f"{len(done['edited'])}"
         + (f"   median similarity {statistics.median(similarities):.2f}" if similarities else "")),
        ("discarded", f"{len(done['discarded'])}"),
        ("resolved", f"{len(done['resolved'])} of {sent} sent"),
    ]  # fmt: skip
    for label, value in rows:
        count, _, rest = value.partition(" ")
        print(f"  {label:18s}{count:>5s} {rest}".rstrip())
    dropped = sum(stats.dropped.values())
    rejected = sum(stats.rejected.values())
    written = sum(lane.delivered for lane in stats.exporters.values())
    # an export still under way when shutdown's time ran out is counted when it returns
    pending = sum(lane.pending for lane in stats.exporters.values())
    print(
        f"recorded {stats.recorded} events: {written} written to {out}, "
        f"{dropped} dropped, {rejected} rejected"
        + (f", {pending} not written by exit" if pending else "")
    )
    for error in errors[:3]:
        print(f"draft failed: {error}", file=sys.stderr)
    if len(errors) > 3:
        print(f"... and {len(errors) - 3} more failed drafts", file=sys.stderr)
    if done["edited"]:
        print(
            f"The {len(done['edited'])} edits are preference pairs "
            "(rejected = the draft, chosen = what the agent sent):\n"
            f"  uv run signalkit dataset {out} --format pairs -o pairs.jsonl"
        )
    ok = delivered and not errors and not dropped and not rejected
    return 0 if ok and written == stats.recorded else 1


if __name__ == "__main__":
    sys.exit(main())
