"""Reading Anthropic messages and message stream events into a
:class:`signalkit._genai.Completion`.

Token usage follows the OpenTelemetry GenAI conventions: ``gen_ai.usage.input_tokens`` counts
every input token, the cached ones included (Anthropic's ``input_tokens`` leaves out
``cache_read_input_tokens`` and ``cache_creation_input_tokens``, reported on their own as
``gen_ai.usage.cache_read.input_tokens`` and ``gen_ai.usage.cache_write.input_tokens``).
"""

from __future__ import annotations

from typing import Any

from signalkit._genai import Completion

__all__ = ["read_event", "read_message"]

_USAGE_FIELDS = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cache_read", "cache_read_input_tokens"),
    ("cache_write", "cache_creation_input_tokens"),
)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _ids(c: Completion, message: Any) -> None:
    if c.response_id is None:
        c.response_id = _str(getattr(message, "id", None))
    if c.response_model is None:
        c.response_model = _str(getattr(message, "model", None))


def _usage(c: Completion, usage: Any) -> None:
    """Anthropic's counts as they arrive (a stream's later counts replace the earlier)."""
    if usage is None:
        return
    seen: dict[str, int] = c.scratch.setdefault("usage", {})
    for kind, name in _USAGE_FIELDS:
        value = getattr(usage, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            seen[kind] = value
    thinking = getattr(getattr(usage, "output_tokens_details", None), "thinking_tokens", None)
    total_input = None
    if "input" in seen:
        total_input = seen["input"] + seen.get("cache_read", 0) + seen.get("cache_write", 0)
    c.usage(
        input=total_input,
        output=seen.get("output"),
        cache_read=seen.get("cache_read"),
        cache_write=seen.get("cache_write"),
        reasoning=thinking,
    )


def _stop(c: Completion, reason: object) -> None:
    if isinstance(reason, str) and reason:
        c.finish_reasons = [reason]


def read_message(c: Completion, message: Any) -> None:
    """A ``Message``: the text shown is its text blocks, in order."""
    _ids(c, message)
    _stop(c, getattr(message, "stop_reason", None))
    for block in getattr(message, "content", None) or ():
        if getattr(block, "type", None) == "text":
            text = getattr(block, "text", None)
            if isinstance(text, str):
                c.text(text)
    _usage(c, getattr(message, "usage", None))


def read_event(c: Completion, event: Any) -> None:
    """A raw message stream event (``message_start``, ``content_block_delta``...)."""
    kind = getattr(event, "type", None)
    if kind == "content_block_delta":
        delta = getattr(event, "delta", None)
        if getattr(delta, "type", None) == "text_delta":
            text = getattr(delta, "text", None)
            if isinstance(text, str):
                c.text(text)
    elif kind == "message_start":
        message = getattr(event, "message", None)
        _ids(c, message)
        _usage(c, getattr(message, "usage", None))
    elif kind == "message_delta":
        _stop(c, getattr(getattr(event, "delta", None), "stop_reason", None))
        _usage(c, getattr(event, "usage", None))
