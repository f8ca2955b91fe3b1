"""The relay endpoint a page posts its signals to, and the page script, as Starlette routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from signalkit import Client, ConfigError, Subject
from signalkit.relay import Relay, RelayResponse, script_response

__all__ = ["RateKey", "default_rate_key", "relay_routes"]

RateKey = Callable[[Request], str]
"""Given the relay request, the caller's key for the relay's rate limit."""


def default_rate_key(request: Request) -> str:
    """The signed-in user's id when there is one, else the client's address.

    Not the anonymous cookie or a session id: a script can drop its cookies and get a fresh
    one (and a fresh rate bucket) on every request. Behind a proxy, run uvicorn with
    ``--proxy-headers`` (and ``--forwarded-allow-ips``) so the address is the client's.
    """
    subject = request.scope.get("signalkit.subject")  # set by SignalkitMiddleware
    if isinstance(subject, Subject) and subject.user_id:
        return f"user:{subject.user_id}"
    client = request.client
    return f"addr:{client.host if client is not None else ''}"


def relay_routes(
    client: Client | None = None,
    *,
    path: str = "/signals",
    script_path: str | None = "/signals.js",
    relay: Relay | None = None,
    rate_key: RateKey = default_rate_key,
    **relay_options: Any,
) -> list[Route]:
    """``POST path`` records the signals pages send; ``GET script_path`` serves ``relay.js``.

    ``relay_options`` go to :class:`signalkit.relay.Relay` (``max_body_bytes``, ``rate``,
    ``kinds``...); or pass a ``relay`` you keep (for its ``stats()``). A ``Content-Length``
    over ``max_body_bytes`` is answered 413 before any of the body is read, and a chunked
    body as soon as the chunks read go over it (the rest is never read). The routes work in
    Starlette (``Starlette(routes=[*relay_routes(), ...])``) and FastAPI
    (``app.router.routes.extend(relay_routes())``). ``script_path=None`` serves no script.
    """
    if relay is not None and (client is not None or relay_options):
        raise ConfigError("relay: pass either a Relay or client/relay options, not both")
    if not callable(rate_key):
        raise ConfigError(f"rate_key: must be callable, got {type(rate_key).__name__}")
    for name, value in (("path", path), ("script_path", script_path)):
        if value is not None and (not isinstance(value, str) or not value.startswith("/")):
            raise ConfigError(f"{name}: must be a path starting with '/', got {value!r}")
    the_relay = relay if relay is not None else Relay(client, **relay_options)

    async def post_signals(request: Request) -> Response:
        return await _post(request, the_relay, rate_key)

    routes = [Route(path, post_signals, methods=["POST"], name="signalkit_relay")]
    if script_path is not None:
        routes.append(Route(script_path, _get_script, methods=["GET"], name="signalkit_script"))
    return routes


async def _post(request: Request, relay: Relay, rate_key: RateKey) -> Response:
    limit = relay.max_body_bytes
    declared = _content_length(request)
    if declared is not None and declared > limit:
        return _respond(relay.too_large(f"Content-Length {declared} is"))
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # stop reading: the rest of a huge body never enters memory
                return _respond(relay.too_large("the body is"))
    except ClientDisconnect:
        return Response(status_code=400)  # nobody is listening; nothing recorded
    try:
        key = rate_key(request)
    except Exception:  # a host's rate_key bug must not turn into a 500 from the SDK
        key = default_rate_key(request)
    answer = relay.handle(
        b"".join(chunks), key=key, content_type=request.headers.get("content-type")
    )
    return _respond(answer)


async def _get_script(request: Request) -> Response:
    return _respond(script_response(request.headers.get("if-none-match")))


def _content_length(request: Request) -> int | None:
    try:
        return int(request.headers.get("content-length") or "")
    except ValueError:
        return None


def _respond(answer: RelayResponse) -> Response:
    headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-type"}
    return Response(
        answer.body,
        status_code=answer.status,
        headers=headers,
        media_type=answer.headers.get("Content-Type", "application/json"),
    )
