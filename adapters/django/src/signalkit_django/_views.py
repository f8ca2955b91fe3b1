"""The relay endpoint a page posts its signals to, and the page script."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from signalkit.relay import RelayResponse, script_response
from signalkit.web import rate_key, read_at_most

from ._config import relay

__all__ = ["relay_view", "script_view"]


@csrf_exempt  # the exposure tokens are the credential; a page's cookie alone proves nothing
@require_POST
def relay_view(request: HttpRequest) -> HttpResponse:
    """Record the signals a page posts (``docs/relay.md``); answer 202, 4xx or 503 as JSON.

    The body is never read past ``max_body_bytes`` + 1: a larger declared ``Content-Length`` is
    answered 413 without reading it. The rate-limit key is the session id, else the user id,
    else the client address.
    """
    the_relay = relay()
    limit = the_relay.max_body_bytes
    declared = _content_length(request)
    if declared is not None and declared > limit:
        return _respond(the_relay.too_large(f"Content-Length {declared} is"))
    body = read_at_most(request.read, limit + 1)
    if len(body) > limit:
        return _respond(the_relay.too_large("the body is"))
    answer = the_relay.handle(
        body, key=_key(request), content_type=request.META.get("CONTENT_TYPE")
    )
    return _respond(answer)


@require_safe
def script_view(request: HttpRequest) -> HttpResponse:
    """Serve the page script (``relay.js``) with a strong ETag; ``304`` when the page has it."""
    return _respond(script_response(request.META.get("HTTP_IF_NONE_MATCH")))


def _content_length(request: HttpRequest) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def _key(request: HttpRequest) -> str:
    subject = getattr(request, "signalkit_subject", None)
    return rate_key(subject, request.META.get("REMOTE_ADDR"))


def _respond(answer: RelayResponse) -> HttpResponse:
    response = HttpResponse(answer.body, status=answer.status)
    for name, value in answer.headers.items():
        response[name] = value
    # Without it an HTTP/1.0 server can only end the body by closing the connection, and one
    # that first drains an unread request body (werkzeug's) then waits on the client forever.
    response["Content-Length"] = str(len(answer.body))
    return response
