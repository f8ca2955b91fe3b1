"""The ``Signalkit`` extension: per-request context, and the relay and script routes."""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Request, Response, current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

import signalkit
from signalkit import Client, ConfigError, Subject
from signalkit import _context as _sk_context
from signalkit.relay import Relay, RelayResponse, script_response
from signalkit.web import Identity, ThrottledLog, identity_of, rate_key, read_at_most

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["Identify", "Signalkit"]

logger = logging.getLogger("signalkit.flask")

Identify = Callable[[Request], object]
"""Given the request, return ids: a mapping of ``user_id``, ``anonymous_id``, ``session_id``,
``tenant_id`` (str or int values), a :class:`signalkit.Subject`, or ``None``."""


class Signalkit:
    """Flask extension: each request runs inside :func:`signalkit.context`, and pages can post
    signals to a :class:`~signalkit.relay.Relay`.

    ``client``: the client to record with (default: signalkit's default client).
    ``identify``: a callable given the request that returns its ids (see :data:`Identify`);
    they win over the default, which is Flask-Login's ``current_user.get_id()`` when Flask-Login
    is set up on the app. An identify that raises is logged at a limited rate and counted in
    :attr:`identify_failures`; the request goes on without those ids.
    ``relay_path`` / ``script_path``: where the relay (``POST``) and the page script (``GET``)
    are served, ``None`` for neither; ``relay_options`` go to :class:`~signalkit.relay.Relay`
    (``rate``, ``burst``, ``max_body_bytes``...).

    The context covers the whole response, a streamed body included: the app and its body run
    inside a :class:`contextvars.Context` of their own per request, dropped with the request,
    so nothing set for one request is seen by the next on the same thread.
    """

    def __init__(
        self,
        app: Flask | None = None,
        client: Client | None = None,
        *,
        identify: Identify | None = None,
        relay_path: str | None = "/signals",
        script_path: str | None = "/signals.js",
        **relay_options: Any,
    ) -> None:
        if identify is not None and not callable(identify):
            raise ConfigError(f"identify: must be a callable, got {type(identify).__name__}")
        for name, path in (("relay_path", relay_path), ("script_path", script_path)):
            if path is not None and not (isinstance(path, str) and path.startswith("/")):
                raise ConfigError(f"{name}: must be a path starting with '/', got {path!r}")
        self.client = client
        self.identify = identify
        self.relay_path = relay_path
        self.script_path = script_path
        self.relay = Relay(client, **relay_options)
        """The relay pages post to (its :meth:`~signalkit.relay.Relay.stats` say what it did)."""
        self._failures = ThrottledLog(logger)
        self._environ_key = f"signalkit_flask.{id(self)}"
        if app is not None:
            self.init_app(app)

    @property
    def identify_failures(self) -> int:
        """How many requests' identification failed (each logged, at a limited rate)."""
        return self._failures.count

    def init_app(self, app: Flask) -> None:
        """Set up ``app``: wrap its WSGI app, add the request hooks and the relay blueprint."""
        if "signalkit" in app.extensions:
            raise ConfigError(f"Signalkit is already set up on app {app.name!r}")
        app.extensions["signalkit"] = self
        app.wsgi_app = _ContextPerRequest(app.wsgi_app, self._environ_key)  # type: ignore[method-assign]
        app.before_request(self._enter)
        app.teardown_request(self._teardown)
        if self.relay_path is None and self.script_path is None:
            return
        blueprint = Blueprint("signalkit", __name__)
        if self.relay_path is not None:
            blueprint.add_url_rule(self.relay_path, "relay", self._relay_view, methods=["POST"])
        if self.script_path is not None:
            blueprint.add_url_rule(self.script_path, "script", _script_view, methods=["GET"])
        app.register_blueprint(blueprint)

    # -- per request --------------------------------------------------------------------------

    def _enter(self) -> None:
        ids = self._ids()
        scope = request.environ.get(self._environ_key)
        if isinstance(scope, _Scope) and not scope.entered:
            scope.entered = True
            subject = _set_subject(ids)
        else:
            # Not under our WSGI wrapper (something replaced app.wsgi_app): enter here and
            # leave in teardown. Bodies streamed after the view returns then miss the context.
            block = signalkit.context(**ids)
            subject = block.__enter__()
            g._signalkit_block = block
        g.signalkit_subject = subject

    def _teardown(self, exc: BaseException | None) -> None:
        block: AbstractContextManager[Subject] | None = g.pop("_signalkit_block", None)
        if block is not None:
            block.__exit__(None, None, None)

    def _ids(self) -> Identity:
        ids: Identity = {}
        try:
            ids.update(_flask_login_ids())
            if self.identify is not None:
                ids.update(identity_of(self.identify(request)))
        except Exception:  # never break the host's request
            self._failures.exception("signalkit: identifying the request failed; ids left out")
        return ids

    # -- views --------------------------------------------------------------------------------

    def _relay_view(self) -> Response:
        relay = self.relay
        limit = relay.max_body_bytes
        declared = request.content_length
        if declared is not None and declared > limit:
            return _respond(relay.too_large(f"Content-Length {declared} is"))
        try:
            body = read_at_most(request.stream.read, limit + 1)
        except RequestEntityTooLarge:  # the app's own MAX_CONTENT_LENGTH is lower
            return _respond(
                relay.too_large("the body is", current_app.config["MAX_CONTENT_LENGTH"])
            )
        if len(body) > limit:
            return _respond(relay.too_large("the body is"))
        answer = relay.handle(body, key=_key(), content_type=request.headers.get("Content-Type"))
        return _respond(answer)


def _script_view() -> Response:
    return _respond(script_response(request.headers.get("If-None-Match")))


def _flask_login_ids() -> Identity:
    flask_login: Any = sys.modules.get("flask_login")  # only if the app uses it
    if flask_login is None or getattr(current_app, "login_manager", None) is None:
        return {}
    user = flask_login.current_user
    if not getattr(user, "is_authenticated", False):
        return {}
    user_id = user.get_id()
    return {} if user_id is None else {"user_id": str(user_id)}


def _key() -> str:
    return rate_key(g.get("signalkit_subject"), request.remote_addr)


def _respond(answer: RelayResponse) -> Response:
    return Response(answer.body, status=answer.status, headers=answer.headers)


# -- one contextvars.Context per request --------------------------------------------------------


class _Scope:
    """Marks a request running in its own Context (set by the WSGI wrapper)."""

    __slots__ = ("entered",)

    def __init__(self) -> None:
        self.entered = False


def _set_subject(ids: Identity) -> Subject:
    """Set the request's subject, as ``signalkit.context(**ids)`` would, in the request's own
    Context: nothing to reset, the Context is dropped with the request (even when a server or a
    test client never closes the body)."""
    outer = _sk_context.current_subject() or Subject()
    subject = outer.model_copy(update=ids)
    _sk_context._subject.set(subject)
    _sk_context._exposure.set(None)
    return subject


class _ContextPerRequest:
    """WSGI middleware: run the app, and the iteration and closing of what it returns, inside
    one fresh :class:`contextvars.Context` per request (PEP 3333 servers may iterate a body
    after the app returned: the context must still be there, and never on the thread)."""

    def __init__(self, app: WSGIApplication, key: str) -> None:
        self.app = app
        self.key = key

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        context = contextvars.copy_context()
        environ[self.key] = _Scope()
        return _Body(context.run(self.app, environ, start_response), context)


class _Body:
    """The app's response body, iterated and closed inside the request's context."""

    def __init__(self, body: Iterable[bytes], context: contextvars.Context) -> None:
        self._body = body
        self._context = context
        self._iterator: Iterator[bytes] | None = None
        self._closed = False

    def __iter__(self) -> _Body:
        return self

    def __next__(self) -> bytes:
        if self._iterator is None:
            self._iterator = self._context.run(iter, self._body)
        return self._context.run(next, self._iterator)

    def close(self) -> None:
        self._closed = True
        close = getattr(self._body, "close", None)
        if close is not None:
            self._context.run(close)

    def __del__(self) -> None:
        # A server (or a test client) that drops a body unclosed: close it here, inside its
        # Context, where a generator that pushed Flask's request context can pop it again.
        if not self._closed:
            try:
                self.close()
            except Exception:
                logger.debug("closing an unclosed response body failed", exc_info=True)
