"""One LLM completion, observed from request to last chunk and recorded as one exposure.

Private, shared by the LLM client adapters (``signalkit-openai``, ``signalkit-anthropic``).
Each adapter knows its SDK: how to hook it and how to read a response or a stream chunk. This
module holds what is the same for every vendor and imports none: the timing (latency, time to
first chunk), the output digest, the OpenTelemetry GenAI attribute names, the rules for when
a stream's exposure is recorded, and the weak map from a returned object to its exposure.

Recording never raises into the host (outside ``strict=True``): a failure is counted as the
client's ``internal_error`` and the completion goes on untouched.
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ._context import _exposure
from ._errors import ConfigError, InvalidEvent

if TYPE_CHECKING:
    from ._client import Client
    from ._instrument import Exposure

__all__ = [
    "Completion",
    "Settings",
    "awatch",
    "exposure_of",
    "open_completion",
    "remember",
    "settings",
    "watch",
]

T = TypeVar("T")
End = Literal["complete", "closed", "error"]
"""How a completion ended: read to its end, closed early by the caller, or failed midway."""

# OpenTelemetry GenAI semantic-convention names (semantic-conventions-genai, client inference).
PROVIDER = "gen_ai.provider.name"
OPERATION = "gen_ai.operation.name"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_STREAM = "gen_ai.request.stream"
RESPONSE_ID = "gen_ai.response.id"
RESPONSE_MODEL = "gen_ai.response.model"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
CACHE_WRITE_TOKENS = "gen_ai.usage.cache_write.input_tokens"
REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"
ERROR_TYPE = "error.type"
# signalkit's own (no convention exists for them).
OUTPUT_SHA256 = "signalkit.output.sha256"
OUTPUT_CHARS = "signalkit.output.chars"
OUTPUT_TEXT = "signalkit.output.text"
OUTPUT_TRUNCATED = "signalkit.output.truncated"
STREAM_END = "signalkit.stream.end"

USAGE_NAMES = {
    "input": INPUT_TOKENS,
    "output": OUTPUT_TOKENS,
    "cache_read": CACHE_READ_TOKENS,
    "cache_write": CACHE_WRITE_TOKENS,
    "reasoning": REASONING_TOKENS,
}
CAPTURE_MAX_CHARS = 1024
"""Captured output text is cut to this (the limit of one attribute value)."""
_RESERVED_KEYS = 24
"""Attribute keys a completion may add itself; the user's keys get the rest of the 64."""
_ATTR_MAX_KEYS = 64
_REMEMBER_MAX = 4096


@dataclass(frozen=True, slots=True)
class Settings:
    """What ``instrument()`` was given, checked once."""

    client: Client | None
    """The signalkit client; None: the default client, looked up at each call."""
    surface: str
    provider: str
    model_variant: str | None
    attributes: Mapping[str, str | int | float | bool]
    digest: bool
    capture_output: bool


def settings(
    where: str,
    *,
    client: Client | None,
    surface: str,
    provider: str,
    model_variant: str | None,
    attributes: Mapping[str, Any] | None,
    digest: bool,
    capture_output: bool,
) -> Settings:
    """Check ``instrument()``'s arguments; raise :class:`ConfigError` naming the bad one."""
    from ._client import Client, _check_attributes, _check_name

    if client is not None and not isinstance(client, Client):
        raise ConfigError(
            f"{where}.client: must be a signalkit.Client or None (the default client), "
            f"got {type(client).__name__}"
        )
    try:
        _check_name("surface", surface)
        _check_name("model_variant", model_variant, required=False)
        attrs, _ = _check_attributes(None if attributes is None else dict(attributes))
    except InvalidEvent as exc:
        raise ConfigError(f"{where}.{exc}") from None
    if len(attrs) > _ATTR_MAX_KEYS - _RESERVED_KEYS:
        raise ConfigError(
            f"{where}.attributes: at most {_ATTR_MAX_KEYS - _RESERVED_KEYS} keys (the rest are "
            f"the completion's own), got {len(attrs)}"
        )
    for name, value in (("digest", digest), ("capture_output", capture_output)):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}.{name}: must be True or False, got {value!r:.40}")
    return Settings(client, surface, provider, model_variant, attrs, digest, capture_output)


class Completion:
    """One LLM call being observed: opened before the request, finished exactly once.

    The adapter sets what it reads from the response (``response_id``, ``response_model``,
    ``finish_reasons``, :meth:`usage`, :meth:`text`) and calls :meth:`finish`; a stream's
    chunks go through :func:`watch` / :func:`awatch`, which finish it when the stream ends.
    """

    __slots__ = (
        "_capture",
        "_chars",
        "_digest",
        "_done",
        "_first_chunk_s",
        "_inside",
        "_lock",
        "_t0",
        "_usage",
        "client",
        "exposure",
        "finish_reasons",
        "operation",
        "request_model",
        "response_id",
        "response_model",
        "scratch",
        "settings",
        "stream",
    )

    def __init__(
        self,
        client: Client,
        settings: Settings,
        *,
        operation: str,
        request_model: str | None,
        stream: bool,
    ) -> None:
        self.client = client
        self.settings = settings
        self.operation = operation
        self.request_model = request_model
        self.stream = stream
        self.exposure: Exposure = client.exposure(
            settings.surface,
            model=request_model,
            model_variant=settings.model_variant,
        )
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.finish_reasons: list[str] = []
        self.scratch: dict[str, Any] = {}
        """The adapter's own running state (a stream's partial usage...)."""
        self._usage: dict[str, int] = {}
        self._digest = hashlib.sha256() if settings.digest else None
        self._capture: list[str] | None = [] if settings.capture_output else None
        self._chars = 0
        self._first_chunk_s: float | None = None
        self._inside = False
        self._done = False
        self._lock = threading.Lock()
        self._t0 = time.perf_counter()  # last: the request starts right after

    # -- what the adapter read ----------------------------------------------------------

    def chunk(self) -> None:
        """A stream chunk arrived (the first one fixes the time to first chunk)."""
        if self._first_chunk_s is None:
            self._first_chunk_s = time.perf_counter() - self._t0

    def text(self, piece: str) -> None:
        """Output text, in the order it was shown (whole, or one delta at a time)."""
        if not piece:
            return
        self._chars += len(piece)
        if self._digest is not None:
            self._digest.update(piece.encode("utf-8", "surrogatepass"))
        capture = self._capture
        if capture is not None:
            kept = self._chars - len(piece)  # before this piece, all of it was kept if short
            room = CAPTURE_MAX_CHARS + 1 - kept
            if room > 0:
                capture.append(piece[:room])

    def usage(self, **counts: object) -> None:
        """Token counts by kind (``input``, ``output``, ``cache_read``, ``cache_write``,
        ``reasoning``); ints only, a later count replaces an earlier one."""
        for kind, value in counts.items():
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                self._usage[kind] = value

    def failed(self, where: str, exc: Exception) -> None:
        """Reading the response went wrong: count it (raise in strict mode), go on."""
        self.client._internal_error(where, exc)

    # -- the end --------------------------------------------------------------------------

    def set_current(self) -> None:
        """Make this completion's exposure :func:`signalkit.current_exposure` here."""
        _exposure.set(self.exposure)

    def finish(self, end: End = "complete", error: BaseException | None = None) -> bool:
        """Record the exposure, once; True if this call recorded it.

        A stream that ended before its first chunk, closed or failed, showed nothing, and is
        not recorded (as a failed call is not).
        """
        with self._lock:
            if self._done:
                return False
            self._done = True
        if end != "complete" and self._first_chunk_s is None:
            return False
        try:
            latency_ms = (time.perf_counter() - self._t0) * 1000
            exp = self.exposure
            attrs = self._attributes(end, error)
            if exp.attributes:  # set on the handle by the caller while the stream ran
                attrs.update(exp.attributes)
            exp.attributes = attrs
            if (
                self.response_model
                and self.response_model != self.request_model
                and exp._token is None  # the token signs the model: keep them equal
                and exp._ref is None
            ):
                exp.model = self.client._model_ref(
                    self.response_model, None, self.settings.model_variant
                )
            exp._latency_ms = latency_ms
            return self.client._record_exposure(exp)
        except InvalidEvent as exc:
            self.client._reject(exc)
        except Exception as exc:
            self.client._internal_error("genai", exc)
        return False

    def _attributes(self, end: End, error: BaseException | None) -> dict[str, Any]:
        s = self.settings
        attrs: dict[str, Any] = {PROVIDER: s.provider, OPERATION: self.operation}
        if self.request_model:
            attrs[REQUEST_MODEL] = self.request_model
        if self.response_model:
            attrs[RESPONSE_MODEL] = self.response_model
        if self.response_id:
            attrs[RESPONSE_ID] = self.response_id
        reasons = [r for r in self.finish_reasons if r]
        if reasons:
            attrs[FINISH_REASONS] = ",".join(reasons)
        for kind, count in self._usage.items():
            name = USAGE_NAMES.get(kind)
            if name is not None:
                attrs[name] = count
        if self.stream:
            attrs[REQUEST_STREAM] = True
            attrs[STREAM_END] = end
            if self._first_chunk_s is not None:
                attrs[TIME_TO_FIRST_CHUNK] = round(self._first_chunk_s, 6)
        if error is not None:
            attrs[ERROR_TYPE] = type(error).__qualname__
        attrs[OUTPUT_CHARS] = self._chars
        if self._digest is not None:
            attrs[OUTPUT_SHA256] = self._digest.hexdigest()
        if self._capture is not None:
            captured = "".join(self._capture)
            attrs[OUTPUT_TEXT] = captured[:CAPTURE_MAX_CHARS]
            if len(captured) > CAPTURE_MAX_CHARS:
                attrs[OUTPUT_TRUNCATED] = True
        attrs.update(s.attributes)  # the user's own keys win
        return attrs

    # -- streams --------------------------------------------------------------------------

    def closed(self) -> None:
        """The caller closed the stream (or its response). Ignored while the stream itself
        is producing a chunk: the SDK closes the response at the end of every stream."""
        if not self._inside:
            self.finish("closed")


def open_completion(
    settings: Settings, *, operation: str, request_model: object, stream: bool
) -> Completion | None:
    """Start observing a call, or None when there is no client to record into."""
    client = settings.client
    if client is None:
        from . import _recording_client

        client = _recording_client()
        if client is None:
            return None
    try:
        model = request_model if isinstance(request_model, str) else None
        return Completion(client, settings, operation=operation, request_model=model, stream=stream)
    except Exception as exc:
        client._internal_error("genai", exc)
        return None


def watch(
    items: Iterator[T], completion: Completion, read: Callable[[Completion, T], None]
) -> Iterator[T]:
    """Yield what ``items`` yields, unchanged; ``read`` each item into ``completion``, and
    finish it when the stream ends (``complete``), fails (``error``, then re-raised) or is
    closed or dropped by the caller (``closed``)."""
    try:
        while True:
            completion._inside = True
            try:
                item = next(items)
            except StopIteration:
                completion.finish("complete")
                return
            finally:
                completion._inside = False
            _read(completion, read, item)
            yield item
    except GeneratorExit:
        completion.finish("closed")
        raise
    except BaseException as exc:
        completion.finish("error", exc)
        raise


async def awatch(
    items: AsyncIterator[T], completion: Completion, read: Callable[[Completion, T], None]
) -> AsyncIterator[T]:
    """:func:`watch` for an async stream."""
    try:
        while True:
            completion._inside = True
            try:
                item = await items.__anext__()
            except StopAsyncIteration:
                completion.finish("complete")
                return
            finally:
                completion._inside = False
            _read(completion, read, item)
            yield item
    except GeneratorExit:
        completion.finish("closed")
        raise
    except BaseException as exc:
        completion.finish("error", exc)
        raise


def _read(completion: Completion, read: Callable[[Completion, T], None], item: T) -> None:
    completion.chunk()
    try:
        read(completion, item)
    except Exception as exc:  # an unexpected chunk shape must not break the stream
        completion.failed("genai.chunk", exc)


# -- from a returned object to its exposure ----------------------------------------------

_remembered: dict[int, tuple[weakref.ref[Any], Exposure]] = {}
_remember_lock = threading.Lock()


def remember(obj: object, exposure: Exposure) -> None:
    """Map ``obj`` (a response, a stream) to its exposure while ``obj`` lives; the last
    4,096 at most, so objects the caller keeps alive cannot grow it without bound."""
    key = id(obj)

    def forget(ref: weakref.ref[Any], key: int = key) -> None:
        entry = _remembered.get(key)
        if entry is not None and entry[0] is ref:
            _remembered.pop(key, None)

    try:
        ref = weakref.ref(obj, forget)
    except TypeError:  # not weak-referenceable: current_exposure() still has it
        return
    with _remember_lock:
        _remembered.pop(key, None)  # re-insert at the end: the newest is evicted last
        _remembered[key] = (ref, exposure)
        while len(_remembered) > _REMEMBER_MAX:
            try:
                _remembered.pop(next(iter(_remembered)), None)
            except (StopIteration, RuntimeError):  # a collected object left meanwhile
                break


def exposure_of(obj: object) -> Exposure | None:
    """The exposure recorded (or, for a stream, opened) for a returned object, if known."""
    entry = _remembered.get(id(obj))
    if entry is None or entry[0]() is not obj:
        return None
    return entry[1]
