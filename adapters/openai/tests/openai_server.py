"""A fake OpenAI API on 127.0.0.1 for the real ``openai`` clients (``base_url``).

It answers ``POST /v1/chat/completions`` and ``POST /v1/responses`` with the JSON bodies and
the server-sent event streams the API reference documents, over real HTTP/1.1 (chunked for
streams). Tests steer it with attributes: ``delay_ms`` before answering, ``chunk_delay_ms``
between stream events, ``fail`` (status and error body), ``cut_after`` (drop the connection
after that many stream events), ``body`` (a raw JSON body to send instead). Ids are derived
from the request body, so the same request gets the same answer from any client.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TEXT = "Thanks for reaching out! Your refund was issued today and should arrive in 3-5 days."
CREATED = 1_767_225_600
SNAPSHOT = "-2024-07-18"  # the API answers with the dated snapshot of the model asked for


def pieces(text: str = TEXT, size: int = 12) -> list[str]:
    """How the fake streams ``text``: pieces of ``size`` characters."""
    return [text[i : i + size] for i in range(0, len(text), size)]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up early (the early-close tests do it on purpose)


def _id(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:20]


class FakeOpenAI:
    """The fake server; ``with FakeOpenAI() as api: OpenAI(base_url=api.base_url, ...)``."""

    def __init__(self) -> None:
        self.text = TEXT
        self.delay_ms = 0
        self.chunk_delay_ms = 0
        self.fail: tuple[int, dict[str, Any]] | None = None
        self.cut_after: int | None = None
        self.body: dict[str, Any] | None = None
        self.requests: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # -- the documented shapes ------------------------------------------------------------

    def chat_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        rid = f"chatcmpl-{_id(body)}"
        self.ids.append(rid)
        return {
            "id": rid,
            "object": "chat.completion",
            "created": CREATED,
            "model": body["model"] + SNAPSHOT,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": self.text,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": self.chat_usage(),
            "service_tier": "default",
            "system_fingerprint": "fp_test",
        }

    @staticmethod
    def chat_usage() -> dict[str, Any]:
        return {
            "prompt_tokens": 42,
            "completion_tokens": 19,
            "total_tokens": 61,
            "prompt_tokens_details": {"cached_tokens": 8, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def chat_chunks(self, body: dict[str, Any]) -> list[tuple[str | None, Any]]:
        rid = f"chatcmpl-{_id(body)}"
        self.ids.append(rid)
        model = body["model"] + SNAPSHOT

        def chunk(delta: dict[str, Any], finish: str | None) -> tuple[str | None, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return None, {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "system_fingerprint": "fp_test",
                "choices": [choice],
            }

        events = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
        events += [chunk({"content": p}, None) for p in pieces(self.text)]
        events.append(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(
                (
                    None,
                    {
                        "id": rid,
                        "object": "chat.completion.chunk",
                        "created": CREATED,
                        "model": model,
                        "system_fingerprint": "fp_test",
                        "choices": [],
                        "usage": self.chat_usage(),
                    },
                )
            )
        events.append((None, "[DONE]"))
        return events

    def response(self, body: dict[str, Any], status: str = "completed") -> dict[str, Any]:
        rid = f"resp_{_id(body)}"
        done = status == "completed"
        message = {
            "type": "message",
            "id": f"msg_{_id(body)}",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": self.text, "annotations": [], "logprobs": []}
            ],
        }
        return {
            "id": rid,
            "object": "response",
            "created_at": CREATED,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "max_output_tokens": None,
            "model": body["model"] + SNAPSHOT,
            "output": [message] if done else [],
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": True,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": {
                "input_tokens": 36,
                "input_tokens_details": {"cached_tokens": 4},
                "output_tokens": 21,
                "output_tokens_details": {"reasoning_tokens": 5},
                "total_tokens": 57,
            }
            if done
            else None,
            "user": None,
            "metadata": {},
        }

    def response_events(self, body: dict[str, Any]) -> list[tuple[str | None, Any]]:
        final = self.response(body)
        self.ids.append(final["id"])
        started = self.response(body, status="in_progress")
        item = final["output"][0]
        ids = {"item_id": item["id"], "output_index": 0, "content_index": 0}
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": started},
            {"type": "response.in_progress", "response": started},
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {**item, "status": "in_progress", "content": []},
            },
            {"type": "response.content_part.added", **ids, "part": part},
        ]
        events += [
            {"type": "response.output_text.delta", **ids, "delta": p, "logprobs": []}
            for p in pieces(self.text)
        ]
        events += [
            {"type": "response.output_text.done", **ids, "text": self.text, "logprobs": []},
            {"type": "response.content_part.done", **ids, "part": item["content"][0]},
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {"type": "response.completed", "response": final},
        ]
        for n, event in enumerate(events):
            event["sequence_number"] = n
        return [(e["type"], e) for e in events]

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
                if fake.body is not None:
                    return self._json(200, fake.body)
                if self.path == "/v1/chat/completions":
                    if body.get("stream"):
                        return self._sse(fake.chat_chunks(body))
                    return self._json(200, fake.chat_completion(body))
                if self.path == "/v1/responses":
                    if body.get("stream"):
                        return self._sse(fake.response_events(body))
                    payload = fake.response(body)
                    fake.ids.append(payload["id"])
                    return self._json(200, payload)
                return self._json(404, {"error": {"message": f"no route {self.path}"}})

            def _json(self, status: int, payload: object) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-request-id", "req_test")
                self.end_headers()
                self.wfile.write(data)

            def _sse(self, events: list[tuple[str | None, Any]]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for n, (name, data) in enumerate(events):
                    if fake.cut_after is not None and n >= fake.cut_after:
                        self.close_connection = True
                        self.wfile.flush()
                        return  # no terminating chunk: the client sees a broken body
                    if n and fake.chunk_delay_ms:
                        time.sleep(fake.chunk_delay_ms / 1000)
                    text = data if isinstance(data, str) else json.dumps(data)
                    frame = (f"event: {name}\n" if name else "") + f"data: {text}\n\n"
                    encoded = frame.encode()
                    try:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(encoded), encoded))
                        self.wfile.flush()
                    except OSError:  # the client closed the stream early
                        self.close_connection = True
                        return
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        return Handler
