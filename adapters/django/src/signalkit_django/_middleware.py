"""``SignalkitMiddleware``: every request runs inside ``signalkit.context(user, session...)``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import FileResponse, HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase

import signalkit
from signalkit.web import Identity, ThrottledLog, identity_of

from ._config import config, relay

__all__ = ["SignalkitMiddleware", "identify_failures"]

logger = logging.getLogger("signalkit.django")
_failures = ThrottledLog(logger)

_Response = HttpResponseBase
_SyncGetResponse = Callable[[HttpRequest], _Response]
_AsyncGetResponse = Callable[[HttpRequest], Awaitable[_Response]]


def identify_failures() -> int:
    """How many times identifying a request failed in this process (each one logged, throttled)."""
    return _failures.count


class SignalkitMiddleware:
    """Run each request inside :func:`signalkit.context` with the request's user and session.

    By default the user id is ``str(request.user.pk)`` for an authenticated user and the session
    id is ``request.session.session_key``; ``SIGNALKIT["IDENTIFY"]`` (a callable or its dotted
    path, given the request) returns more or other ids (``tenant_id``, ``anonymous_id``...), which
    win over the defaults. Place it after ``AuthenticationMiddleware``. Works in sync (WSGI) and
    async (ASGI) stacks; an identify that raises is logged, at a limited rate, and the request
    goes on without those ids. Streamed responses see the context while they produce content.
    The subject is also set as ``request.signalkit_subject``.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: _SyncGetResponse | _AsyncGetResponse) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)
        relay()  # a wrong SIGNALKIT setting fails at start-up, naming the key

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self.__acall__(request)
        ids = self._identify(request)
        with signalkit.context(**ids) as subject:
            request.signalkit_subject = subject  # type: ignore[attr-defined]
            response: _Response = self.get_response(request)  # type: ignore[assignment]
        return _stream_in_context(response, ids)

    async def __acall__(self, request: HttpRequest) -> _Response:
        """The async path: identify without blocking the loop, then await the view."""
        ids = await self._aidentify(request)
        with signalkit.context(**ids) as subject:
            request.signalkit_subject = subject  # type: ignore[attr-defined]
            response: _Response = await self.get_response(request)  # type: ignore[misc]
        return _stream_in_context(response, ids)

    def _identify(self, request: HttpRequest) -> Identity:
        ids: Identity = {}
        try:
            user = getattr(request, "user", None)
            ids.update(_user_ids(user))
            ids.update(_session_ids(request))
            identify = config().identify
            if identify is not None:
                ids.update(identity_of(identify(request)))
        except Exception:  # never break the host's request
            _failures.exception("signalkit: identifying the request failed; ids left out")
        return ids

    async def _aidentify(self, request: HttpRequest) -> Identity:
        ids: Identity = {}
        try:
            auser = getattr(request, "auser", None)
            if auser is not None:
                ids.update(_user_ids(await auser()))
            ids.update(_session_ids(request))
            identify = config().identify
            if identify is not None:
                if iscoroutinefunction(identify):
                    result = await identify(request)
                else:  # it may touch the database: not on the event loop
                    result = await sync_to_async(identify)(request)
                ids.update(identity_of(result))
        except Exception:
            _failures.exception("signalkit: identifying the request failed; ids left out")
        return ids


def _user_ids(user: object) -> Identity:
    if user is None or not getattr(user, "is_authenticated", False):
        return {}
    pk = getattr(user, "pk", None)
    return {} if pk is None else {"user_id": str(pk)}


def _session_ids(request: HttpRequest) -> Identity:
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)  # the cookie's value: no database query
    return {"session_id": key} if isinstance(key, str) and key else {}


def _stream_in_context(response: _Response, ids: Identity) -> _Response:
    """Let a streamed body's generator see the request's context while it produces each chunk.

    Entered and left around every chunk, so nothing is left set on the server's thread or task
    between chunks. Files stream without it (and keep the server's sendfile path).
    """
    if not isinstance(response, StreamingHttpResponse) or isinstance(response, FileResponse):
        return response
    if response.is_async:
        response.streaming_content = _achunks(response.streaming_content, ids)  # type: ignore[arg-type]
    else:
        response.streaming_content = _chunks(response.streaming_content, ids)  # type: ignore[arg-type]
    return response


def _chunks(content: Iterable[bytes], ids: Identity) -> Iterator[bytes]:
    iterator = iter(content)
    try:
        while True:
            with signalkit.context(**ids):
                try:
                    chunk = next(iterator)
                except StopIteration:
                    return
            yield chunk
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


async def _achunks(content: AsyncIterator[bytes], ids: Identity) -> AsyncIterator[bytes]:
    iterator = aiter(content)
    try:
        while True:
            with signalkit.context(**ids):
                try:
                    chunk = await anext(iterator)
                except StopAsyncIteration:
                    return
            yield chunk
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
