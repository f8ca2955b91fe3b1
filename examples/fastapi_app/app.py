"""A FastAPI support desk whose AI reply suggestions report what users do with them.

    uv run examples/fastapi_app/app.py

Serves http://127.0.0.1:8000 (``PORT`` changes the port). Events go to
``./.signalkit/events.jsonl`` (``SIGNALKIT_DIR`` moves it). Open the page, expand "Why this
reply?", close it, click "Use this reply": the toggles and the action arrive through the browser
relay, signed by the exposure token the page was given, dated on the server's clock.
"""

from __future__ import annotations

import hashlib
import html
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from signalkit_starlette import SignalkitMiddleware, relay_routes
from starlette.requests import HTTPConnection

import signalkit as sk

client = sk.Client("support-desk")  # JSONL under ./.signalkit/ (SIGNALKIT_DIR moves it)

TICKETS = {
    "T-1001": "Where is my refund? I returned the shoes two weeks ago.",
    "T-1002": "The app logs me out every time I switch networks.",
    "T-1003": "Can I change the delivery address of order 5531?",
}
TEMPLATES = (
    "Hi! Thanks for your patience. {gist} I have checked your account and will follow up today.",
    "Hello, sorry about the trouble. {gist} You will get an update from us within 24 hours.",
)


@client.recommendation("reply-draft", model="fake-drafter", model_version="2026-11-01")
def draft_reply(ticket: str) -> str:
    """A deterministic stand-in for the model: the same ticket always gets the same draft."""
    pick = hashlib.sha256(ticket.encode()).digest()[0] % len(TEMPLATES)
    gist = f"About '{ticket[:40]}':"
    return TEMPLATES[pick].format(gist=gist)


def identify(conn: HTTPConnection) -> dict[str, str | None]:
    """Who is signed in: this demo's 'login' is a cookie set by /login/{name}."""
    return {"user_id": conn.cookies.get("demo_user"), "tenant_id": "demo"}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    client.shutdown()  # delivers what is queued before the server exits


app = FastAPI(title="signalkit support desk", lifespan=lifespan)
app.add_middleware(SignalkitMiddleware, identify=identify)
app.router.routes.extend(relay_routes(client))  # POST /signals, GET /signals.js


@app.get("/api/suggest")
def suggest(ticket: str) -> dict[str, str]:
    """The reply suggestion as JSON, with the token the page sends back with its signals."""
    text = draft_reply(ticket)
    exposure = sk.current_exposure()
    assert exposure is not None
    return {"text": text, "exposure_id": exposure.id, "token": exposure.token}


@app.get("/login/{name}")
def login(name: str) -> RedirectResponse:
    """Pretend sign-in: later requests (and the signals they send) carry this user id."""
    response = RedirectResponse("/", status_code=303)
    response.set_cookie("demo_user", name[:40], httponly=True, samesite="lax")
    return response


@app.get("/", response_class=HTMLResponse)
def ticket_page(ticket: str = "T-1001") -> str:
    """A ticket with the AI's suggested reply, wired to the relay by data attributes."""
    question = TICKETS.get(ticket, TICKETS["T-1001"])
    suggestion = suggest(question)
    e = html.escape
    return PAGE.format(
        ticket=e(ticket),
        question=e(question),
        text=e(suggestion["text"]),
        token=e(suggestion["token"], quote=True),
        exposure_id=e(suggestion["exposure_id"]),
    )


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ticket {ticket}</title>
<script src="/signals.js" data-endpoint="/signals" defer></script>
<style>body{{font:16px system-ui;max-width:40em;margin:2em auto}}
.ai{{border:1px solid #aac;border-radius:8px;padding:1em}}</style></head>
<body>
<h1>Ticket {ticket}</h1>
<p>{question}</p>
<section class="ai" id="suggestion" data-exposure-id="{exposure_id}"
 data-signalkit-token="{token}">
  <h2>Suggested reply</h2>
  <p id="draft">{text}</p>
  <details id="why" data-signalkit-toggle="explanation">
    <summary>Why this reply?</summary>
    <p>Drafted from the ticket text by the fake drafter (deterministic, no network).</p>
  </details>
  <button id="accept" data-signalkit-action="accepted">Use this reply</button>
  <button id="dismiss" data-signalkit-action="dismissed">Dismiss</button>
  <button id="up" data-signalkit-feedback="1">&#128077;</button>
  <button id="down" data-signalkit-feedback="-1">&#128078;</button>
</section>
</body></html>
"""

if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    print(f"signalkit support desk on http://127.0.0.1:{port}/", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
