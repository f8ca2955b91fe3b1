"""A small Langfuse stand-in on 127.0.0.1: the two score-writing endpoints, checked as Langfuse
checks them.

- ``POST /api/public/ingestion``: ``{"batch": [...]}``, Basic auth ``public:secret``; each
  ``score-create`` event is validated like Langfuse's zod schema (envelope ``id``,
  ``timestamp`` with an offset, ``body`` with ``name``, a ``value`` of the ``dataType``'s kind,
  exactly one of traceId / sessionId / datasetRunId, observationId only with traceId, the
  environment rule) and answered 207 ``{"successes": [{id, status: 201}], "errors": [{id,
  status, message, error}]}``.
- ``POST /api/public/scores``: the list the Langfuse Python SDK v5 sends; answered 202.

Scores are stored by id, so a score sent again overwrites itself (as in Langfuse's
ReplacingMergeTree) and :attr:`LangfuseServer.writes` tells how often each id was written.
Faults: :meth:`fail_next` answers whole requests with a status; :attr:`event_status` may
answer an event id with a per-event status (its score is then not stored).
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ENV = re.compile(r"^[a-z0-9_-]{1,40}$")


class LangfuseServer:
    """The stand-in; use as a context manager."""

    def __init__(self, public_key: str, secret_key: str) -> None:
        self.auths = {_basic(public_key, secret_key)}
        self.scores: dict[str, dict[str, Any]] = {}
        """Stored scores by id: the body, with the envelope's timestamp as ``timestamp``."""
        self.writes: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        """(path, headers, parsed JSON body) of every request."""
        self.statuses: list[int] = []
        self.peers: list[int] = []
        """The client's port of every request: a new port is a new connection."""
        self.event_status: Callable[[str], tuple[int, str] | None] = lambda _id: None
        self._next: list[int] = []
        self._lose: list[int] = []
        self._raw_next: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    raw = gzip.decompress(raw)
                server.peers.append(self.client_address[1])
                status, answer = server._handle(self.path, dict(self.headers.items()), raw)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> LangfuseServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def allow(self, public_key: str, secret_key: str) -> None:
        """Take these keys too."""
        self.auths.add(_basic(public_key, secret_key))

    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, storing nothing."""
        with self._lock:
            self._next.extend(statuses)

    def lose_next_answer(self, status: int) -> None:
        """Handle the next request, then answer it with ``status`` as if the answer was lost."""
        with self._lock:
            self._lose.append(status)

    def answer_next(self, status: int, text: str) -> None:
        """Answer the next request with ``status`` and this (non-JSON) text, storing nothing."""
        with self._lock:
            self._raw_next.append((status, text))

    def ingestion_requests(self) -> list[tuple[str, dict[str, str], Any]]:
        """The requests to the ingestion endpoint."""
        return [r for r in self.requests if r[0] == "/api/public/ingestion"]

    def _handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        scoring = path in ("/api/public/ingestion", "/api/public/scores")
        body = json.loads(raw) if raw and scoring else None  # spans come as protobuf
        with self._lock:
            self.requests.append((path, {k.lower(): v for k, v in headers.items()}, body))
            if self._next:
                status = self._next.pop(0)
                self.statuses.append(status)
                return status, {"message": f"stand-in says {status}"}
            if self._raw_next:
                status, text = self._raw_next.pop(0)
                self.statuses.append(status)
                return status, text.encode()
            lose = self._lose.pop(0) if self._lose else None
        if headers.get("Authorization", headers.get("authorization")) not in self.auths:
            self.statuses.append(401)
            return 401, {"message": "Invalid credentials"}
        if path == "/api/public/ingestion":
            answer = self._ingest(body)
            if lose is not None:
                self.statuses.append(lose)
                return lose, {"message": "the answer was lost"}
            self.statuses.append(207)
            return 207, answer
        if path == "/api/public/scores":
            for score in body:
                self._store(score["id"], score, score["timestamp"])
            self.statuses.append(202)
            return 202, {"message": "Accepted"}
        self.statuses.append(200)
        return 200, {}

    def _ingest(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
            raise AssertionError(f"not an ingestion body: {body!r:.200}")
        successes: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for event in body["batch"]:
            event_id = event.get("id") if isinstance(event, dict) else None
            problem = _invalid(event)
            if problem is not None:
                errors.append(
                    {
                        "id": event_id if isinstance(event_id, str) else "unknown",
                        "status": 400,
                        "message": "Invalid request data",
                        "error": problem,
                    }
                )
                continue
            injected = self.event_status(event_id)
            if injected is not None:
                status, message = injected
                errors.append({"id": event_id, "status": status, "error": message})
                continue
            self._store(event["body"]["id"], event["body"], event["timestamp"])
            successes.append({"id": event_id, "status": 201})
        return {"successes": successes, "errors": errors}

    def _store(self, score_id: str, body: dict[str, Any], timestamp: str) -> None:
        with self._lock:
            self.scores[score_id] = {**body, "timestamp": timestamp}
            self.writes[score_id] += 1


def _basic(public_key: str, secret_key: str) -> str:
    return "Basic " + base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()


def _invalid(event: Any) -> str | None:
    """What Langfuse's schema would say about a score-create event, or None if it is valid."""
    if not isinstance(event, dict):
        return "event is not an object"
    if event.get("type") != "score-create":
        return f"type must be score-create, got {event.get('type')!r}"
    event_id = event.get("id")
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 800 or "\r" in event_id:
        return "id must be a string of 1 to 800 characters"
    timestamp = event.get("timestamp")
    try:
        parsed = datetime.fromisoformat(timestamp) if isinstance(timestamp, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        return "timestamp must be an ISO 8601 datetime with an offset"
    body = event.get("body")
    if not isinstance(body, dict):
        return "body must be an object"
    if not isinstance(body.get("name"), str) or not body["name"]:
        return "body.name must be a non-empty string"
    data_type, value = body.get("dataType"), body.get("value")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if data_type == "NUMERIC" and not number:
        return "NUMERIC value must be a number"
    if data_type == "BOOLEAN" and (not number or value not in (0, 1)):
        return "BOOLEAN value must be 0 or 1"
    if data_type == "CATEGORICAL" and not isinstance(value, str):
        return "CATEGORICAL value must be a string"
    if data_type not in ("NUMERIC", "BOOLEAN", "CATEGORICAL", "CORRECTION", "TEXT", None):
        return f"unknown dataType {data_type!r}"
    has = [bool(body.get(k)) for k in ("traceId", "sessionId", "datasetRunId")]
    if sum(has) != 1 or (body.get("observationId") and not has[0]):
        return "Provide exactly one of traceId (with optional observationId), sessionId, ..."
    environment = body.get("environment")
    if environment is not None and not _ENV.match(environment):
        return "environment must be lowercase letters, digits, - or _"
    if "metadata" in body and body["metadata"] is not None:
        json.dumps(body["metadata"])
    return None
