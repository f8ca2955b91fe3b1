"""The browser relay: record signals a web page sends, trusting only what its tokens prove.

A page cannot hold signalkit's secret, but it can hold the exposure tokens the server handed
out with each recommendation. :class:`Relay` takes a JSON batch a page posts (its wire format is
in ``docs/relay.md``), verifies every token, enforces size and rate limits, rejects forgeries
with a clear 4xx, records the rest through a :class:`~signalkit.Client`, and says per signal
what it did. It knows no web framework: the FastAPI/Starlette, Django and Flask adapters read
the request, call :meth:`Relay.handle` and write the :class:`RelayResponse` back.

Time-to-action stays honest without trusting the page's clock: a signal carries ``age_ms``, how
long before sending it happened by the page's monotonic clock, and the relay dates it
``now - age_ms`` on the server's clock.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import orjson

from ._client import Client, _raise_rejections
from ._errors import ConfigError, InvalidEvent, InvalidToken
from .events import Event
from .tokens import PREFIX

__all__ = [
    "BROWSER_KINDS",
    "Relay",
    "RelayResponse",
    "RelayStats",
    "relay_script",
    "script_response",
]

BROWSER_KINDS: frozenset[str] = frozenset({"action", "toggle", "feedback", "correction"})
"""Signal kinds a page may send by default. ``outcome`` is left out on purpose: a purchase or a
resolved ticket is the server's fact to record, and a page could claim one it never had."""

_ALL_KINDS = frozenset({"action", "toggle", "feedback", "correction", "outcome"})
_COMMON_FIELDS = frozenset({"kind", "token", "age_ms", "sid", "attributes"})
_KIND_FIELDS: dict[str, frozenset[str]] = {
    "action": frozenset({"action", "item_id"}),
    "toggle": frozenset({"state", "element", "dwell_ms"}),
    "feedback": frozenset({"rating", "scale", "choice", "comment"}),
    "correction": frozenset({"original", "corrected"}),
    "outcome": frozenset({"name", "value", "success"}),
}
_CONTENT_TYPES = ("application/json", "text/plain")  # text/plain: sendBeacon, no preflight
_SID_MAX = 64
_MAX_AGE_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class RelayResponse:
    """What to send back to the page: status, JSON body and headers."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def payload(self) -> dict[str, Any]:
        """The body, decoded."""
        decoded: dict[str, Any] = orjson.loads(self.body)
        return decoded


@dataclass(frozen=True, slots=True)
class RelayStats:
    """What a relay has done since it was created."""

    requests: int
    """Requests handled, whatever their answer."""
    accepted: int
    """Signals recorded."""
    duplicates: int
    """Signals the page sent again (same ``sid``), acknowledged and not recorded twice."""
    rejected: dict[str, int]
    """Signals and requests refused, by reason (``token_tampered``, ``rate_limited``...)."""


class _Refused(Exception):
    """One signal refused by the relay itself (before or instead of the client)."""

    def __init__(self, reason: str, field: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field
        self.status = status


class _Buckets:
    """Token buckets per caller key, at most ``max_keys`` of them (least recently seen go)."""

    def __init__(self, rate: float, burst: float, max_keys: int) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, cost: float, now: float) -> float:
        """Take ``cost`` tokens; return 0.0, or the seconds to wait when there are too few."""
        level, last = self._state.pop(key, (self.burst, now))
        level = min(self.burst, level + (now - last) * self.rate)
        wait = 0.0
        if cost > level:
            wait = (cost - level) / self.rate if cost <= self.burst else math.inf
        else:
            level -= cost
        self._state[key] = (level, now)
        if len(self._state) > self.max_keys:
            self._state.popitem(last=False)
        return wait


class Relay:
    """Record signals posted by web pages that carry exposure tokens.

    ``kinds``: which signal kinds pages may send (default :data:`BROWSER_KINDS`).
    ``max_body_bytes`` and ``max_signals``: per request. ``rate`` and ``burst``: signals per
    second (and the most at once) per caller key — the adapters use the session or the client
    address. ``max_signals_per_exposure``: how many signals one token may carry in all (a page
    replaying one valid token in a loop gets 429s). Memory stays bounded: at most ``max_keys``
    callers and ``max_exposures`` exposures are remembered.
    """

    def __init__(
        self,
        client: Client | None = None,
        *,
        kinds: Iterable[str] = BROWSER_KINDS,
        max_body_bytes: int = 64 * 1024,
        max_signals: int = 100,
        rate: float = 20.0,
        burst: float = 200.0,
        max_signals_per_exposure: int = 50,
        max_keys: int = 10_000,
        max_exposures: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        kinds = frozenset(kinds)
        unknown = kinds - _ALL_KINDS
        if unknown:
            raise ConfigError(f"kinds: unknown signal kind(s) {sorted(unknown)}")
        for name, value in (
            ("max_body_bytes", max_body_bytes),
            ("max_signals", max_signals),
            ("max_signals_per_exposure", max_signals_per_exposure),
            ("max_keys", max_keys),
            ("max_exposures", max_exposures),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: must be a positive int, got {value!r}")
        if not (isinstance(rate, int | float) and rate > 0 and math.isfinite(rate)):
            raise ConfigError(f"rate: must be a positive number of signals per second: {rate!r}")
        if not (isinstance(burst, int | float) and burst >= 1 and math.isfinite(burst)):
            raise ConfigError(f"burst: must be a number >= 1, got {burst!r}")
        self._client = client
        self.kinds = kinds
        self.max_body_bytes = max_body_bytes
        self.max_signals = max_signals
        self.max_signals_per_exposure = max_signals_per_exposure
        self.max_exposures = max_exposures
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets = _Buckets(float(rate), float(burst), max_keys)
        self._per_exposure: OrderedDict[str, int] = OrderedDict()
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._requests = self._accepted = self._duplicates = 0
        self._rejected: dict[str, int] = {}

    @property
    def client(self) -> Client:
        """The client signals are recorded with (the default client unless one was given)."""
        if self._client is not None:
            return self._client
        from . import get_client

        return get_client()

    def stats(self) -> RelayStats:
        """A snapshot of what this relay has accepted and refused."""
        with self._lock:
            return RelayStats(
                self._requests, self._accepted, self._duplicates, dict(self._rejected)
            )

    def handle(
        self, body: bytes, *, key: str = "", content_type: str | None = "application/json"
    ) -> RelayResponse:
        """Handle one posted batch; never raises.

        ``key`` identifies the caller for rate limiting (session id or client address).
        The request's subject (user, session) comes from :func:`signalkit.context`, which the
        framework adapters' middleware sets — never from the page.
        """
        with self._lock:
            self._requests += 1
        try:
            return self._handle(body, key, content_type)
        except Exception as exc:  # never break the host's request handling
            self._count("internal_error")
            return _json(500, {"error": "internal_error", "message": type(exc).__name__})

    # -- request level ---------------------------------------------------------------------

    def _handle(self, body: bytes, key: str, content_type: str | None) -> RelayResponse:
        mime = (content_type or "").split(";", 1)[0].strip().lower()
        if mime not in _CONTENT_TYPES:
            self._count("unsupported_media_type")
            return _error(
                415, "unsupported_media_type", f"send application/json, not {mime or 'nothing'}"
            )
        if len(body) > self.max_body_bytes:
            self._count("body_too_large")
            return _error(
                413, "body_too_large", f"{len(body)} bytes; the limit is {self.max_body_bytes}"
            )
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            self._count("malformed_json")
            return _error(400, "malformed_json", f"body is not JSON: {exc}"[:200])
        signals = doc.get("signals") if isinstance(doc, dict) else None
        if not isinstance(signals, list):
            self._count("malformed_batch")
            return _error(400, "malformed_batch", 'expected {"signals": [...]}', field="signals")
        if len(signals) > self.max_signals:
            self._count("too_many_signals")
            return _error(
                413,
                "too_many_signals",
                f"{len(signals)} signals; the limit is {self.max_signals} per request",
                field="signals",
            )
        with self._lock:
            wait = self._buckets.take(key, max(len(signals), 1), self._clock())
        if wait:
            self._count("rate_limited", len(signals) or 1)
            retry_after = max(1, math.ceil(wait)) if math.isfinite(wait) else 60
            return _error(
                429,
                "rate_limited",
                f"too many signals from this caller; retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )

        client = self.client
        now_ms = time.time_ns() // 1_000_000
        accepted = duplicates = 0
        rejected: list[dict[str, Any]] = []
        statuses: set[int] = set()
        for index, signal in enumerate(signals):
            try:
                if self._record(client, signal, now_ms):
                    accepted += 1
                else:
                    duplicates += 1
            except _Refused as exc:
                self._count(exc.reason)
                statuses.add(exc.status)
                rejected.append(
                    {"index": index, "reason": exc.reason, "field": exc.field, "message": str(exc)}
                )
        with self._lock:
            self._accepted += accepted
            self._duplicates += duplicates
        # A forged token outranks everything else: the page gets a 403 whatever else it sent.
        status = next((s for s in (403, 503, 429, 400) if s in statuses), 202)
        payload: dict[str, Any] = {
            "accepted": accepted,
            "duplicates": duplicates,
            "rejected": rejected,
        }
        return _json(status, payload)

    # -- one signal ------------------------------------------------------------------------

    def _record(self, client: Client, signal: object, now_ms: int) -> bool:
        """Record one signal; False for a duplicate; raise :class:`_Refused` otherwise."""
        if not isinstance(signal, dict):
            raise _Refused("malformed_signal", "signals", "each signal must be a JSON object")
        kind = signal.get("kind")
        if not isinstance(kind, str) or kind not in _ALL_KINDS:
            raise _Refused("unknown_kind", "kind", f"unknown signal kind {kind!r:.40}")
        if kind not in self.kinds:
            raise _Refused(
                "kind_not_allowed", "kind", f"{kind!r} signals are not accepted from pages", 403
            )
        allowed = _COMMON_FIELDS | _KIND_FIELDS[kind]
        for name in signal:
            if name not in allowed:
                raise _Refused(
                    "unknown_field", str(name)[:40], f"unknown field {name!r:.40} for kind {kind!r}"
                )
        token = signal.get("token")
        if not isinstance(token, str) or not token.startswith(PREFIX):
            exc = InvalidToken("malformed", f"a token starting with {PREFIX!r} is required")
            client._counters.reject("token_malformed", "token", str(exc))
            raise _Refused("token_malformed", "token", str(exc), 403)
        age = signal.get("age_ms", 0)
        if (
            isinstance(age, bool)
            or not isinstance(age, int | float)
            or not math.isfinite(age)
            or not 0 <= age <= _MAX_AGE_MS
        ):
            raise _Refused("invalid_age", "age_ms", f"must be 0..{_MAX_AGE_MS} ms, got {age!r:.40}")
        sid = signal.get("sid")
        if sid is not None and (not isinstance(sid, str) or not 0 < len(sid) <= _SID_MAX):
            raise _Refused("invalid_sid", "sid", f"must be a string of 1..{_SID_MAX} characters")
        at_ms = now_ms - int(age)
        try:
            claims = client.verify(token, at=_datetime(at_ms))
        except InvalidToken as exc:
            client._counters.reject(f"token_{exc.reason}", "token", str(exc))
            raise _Refused(f"token_{exc.reason}", "token", str(exc), 403) from None

        with self._lock:
            if sid is not None and (claims.exposure_id, sid) in self._seen:
                return False
            used = self._per_exposure.pop(claims.exposure_id, 0)
            if used >= self.max_signals_per_exposure:
                self._per_exposure[claims.exposure_id] = used
                raise _Refused(
                    "exposure_limit",
                    "token",
                    f"this exposure already carried {used} signals "
                    f"(max_signals_per_exposure={self.max_signals_per_exposure})",
                    429,
                )
            self._per_exposure[claims.exposure_id] = used + 1
            if len(self._per_exposure) > self.max_exposures:
                self._per_exposure.popitem(last=False)
            if sid is not None:
                self._seen[(claims.exposure_id, sid)] = None
                if len(self._seen) > self.max_exposures:
                    self._seen.popitem(last=False)

        at = None if age == 0 else _datetime(at_ms)
        reset = _raise_rejections.set(True)
        try:
            event = _call(client, kind, token, signal, at)
        except (InvalidEvent, InvalidToken) as exc:
            with self._lock:  # refused: it must not count against the exposure or the sid
                self._per_exposure[claims.exposure_id] = max(
                    0, self._per_exposure.get(claims.exposure_id, 1) - 1
                )
                if sid is not None:
                    self._seen.pop((claims.exposure_id, sid), None)
            reason = f"token_{exc.reason}" if isinstance(exc, InvalidToken) else exc.reason
            if exc.reason == "after_shutdown":
                raise _Refused(reason, exc.field, str(exc), 503) from None
            status = 403 if isinstance(exc, InvalidToken) else 400
            raise _Refused(reason, exc.field, str(exc), status) from None
        finally:
            _raise_rejections.reset(reset)
        if event is None:  # dropped on purpose by a processor, or an internal error (counted)
            raise _Refused("not_recorded", "signals", "the client did not record it", 503)
        return True

    def too_large(self, what: str = "body", limit: int | None = None) -> RelayResponse:
        """The 413 answer for a body refused before it reached :meth:`handle` (a declared
        ``Content-Length`` over the limit, or a stream cut off while reading), counted as
        ``body_too_large`` like the relay's own refusals. Framework adapters use it."""
        self._count("body_too_large")
        limit = self.max_body_bytes if limit is None else limit
        return _error(413, "body_too_large", f"{what} over the limit of {limit} bytes")

    def _count(self, reason: str, n: int = 1) -> None:
        with self._lock:
            self._rejected[reason] = self._rejected.get(reason, 0) + n


def _call(
    client: Client, kind: str, token: str, s: Mapping[str, Any], at: datetime | None
) -> Event | None:
    attributes = s.get("attributes")
    if kind == "action":
        return client.action(
            token,
            s.get("action", "clicked"),
            item_id=s.get("item_id"),
            at=at,
            attributes=attributes,
        )
    if kind == "toggle":
        return client.toggle(
            token,
            s.get("state"),  # type: ignore[arg-type]  # checked by the client
            element=s.get("element"),
            dwell_ms=s.get("dwell_ms"),
            at=at,
            attributes=attributes,
        )
    if kind == "feedback":
        scale = s.get("scale", (-1.0, 1.0))
        return client.feedback(
            token,
            s.get("rating"),
            scale=scale,
            choice=s.get("choice"),
            comment=s.get("comment"),
            at=at,
            attributes=attributes,
        )
    if kind == "correction":
        for name in ("original", "corrected"):
            if name not in s:
                raise InvalidEvent(name, "is required for a correction")
        return client.correction(token, s["original"], s["corrected"], at=at, attributes=attributes)
    if "name" not in s:
        raise InvalidEvent("name", "is required for an outcome")
    return client.outcome(
        token,
        s["name"],
        value=s.get("value"),
        success=s.get("success"),
        at=at,
        attributes=attributes,
    )


def _datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _json(
    status: int, payload: Mapping[str, Any], headers: dict[str, str] | None = None
) -> RelayResponse:
    return RelayResponse(
        status,
        orjson.dumps(payload),
        {"Content-Type": "application/json", "Cache-Control": "no-store", **(headers or {})},
    )


def _error(
    status: int,
    reason: str,
    message: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> RelayResponse:
    payload: dict[str, Any] = {"error": reason, "message": message}
    if field is not None:
        payload["field"] = field
    return _json(status, payload, headers)


def relay_script() -> str:
    """The JavaScript a page includes to send signals to a relay (``signalkit-relay.js``).

    Framework adapters serve it; ``docs/relay.md`` shows how a page uses it.
    """
    return resources.files("signalkit").joinpath("relay.js").read_text("utf-8")


_SCRIPT: bytes | None = None
_SCRIPT_ETAG = ""


def script_response(if_none_match: str | None = None) -> RelayResponse:
    """The answer to ``GET /signals.js``: :func:`relay_script` with a strong ``ETag`` (it
    changes exactly when the installed signalkit's script does) and an hour's caching, or
    ``304 Not Modified`` when ``if_none_match`` (the request's ``If-None-Match``) names it."""
    global _SCRIPT, _SCRIPT_ETAG
    if _SCRIPT is None:
        script = relay_script().encode("utf-8")
        _SCRIPT_ETAG = '"' + hashlib.sha256(script).hexdigest()[:32] + '"'
        _SCRIPT = script
    headers = {"ETag": _SCRIPT_ETAG, "Cache-Control": "public, max-age=3600"}
    for tag in (if_none_match or "").split(","):
        tag = tag.strip()
        if tag and (tag == "*" or tag.removeprefix("W/") == _SCRIPT_ETAG):
            return RelayResponse(304, b"", headers)
    headers["Content-Type"] = "text/javascript; charset=utf-8"
    return RelayResponse(200, _SCRIPT, headers)
