"""The exposure handle, and the ``recommendation`` decorator and ``exposure`` context manager.

An exposure is recorded when the wrapped call returns (or the ``with`` block ends) — that is
when the output is shown — and not at all if the call raises. Its id and its token are
available from the start, so a response built inside the block can carry the token.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from . import _ids
from ._context import _NO_SUBJECT, _exposure, _subject
from .events import ExposureEvent, ModelRef, Subject
from .scoring import score_exposure

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["Exposure", "recommendation_decorator"]

_build_lock = threading.Lock()

P = ParamSpec("P")
R = TypeVar("R")


class Exposure:
    """A handle on one exposure: pass it (or its :attr:`token`, or its :attr:`id`) to signals.

    Set :attr:`items` inside the block to log the impression list, in order: ids, or
    :class:`signalkit.Item` with ``position``/``propensity``/``score``.
    """

    __slots__ = (
        "_client",
        "_context_token",
        "_event",
        "_latency_ms",
        "_recorded",
        "_ref",
        "_seq",
        "_shown_at_ms",
        "_started",
        "_token",
        "attributes",
        "id",
        "items",
        "model",
        "span_id",
        "subject",
        "surface",
        "trace_id",
        "valid",
    )

    def __init__(
        self,
        client: Client,
        surface: str,
        model: ModelRef,
        subject: Subject,
        attributes: dict[str, Any] | None,
        *,
        at_ms: int | None = None,
        valid: bool = True,
    ) -> None:
        self._client = client
        self._started = time.perf_counter()
        self._latency_ms: float | None = None
        self.id = _ids.stamp()[1] if at_ms is None else _ids.new_id(at_ms * 1_000_000)
        self.surface = surface
        self.model = model
        self.subject = subject
        self.attributes = attributes
        self.items: Iterable[Any] = ()
        self._shown_at_ms: int | None = at_ms
        self._token: str | None = None
        self._context_token: contextvars.Token[Exposure | None] | None = None
        self._ref: Any = None  # what signals need of it, made once the time shown is fixed
        self._event: ExposureEvent | None = None
        self._recorded = False
        self._seq = 0
        if "opentelemetry.trace" in sys.modules:  # only if the application uses OpenTelemetry
            self.trace_id, self.span_id = client._trace_ids()
        else:
            self.trace_id = self.span_id = None
        self.valid = valid

    def __repr__(self) -> str:
        state = "recorded" if self._recorded else "open"
        return f"<Exposure {self.id} {self.surface!r} {state}>"

    @property
    def shown_at_ms(self) -> int:
        """When the output was shown (Unix ms): fixed when the token is first made, or at the
        end of the call, whichever comes first, so the token and the event always agree."""
        if self._shown_at_ms is None:
            self._shown_at_ms = time.time_ns() // 1_000_000
        return self._shown_at_ms

    @property
    def token(self) -> str:
        """Signed token of this exposure, to send to the frontend or another service.

        Empty for an exposure signalkit rejected (bad arguments, counted in ``stats``): a
        signal given an empty token is rejected too, rather than pointing at nothing."""
        if not self.valid:
            return ""
        if self._token is None:
            self._token = self._client._signer.sign(self.id, self.shown_at_ms, self.model)
        return self._token

    @property
    def event(self) -> ExposureEvent | None:
        """The recorded event, once the call returned (None before, or if it was rejected)."""
        if self._event is None and self._recorded:
            with _build_lock:  # the dispatcher may be building it at this very moment
                if self._event is None:
                    client = self._client
                    self._event = client._exposure_event(self, score_exposure(client.policy))
        return self._event

    def _finish(self) -> None:
        self._client._record_exposure(self)  # also measures the latency

    # -- context manager (sync and async) ------------------------------------------------

    def __enter__(self) -> Exposure:
        self._context_token = _exposure.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._finish()
        else:  # nothing was shown: current_exposure() must not point at it
            self._forget()

    def _forget(self) -> None:
        token, self._context_token = self._context_token, None
        if token is not None:
            with contextlib.suppress(ValueError):  # exited in another context than entered
                _exposure.reset(token)

    async def __aenter__(self) -> Exposure:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def recommendation_decorator(
    get_client: Callable[[], Client | None],
    surface: str,
    model: str | None,
    model_version: str | None,
    model_variant: str | None,
    attributes: dict[str, Any] | None,
    items: Callable[[Any], Iterable[Any]] | None,
    subject: dict[str, str | None],
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Build the decorator behind ``Client.recommendation`` and ``signalkit.recommendation``.

    ``get_client`` is called at each call, so the module-level decorator follows
    ``signalkit.configure()`` made after the function was decorated.
    """

    static_subject = any(v is not None for v in subject.values())
    # The client last used and the model reference it checked: a decorated function is called
    # with the same arguments every time, so they are checked once per client, not per call.
    # One tuple, swapped whole: a thread never sees one client's reference with another client.
    checked: list[tuple[Any, ModelRef]] = [(object(), ModelRef())]  # object(): never a client

    def open_exposure(client: Client | None) -> Exposure | None:
        """The exposure of a call, the first time for ``client`` (then ``checked`` serves)."""
        if client is None:  # the default client could not start (already logged)
            return None
        if static_subject or attributes is not None:
            return client.exposure(
                surface,
                model=model,
                model_version=model_version,
                model_variant=model_variant,
                attributes=attributes,
                user_id=subject["user_id"],
                anonymous_id=subject["anonymous_id"],
                session_id=subject["session_id"],
                tenant_id=subject["tenant_id"],
            )
        exp = client._open_exposure(surface, model, model_version, model_variant)
        if exp.valid:
            checked[0] = (client, exp.model)
        return exp

    def take_items(exp: Exposure, result: Any) -> None:
        assert items is not None
        try:
            exp.items = items(result)
        except Exception as exc:  # the user's extractor must not break their call
            exp._client._internal_error("items", exc)

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(fn):
            afn = cast(Callable[P, Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def awrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                client = get_client()
                exp: Exposure | None
                last, ref = checked[0]
                if client is last:
                    exp = Exposure(client, surface, ref, _subject.get() or _NO_SUBJECT, None)
                else:
                    exp = open_exposure(client)
                    if exp is None:
                        return await afn(*args, **kwargs)
                exp._context_token = _exposure.set(exp)
                try:
                    result = await afn(*args, **kwargs)
                except BaseException:
                    exp._forget()
                    raise
                if items is not None:
                    take_items(exp, result)
                exp._client._record_exposure(exp)  # also measures the latency
                return result

            return cast(Callable[P, R], awrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            client = get_client()
            exp: Exposure | None
            last, ref = checked[0]
            if client is last:  # the usual call: no frame more than needed
                exp = Exposure(client, surface, ref, _subject.get() or _NO_SUBJECT, None)
            else:
                exp = open_exposure(client)
                if exp is None:
                    return fn(*args, **kwargs)
            exp._context_token = _exposure.set(exp)
            try:
                result = fn(*args, **kwargs)
            except BaseException:
                exp._forget()
                raise
            if items is not None:
                take_items(exp, result)
            exp._client._record_exposure(exp)  # also measures the latency
            return result

        return wrapper

    return decorate
