"""Hooking a Stainless-generated LLM client (the ``openai`` and ``anthropic`` SDKs) per instance.

Private, shared by ``signalkit-openai`` and ``signalkit-anthropic``: both SDKs are generated
by the same tool and have the same shape, so the hook is written once here and imports
neither. Each adapter says which resources and request paths to observe and how to read
their responses (:class:`Route`); see :mod:`signalkit._genai` for what is recorded.

One hook per resource: every resource method that calls the API goes through the instance
attribute ``resource._post`` (the client's ``post``), so replacing it on the instance covers
``create``, ``parse`` and the ``stream()`` helpers, sync and async, and nothing else —
other clients in the process, and the classes, stay untouched. The object the SDK returns is
returned as it is; a stream keeps its identity and type, and only its item iterator (the
``_iterator`` attribute its ``__iter__``/``__next__`` read) and its HTTP response's
``close`` are wrapped, to see the chunks go by and the caller close it early.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._genai import Completion, Settings, awatch, open_completion, remember, watch

__all__ = ["Route", "instrument", "is_instrumented", "uninstrument"]

RAW_RESPONSE_HEADER = "x-stainless-raw-response"
"""Set by ``with_raw_response`` / ``with_streaming_response``: such calls pass untouched."""


@dataclass(frozen=True, slots=True)
class Route:
    """How to observe one API path (``/chat/completions``, ``/v1/messages``...)."""

    operation: str
    """``gen_ai.operation.name``, e.g. ``chat``."""
    read: Callable[[Completion, Any], None]
    """Read a whole response (ids, model, finish reasons, usage, :meth:`Completion.text`)."""
    read_chunk: Callable[[Completion, Any], None]
    """Read one stream event the same way."""


@dataclass(slots=True)
class _State:
    settings: Settings
    routes: Mapping[str, Route]
    resources: Callable[[Any], Sequence[Any]]
    hooked: list[tuple[Any, Callable[..., Any], Any]] = field(default_factory=list)
    copy: Callable[..., Any] | None = None
    active: bool = True

    def route(self, path: object, kwargs: Mapping[str, Any]) -> Route | None:
        if not self.active or not isinstance(path, str):
            return None
        route = self.routes.get(path)
        if route is None:
            return None
        options = kwargs.get("options")
        headers = options.get("headers") if isinstance(options, Mapping) else None
        if headers:
            for name in headers:
                if isinstance(name, str) and name.lower() == RAW_RESPONSE_HEADER:
                    return None
        return route


_states: weakref.WeakKeyDictionary[Any, _State] = weakref.WeakKeyDictionary()


def is_instrumented(sdk_client: Any) -> bool:
    """Whether ``sdk_client`` is instrumented now."""
    state = _states.get(sdk_client)
    return state is not None and state.active


def instrument(
    sdk_client: Any,
    settings: Settings,
    *,
    routes: Mapping[str, Route],
    resources: Callable[[Any], Sequence[Any]],
) -> None:
    """Hook ``sdk_client``'s ``resources`` (after undoing an earlier hook: new settings win).

    Raises ``TypeError`` (for the adapter to turn into a ``ConfigError``) when a resource has
    no ``_post``: an SDK whose shape changed is refused, not half-instrumented.
    """
    found = list(resources(sdk_client))
    for resource in found:
        if not callable(getattr(resource, "_post", None)):
            raise TypeError(f"{type(resource).__name__} has no _post method")
    uninstrument(sdk_client)
    state = _State(settings, routes, resources)
    for resource in found:
        original = resource._post
        wrapper = _post_hook(original, state)
        resource._post = wrapper
        state.hooked.append((resource, wrapper, original))
    cls_copy = getattr(type(sdk_client), "copy", None)
    if callable(cls_copy):
        state.copy = _copy_hook(sdk_client, cls_copy, state)
        # with_options is the class's `copy` under another name: shadow both
        sdk_client.copy = sdk_client.with_options = state.copy
    _states[sdk_client] = state


def uninstrument(sdk_client: Any) -> bool:
    """Undo :func:`instrument`; False if ``sdk_client`` was not instrumented.

    A hook another library wrapped since cannot be taken out of its chain: it is switched off
    instead (calls pass straight through), so the result is the same.
    """
    state = _states.pop(sdk_client, None)
    if state is None:
        return False
    state.active = False
    for resource, wrapper, original in state.hooked:
        if resource.__dict__.get("_post") is wrapper:
            resource._post = original
    if state.copy is not None:
        for name in ("copy", "with_options"):
            if sdk_client.__dict__.get(name) is state.copy:
                delattr(sdk_client, name)
    return True


def _copy_hook(sdk_client: Any, cls_copy: Callable[..., Any], state: _State) -> Any:
    ref = weakref.ref(sdk_client)  # the hook lives on the client: no cycle through it

    def copy(*args: Any, **kwargs: Any) -> Any:
        new = cls_copy(ref(), *args, **kwargs)
        if state.active:
            try:
                instrument(new, state.settings, routes=state.routes, resources=state.resources)
            except Exception as exc:  # the copy works, unobserved: say so
                _internal_error(state.settings, "instrument.copy", exc)
        return new

    return copy


def _internal_error(settings: Settings, where: str, exc: Exception) -> None:
    client = settings.client
    if client is None:
        from . import _recording_client

        client = _recording_client()
    if client is not None:
        client._internal_error(where, exc)


def _post_hook(original: Callable[..., Any], state: _State) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(original):

        async def apost(path: Any, *args: Any, **kwargs: Any) -> Any:
            route = state.route(path, kwargs)
            completion = None if route is None else _open(state, route, kwargs)
            if route is None or completion is None:
                return await original(path, *args, **kwargs)
            result = await original(path, *args, **kwargs)  # a failure records nothing
            _observe(result, completion, route, is_async=True)
            return result

        return apost

    def post(path: Any, *args: Any, **kwargs: Any) -> Any:
        route = state.route(path, kwargs)
        completion = None if route is None else _open(state, route, kwargs)
        if route is None or completion is None:
            return original(path, *args, **kwargs)
        result = original(path, *args, **kwargs)  # a failure records nothing
        _observe(result, completion, route, is_async=False)
        return result

    return post


def _open(state: _State, route: Route, kwargs: Mapping[str, Any]) -> Completion | None:
    body = kwargs.get("body")
    model = body.get("model") if isinstance(body, Mapping) else None
    return open_completion(
        state.settings,
        operation=route.operation,
        request_model=model,
        stream=bool(kwargs.get("stream")),
    )


def _observe(result: Any, completion: Completion, route: Route, *, is_async: bool) -> None:
    """Record a response, or start watching a stream. Never raises (outside strict mode)."""
    try:
        if completion.stream and _watch_stream(result, completion, route, is_async):
            completion.set_current()  # opened now, recorded when the stream ends
            remember(result, completion.exposure)
            return
        try:
            route.read(completion, result)
        except Exception as exc:  # an unexpected shape: record what was read
            completion.failed("genai.response", exc)
        if completion.finish():
            completion.set_current()
            remember(result, completion.exposure)
    except Exception as exc:
        completion.failed("genai", exc)


def _watch_stream(stream: Any, completion: Completion, route: Route, is_async: bool) -> bool:
    items = getattr(stream, "_iterator", None)
    if items is None:
        return False
    stream._iterator = (awatch if is_async else watch)(items, completion, route.read_chunk)
    response = getattr(stream, "response", None)
    if response is None:
        return True
    if is_async:
        aclose = response.aclose

        async def aclose_hook() -> None:
            try:
                await aclose()
            finally:
                completion.closed()

        response.aclose = aclose_hook
    else:
        close = response.close

        def close_hook() -> None:
            try:
                close()
            finally:
                completion.closed()

        response.close = close_hook
    return True
