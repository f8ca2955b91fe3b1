"""The README's example, runnable: `uv run python examples/quickstart.py`."""

import signalkit as sk

client = sk.Client(service="support-assistant")  # embedded default: JSONL under ./.signalkit/


@client.recommendation(surface="reply-draft", model="reply-drafter", model_version="2026-11-01")
def draft_reply(ticket: str) -> str:
    return f"Hi! About '{ticket}': your refund was approved today."  # your AI call goes here


reply = draft_reply("Where is my refund?")
token = sk.current_exposure().token  # signed; send it to the page along with the reply

# Later: another request, maybe another process that shares SIGNALKIT_SECRET.
client.toggle(token, "expanded", element="explanation")  # interest (weak)
client.toggle(token, "collapsed", element="explanation")  # dwell decides its meaning
fix = client.correction(token, original=reply, corrected=reply + " Thanks for waiting!")
client.action(token, "accepted")  # time-to-action comes from the token
client.outcome(token, "ticket_resolved", success=True)  # the ground truth (strongest)
client.feedback(token, rating=+1, comment="spot on")  # explicit thumbs up
client.shutdown()  # delivers what is queued

print(f"correction: strength {fix.score.strength}, polarity {fix.score.polarity}")
print("why:", "; ".join(r.note for r in fix.score.reasons), "| stats:", client.stats.recorded)
