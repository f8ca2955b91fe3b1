"""Pipe signalkit's scored signals into PostHog, next to the JSONL the datasets are built from.

    uv run examples/posthog_pipe/pipe.py

With ``POSTHOG_API_KEY`` set (and ``POSTHOG_HOST``, default ``https://us.i.posthog.com``) the
events go to your PostHog project. Without a key the script starts a local stand-in for
PostHog's ``/batch/`` endpoint on 127.0.0.1 and prints what it received, so you can see the
exact payload without an account.
"""

from __future__ import annotations

import gzip
import http.server
import json
import os
import random
import sys
import tempfile
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from signalkit_posthog import PostHogExporter

import signalkit as sk


class _LocalPostHog(http.server.ThreadingHTTPServer):
    """Accepts PostHog batch requests on 127.0.0.1 and keeps what arrived."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.events: list[dict[str, Any]] = []
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _LocalPostHog

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        doc = json.loads(body)
        ok = self.path.rstrip("/") == "/batch" and doc.get("api_key") and "batch" in doc
        if ok:
            self.server.events.extend(doc["batch"])
            self.server.requests += 1
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "Ok"}' if ok else b'{"error": "bad request"}')

    def log_message(self, format: str, *args: Any) -> None:
        pass


def simulate(client: sk.Client, users: int, rng: random.Random) -> None:
    """A support product over the last hour: AI reply drafts, and what agents did with them.

    Times are backfilled with ``at=`` so time-to-action and outcome delay look like real use.
    """
    start = datetime.now(UTC) - timedelta(hours=1)
    for u in range(users):
        shown = start + timedelta(seconds=rng.uniform(0, 3000))
        later = shown
        version = "v2" if u % 2 else "v1"
        with sk.context(user_id=f"agent-{u}"):
            with client.exposure(
                "reply-draft", model="drafter", model_version=version, at=shown
            ) as exp:
                draft = f"Hello! Your order #{1000 + u} ships tomorrow."
            later += timedelta(seconds=rng.uniform(0.5, 4))
            client.toggle(exp, "expanded", element="sources", at=later)
            if rng.random() < 0.3:
                later += timedelta(seconds=rng.uniform(5, 40))
                client.correction(exp, draft, draft.replace("Hello!", "Hi Sam,"), at=later)
            later += timedelta(seconds=rng.uniform(1, 20))
            if rng.random() < 0.7:
                client.action(exp, "accepted", at=later)
                if rng.random() < 0.5:
                    later += timedelta(minutes=rng.uniform(1, 10))
                    client.outcome(exp, "ticket_resolved", success=True, at=later)
            else:
                client.action(exp, "dismissed", at=later)


def main() -> int:
    key = os.environ.get("POSTHOG_API_KEY")
    local = None
    if key:
        host = os.environ.get("POSTHOG_HOST", "https://us.i.posthog.com")
    else:
        local = _LocalPostHog()
        threading.Thread(target=local.serve_forever, daemon=True).start()
        key, host = "phc_local_stand_in", local.url
        print(f"No POSTHOG_API_KEY: sending to a local stand-in for PostHog at {host}")

    out = Path(os.environ.get("SIGNALKIT_DIR") or tempfile.mkdtemp()) / "posthog_pipe.jsonl"
    client = sk.Client(
        "support-assistant",
        exporters=[sk.JsonlExporter(out), PostHogExporter(key, host=host)],
    )
    simulate(client, users=int(os.environ.get("USERS", "25")), rng=random.Random(7))
    delivered = client.shutdown(timeout=30)
    stats = client.stats
    posthog = stats.exporters["posthog"]
    print(f"recorded {stats.recorded} events; JSONL at {out}")
    print(
        f"PostHog exporter: delivered {posthog.delivered}, "
        f"dropped {sum(posthog.dropped.values())}{f' {posthog.dropped}' if posthog.dropped else ''}"
        f", pending {posthog.pending}"
    )
    if local is not None:
        kinds = Counter(e["event"] for e in local.events)
        print(f"the stand-in received {len(local.events)} events in {local.requests} request(s):")
        for name, n in sorted(kinds.items()):
            print(f"  {name:28s} {n:4d}")
        sample = next(e for e in local.events if e["event"].endswith("correction"))
        print("one of them, as PostHog receives it:")
        print(json.dumps(sample, indent=2, sort_keys=True))
        local.shutdown()
    ok = delivered and not posthog.dropped and posthog.delivered == stats.recorded
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
