"""``SignalkitMiddleware``: each HTTP request runs inside ``signalkit.context(user...)``."""

from __future__ import annotations

import inspect
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import signalkit
from signalkit import ConfigError
from signalkit.web import Identity, ThrottledLog, identity_of

from ._identity import user_id_of, valid_cookie_id

__all__ = ["Identify", "SignalkitMiddleware", "identify_failures"]

logger = logging.getLogger("signalkit.starlette")
_failures = ThrottledLog(logger)

Identify = (
    Callable[[HTTPConnection], "Mapping[str, Any] | signalkit.Subject | None"]
    | Callable[[HTTPConnection], "Awaitable[Mapping[str, Any] | signalkit.Subject | None]"]
)
"""A sync or async callable given the request (headers, cookies, ``user``, ``session``...; not
its body) that returns ``user_id``, ``anonymous_id``, ``session_id`` and/or ``tenant_id``."""

_YEAR_S = 365 * 24 * 3600


def identify_failures() -> int:
    """How many times identifying a request failed in this process (each one logged, throttled)."""
    return _failures.count


class SignalkitMiddleware:
    """Run each HTTP request inside :func:`signalkit.context` with the request's ids.

    A pure ASGI middleware: streamed responses and background tasks run inside the context
    too, and it is restored when the response is done. Websocket and lifespan scopes pass
    through untouched.

    Defaults: ``user_id`` is the authenticated ``request.user``'s ``identity`` when Starlette's
    ``AuthenticationMiddleware`` runs before this one; ``anonymous_id`` is read from the
    ``anonymous_cookie`` cookie, which is issued (random, ``HttpOnly``, ``SameSite=Lax``, one
    year) on a response to a request without a valid one; ``None`` turns it off. ``identify``
    (sync or async, given a :class:`starlette.requests.HTTPConnection`) returns more or other
    ids, which win over the defaults. An ``identify`` that raises is logged at a limited rate
    (see :func:`identify_failures`) and the request goes on with the default ids only.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        identify: Identify | None = None,
        anonymous_cookie: str | None = "signalkit_aid",
        cookie_secure: bool | None = None,
    ) -> None:
        if identify is not None and not callable(identify):
            raise ConfigError(f"identify: must be callable, got {type(identify).__name__}")
        if anonymous_cookie is not None and (
            not isinstance(anonymous_cookie, str)
            or not anonymous_cookie
            or not all(c.isalnum() or c in "_-." for c in anonymous_cookie)
        ):
            raise ConfigError(f"anonymous_cookie: not a valid cookie name: {anonymous_cookie!r}")
        self.app = app
        self.identify = identify
        self.anonymous_cookie = anonymous_cookie
        self.cookie_secure = cookie_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ids, issued = await self._identify(scope)
        if issued is not None:
            send = self._issuing(send, scope, issued)
        with signalkit.context(**ids) as subject:
            scope["signalkit.subject"] = subject
            await self.app(scope, receive, send)

    async def _identify(self, scope: Scope) -> tuple[Identity, str | None]:
        ids: Identity = {}
        issued: str | None = None
        try:
            connection = HTTPConnection(scope)
            if self.anonymous_cookie is not None:
                value = connection.cookies.get(self.anonymous_cookie)
                if not valid_cookie_id(value):
                    value = issued = secrets.token_urlsafe(18)
                assert value is not None
                ids["anonymous_id"] = value
            if "user" in scope:
                user_id = user_id_of(scope["user"])
                if user_id is not None:
                    ids["user_id"] = user_id
            if self.identify is not None:
                result = self.identify(connection)
                if inspect.isawaitable(result):
                    result = await result
                ids.update(identity_of(result))
        except Exception:  # never break the host's request
            # the defaults found before the failure stay; identify's ids are left out
            _failures.exception("signalkit: identifying the request failed; its ids left out")
        return ids, issued

    def _issuing(self, send: Send, scope: Scope, value: str) -> Send:
        """``send`` that adds the new anonymous-id cookie to the response's headers."""
        assert self.anonymous_cookie is not None
        secure = self.cookie_secure
        if secure is None:
            secure = scope.get("scheme") == "https"
        cookie = f"{self.anonymous_cookie}={value}; Path=/; Max-Age={_YEAR_S}; HttpOnly"
        cookie += "; SameSite=Lax"
        if secure:
            cookie += "; Secure"
        header = (b"set-cookie", cookie.encode("latin-1"))

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        return send_with_cookie
