"""Reading OpenAI responses and stream events into a :class:`signalkit._genai.Completion`.

Chat Completions (``/chat/completions``) and the Responses API (``/responses``), whole or
streamed. Shapes are read defensively (``getattr``), since the SDK builds its models without
validation: a field the server left out is skipped, never an error.
"""

from __future__ import annotations

from typing import Any

from signalkit._genai import Completion

__all__ = ["read_chat", "read_chat_chunk", "read_response", "read_response_event"]


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_ids(c: Completion, obj: Any) -> None:
    if c.response_id is None:
        c.response_id = _str(getattr(obj, "id", None))
    if c.response_model is None:
        c.response_model = _str(getattr(obj, "model", None))


def _set_reason(c: Completion, index: object, reason: object) -> None:
    if not isinstance(reason, str) or not reason:
        return
    i = index if isinstance(index, int) and 0 <= index < 128 else len(c.finish_reasons)
    reasons = c.finish_reasons
    while len(reasons) <= i:
        reasons.append("")
    reasons[i] = reason


# -- Chat Completions ----------------------------------------------------------------------


def _chat_usage(c: Completion, usage: Any) -> None:
    if usage is None:
        return
    c.usage(
        input=getattr(usage, "prompt_tokens", None),
        output=getattr(usage, "completion_tokens", None),
        cache_read=getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", None),
        reasoning=getattr(
            getattr(usage, "completion_tokens_details", None), "reasoning_tokens", None
        ),
    )


def read_chat(c: Completion, completion: Any) -> None:
    """A ``ChatCompletion``: the text shown is the first choice's message content."""
    _first_ids(c, completion)
    choices = getattr(completion, "choices", None) or ()
    for position, choice in enumerate(choices):
        _set_reason(c, getattr(choice, "index", position), getattr(choice, "finish_reason", None))
    if choices:
        content = getattr(getattr(choices[0], "message", None), "content", None)
        if isinstance(content, str):
            c.text(content)
    _chat_usage(c, getattr(completion, "usage", None))


def read_chat_chunk(c: Completion, chunk: Any) -> None:
    """A ``ChatCompletionChunk``: choice 0's content deltas, finish reasons, usage (the last
    chunk has it when ``stream_options={"include_usage": True}``)."""
    _first_ids(c, chunk)
    for choice in getattr(chunk, "choices", None) or ():
        index = getattr(choice, "index", 0)
        if index == 0:
            content = getattr(getattr(choice, "delta", None), "content", None)
            if isinstance(content, str):
                c.text(content)
        _set_reason(c, index, getattr(choice, "finish_reason", None))
    _chat_usage(c, getattr(chunk, "usage", None))


# -- Responses API ---------------------------------------------------------------------------


def _response_meta(c: Completion, response: Any) -> None:
    _first_ids(c, response)
    status = getattr(response, "status", None)
    if status == "incomplete":
        reason = getattr(getattr(response, "incomplete_details", None), "reason", None)
        _set_reason(c, 0, reason or status)
    elif status in ("completed", "failed", "cancelled"):
        _set_reason(c, 0, status)
    usage = getattr(response, "usage", None)
    if usage is not None:
        c.usage(
            input=getattr(usage, "input_tokens", None),
            output=getattr(usage, "output_tokens", None),
            cache_read=getattr(getattr(usage, "input_tokens_details", None), "cached_tokens", None),
            reasoning=getattr(
                getattr(usage, "output_tokens_details", None), "reasoning_tokens", None
            ),
        )


def read_response(c: Completion, response: Any) -> None:
    """A ``Response``: the text shown is its ``output_text`` (every output text, in order);
    the finish reason is its status, or why it is incomplete (``max_output_tokens``...)."""
    _response_meta(c, response)
    text = getattr(response, "output_text", None)
    if isinstance(text, str):
        c.text(text)


def read_response_event(c: Completion, event: Any) -> None:
    """A Responses API stream event."""
    kind = getattr(event, "type", None)
    if kind == "response.output_text.delta":
        delta = getattr(event, "delta", None)
        if isinstance(delta, str):
            c.text(delta)
    elif kind in ("response.created", "response.in_progress"):
        _first_ids(c, getattr(event, "response", None))
    elif kind in ("response.completed", "response.incomplete", "response.failed"):
        _response_meta(c, getattr(event, "response", None))
