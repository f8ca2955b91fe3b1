"""A local stand-in for OpenAI's Chat Completions API, so the drafter runs without a key.

It answers ``POST /v1/chat/completions`` (not streamed) with the JSON body the API reference
documents — ``id``, ``model`` (the dated snapshot of the model asked for), ``choices`` and
``usage`` — on 127.0.0.1, for the real ``openai.OpenAI`` client pointed at it with
``base_url``. The reply is a plausible support draft built from the ticket by a few rules (no
model runs here). It requires a ``Bearer`` API key, as the API does, and keeps what it answered:
the request bodies in ``requests``, the keys in ``api_keys`` and the completion ids in ``ids``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SNAPSHOT = "-2024-07-18"

_TOPICS = (
    (
        ("refund", "charged twice", "double charge"),
        "I'm sorry about the billing problem with order {order}. I've asked our billing team "
        "to refund the duplicate payment; it should appear on your statement within 5-7 "
        "business days.",
    ),
    (
        ("where is", "not arrived", "tracking", "delivery"),
        "I'm sorry your order {order} hasn't reached you yet. I checked with the carrier and "
        "the parcel is on its way; you can follow it with the tracking link in your "
        "confirmation email.",
    ),
    (
        ("password", "log in", "login", "locked"),
        "I'm sorry you can't get into your account. I've sent a password reset link to the "
        "email address on file; it is valid for 30 minutes.",
    ),
    (
        ("cancel", "subscription"),
        "I'm sorry to see you go. I've cancelled your subscription; you keep access until the "
        "end of the current billing period and won't be charged again.",
    ),
    (
        ("broken", "damaged", "defective"),
        "I'm sorry the item in order {order} arrived damaged. We'll send a replacement at no "
        "cost; there's no need to return the damaged one.",
    ),
)
_FALLBACK = "Thank you for the details. I've passed your request to the right team and we'll get back to you shortly."  # noqa: E501


def draft_for(ticket: str) -> str:
    """The reply the stand-in drafts for a ticket's text."""
    name = re.search(r"^From: *([^\n<]+?) *(?:<|$)", ticket, re.M)
    order = re.search(r"#\d+", ticket)
    lower = ticket.lower()
    body = next(
        (text for words, text in _TOPICS if any(w in lower for w in words)), _FALLBACK
    ).format(order=order.group(0) if order else "")
    greeting = f"Hello {name.group(1).split()[0]}," if name else "Hello,"
    return (
        f"{greeting}\n\nThanks for reaching out! {body}\n\n"
        "If there's anything else I can help with, just reply to this email.\n\n"
        "Best regards,\nThe Support Team"
    )


class LocalChatCompletions(ThreadingHTTPServer):
    """The stand-in: ``with LocalChatCompletions() as api: OpenAI(base_url=api.base_url, ...)``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []
        self.api_keys: list[str] = []
        self.ids: list[str] = []
        self._count = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The ``base_url`` to give ``openai.OpenAI``."""
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> LocalChatCompletions:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(5)

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """The Chat Completions response for a request body."""
        messages = body.get("messages") or []
        ticket = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        text = draft_for(str(ticket))
        with self._lock:
            self._count += 1
            self.requests.append(body)
            seed = f"{self._count}:{json.dumps(body, sort_keys=True)}"
            rid = "chatcmpl-" + hashlib.sha256(seed.encode()).hexdigest()[:29]
            self.ids.append(rid)
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages) * 4 // 3
        completion_tokens = len(text.split()) * 4 // 3
        return {
            "id": rid,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body["model"]) + SNAPSHOT,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": text,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "service_tier": "default",
            "system_fingerprint": "fp_stand_in",
        }


class _Handler(BaseHTTPRequestHandler):
    server: LocalChatCompletions
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: don't hold the second

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or len(auth) <= len("Bearer "):
            return self._json(401, {"error": {"message": "missing API key", "type": "auth"}})
        if self.path.split("?")[0] != "/v1/chat/completions":
            return self._json(404, {"error": {"message": f"no route {self.path}"}})
        try:
            body = json.loads(raw)
            if not isinstance(body, dict) or not body.get("model") or not body.get("messages"):
                raise ValueError("model and messages are required")
            if body.get("stream"):
                raise ValueError("the stand-in does not stream")
        except ValueError as exc:
            return self._json(400, {"error": {"message": str(exc), "type": "invalid_request"}})
        self.server.api_keys.append(auth.removeprefix("Bearer "))
        self._json(200, self.server.complete(body))

    def _json(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", "req_stand_in")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass
