"""A fake Anthropic Messages API on 127.0.0.1 for the real ``anthropic`` clients (``base_url``).

It answers ``POST /v1/messages`` with the ``Message`` JSON and the server-sent event stream
(``message_start``, ``content_block_start``, ``ping``, ``content_block_delta``...,
``message_delta``, ``message_stop``) the API reference documents, over real HTTP/1.1 (chunked
for streams). Tests steer it with attributes: ``delay_ms`` before answering,
``chunk_delay_ms`` between events, ``fail`` (status and error body), ``cut_after`` (drop the
connection after that many events), ``error_after`` (send an ``error`` event after that
many). Ids are derived from the request body, so the same request gets the same answer.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USAGE: dict[str, Any] = {
    "input_tokens": 31,
    "output_tokens": 24,
    "cache_creation_input_tokens": 5,
    "cache_read_input_tokens": 100,
    "service_tier": "standard",
}
TEXT = "Sorry about the double charge! I have refunded it; you will see it within 3-5 days."
SNAPSHOT = "-20261101"  # the API answers with the dated model asked for by its alias


def pieces(text: str = TEXT, size: int = 12) -> list[str]:
    """How the fake streams ``text``: pieces of ``size`` characters."""
    return [text[i : i + size] for i in range(0, len(text), size)]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up early (the early-close tests do it on purpose)


def _id(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]


class FakeAnthropic:
    """The fake server; ``with FakeAnthropic() as api: Anthropic(base_url=api.base_url, ...)``."""

    def __init__(self) -> None:
        self.text = TEXT
        self.delay_ms = 0
        self.chunk_delay_ms = 0
        self.fail: tuple[int, dict[str, Any]] | None = None
        self.cut_after: int | None = None
        self.error_after: int | None = None
        self.requests: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # -- the documented shapes ------------------------------------------------------------

    def message(self, body: dict[str, Any]) -> dict[str, Any]:
        mid = f"msg_{_id(body)}"
        self.ids.append(mid)
        return {
            "id": mid,
            "type": "message",
            "role": "assistant",
            "model": body["model"] + SNAPSHOT,
            "content": [{"type": "text", "text": self.text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": dict(USAGE),
        }

    def events(self, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        start = self.message(body)
        start.update(content=[], stop_reason=None, usage={**USAGE, "output_tokens": 1})
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"type": "message_start", "message": start}),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            ("ping", {"type": "ping"}),
        ]
        events += [
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": p},
                },
            )
            for p in pieces(self.text)
        ]
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": USAGE["output_tokens"]},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        return events

    # -- HTTP -----------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw or b"{}")
                fake.requests.append({"path": self.path, "body": body})
                if fake.delay_ms:
                    time.sleep(fake.delay_ms / 1000)
                if fake.fail is not None:
                    status, error = fake.fail
                    return self._json(status, error)
                if self.path.split("?")[0] != "/v1/messages":
                    return self._json(404, {"type": "error", "error": {"type": "not_found_error"}})
                if body.get("stream"):
                    return self._sse(fake.events(body))
                return self._json(200, fake.message(body))

            def _json(self, status: int, payload: object) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("request-id", "req_test")
                self.end_headers()
                self.wfile.write(data)

            def _sse(self, events: list[tuple[str, dict[str, Any]]]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("request-id", "req_test")
                self.end_headers()
                for n, (name, data) in enumerate(events):
                    if fake.cut_after is not None and n >= fake.cut_after:
                        self.close_connection = True
                        self.wfile.flush()
                        return  # no terminating chunk: the client sees a broken body
                    if fake.error_after is not None and n >= fake.error_after:
                        name, data = (
                            "error",
                            {
                                "type": "error",
                                "error": {"type": "overloaded_error", "message": "Overloaded"},
                            },
                        )
                    if n and fake.chunk_delay_ms:
                        time.sleep(fake.chunk_delay_ms / 1000)
                    frame = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
                    try:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
                        self.wfile.flush()
                    except OSError:  # the client closed the stream early
                        self.close_connection = True
                        return
                    if name == "error":
                        break
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        return Handler
