"""POSTs batches of events to an HTTP endpoint, one request per export, secrets kept out of sight.

httpx is imported on the first export (in the delivery thread), never by ``import signalkit``.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import math
import os
import re
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import orjson

from .._errors import ConfigError
from .._retry import classify_status, parse_retry_after, validate_retry_policy
from ..events import Event
from .base import ExportFailure, ExportResult, RetryPolicy

if TYPE_CHECKING:
    import httpx

__all__ = ["ENVELOPE_BYTES", "HttpExporter"]

MIB = 1024 * 1024

ENVELOPE_BYTES = 64
"""Upper bound of what a request body adds to its events besides one byte per event: the body
of a batch is at most ``sum(len(e.to_json()) + 1 for e in batch) + ENVELOPE_BYTES`` bytes
(before gzip), in both formats."""

MESSAGE_CHARS = 300
"""The server's message is cut to this many characters in an :class:`ExportFailure`."""

SENT_AT_MEMORY = 256
"""How many unfinished batches (failed, retry pending) keep their first ``sent_at``."""

_RESPONSE_PREVIEW_BYTES = 64 * 1024  # read at most this much of a response body
_REDACTED = "[redacted]"
_DEFAULT_POLICY = RetryPolicy()
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token
_VISIBLE_ASCII = re.compile(r"[\x20-\x7e\t]*")
_RESERVED_HEADERS = frozenset(
    {"content-length", "content-encoding", "transfer-encoding", "host", "connection"}
)
_SENSITIVE_HEADER = re.compile(
    r"auth|key|token|secret|pass|cookie|session|signature|credential", re.IGNORECASE
)
_MIN_SECRET_CHARS = 4  # shorter values of ordinary headers would garble messages if redacted


class HttpExporter:
    """POSTs each batch as ``{"events": [...], "sent_at": "<ISO 8601 UTC>"}`` (or NDJSON).

    Each :meth:`export` makes exactly one request and reports what the server said as an
    :class:`ExportFailure` (retryable, ``too_large``, ``unauthorized``, ``retry_after_s``);
    the delivery lane retries, splits and pauses by the ``http`` profile of
    :func:`signalkit._retry.classify_status`. A batch sent again is byte-identical, ``sent_at``
    included, so the receiver can dedupe by event ``id`` or by the ``Idempotency-Key`` header.

    Secrets — ``auth_token`` (sent as ``Authorization: Bearer``), every value in ``headers``,
    and credentials in the endpoint URL (``https://user:pass@host/``, sent as Basic auth) —
    never appear in ``repr``, :attr:`endpoint`, failure messages or logs. Keep keys out of the
    URL's query string: httpx logs request URLs at INFO. See ``docs/http.md``.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth_token: str | None = None,
        timeout_s: float = 10.0,
        gzip_threshold_bytes: int | None = 1024,
        format: Literal["json", "ndjson"] = "json",
        max_batch_events: int = 1000,
        max_batch_bytes: int = 5 * MIB,
        max_event_bytes: int = 1 * MIB,
        retry_policy: RetryPolicy = _DEFAULT_POLICY,
        name: str = "http",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url, display, basic = _parse_endpoint(endpoint)
        self._url = url
        self.endpoint = display
        """The endpoint with any credentials and query values replaced by ``[redacted]``."""
        self._headers, secrets = _credentials(_check_headers(headers), auth_token, basic)
        self._secrets = _with_encoded_forms(secrets + _query_values(url))

        self.timeout_s = _positive_number("timeout_s", timeout_s)
        if gzip_threshold_bytes is not None:
            gzip_threshold_bytes = _int_at_least("gzip_threshold_bytes", gzip_threshold_bytes, 0)
        self.gzip_threshold_bytes = gzip_threshold_bytes
        """Bodies longer than this many bytes are gzipped; ``None`` never compresses."""
        if format not in ("json", "ndjson"):
            raise ConfigError(f"HttpExporter.format: must be 'json' or 'ndjson', got {format!r}")
        self.format: Literal["json", "ndjson"] = format
        self.max_batch_events = _int_at_least("max_batch_events", max_batch_events, 1)
        self.max_batch_bytes = _int_at_least("max_batch_bytes", max_batch_bytes, ENVELOPE_BYTES + 2)
        """Most bytes of a request body before gzip (see :data:`ENVELOPE_BYTES`)."""
        self.max_event_bytes = _int_at_least("max_event_bytes", max_event_bytes, 1)
        if self.max_event_bytes > self.max_batch_bytes - ENVELOPE_BYTES - 1:
            raise ConfigError(
                "HttpExporter.max_event_bytes: must be at most max_batch_bytes - "
                f"{ENVELOPE_BYTES + 1} ({self.max_batch_bytes - ENVELOPE_BYTES - 1}) so that "
                f"one event fits in a request, got {self.max_event_bytes}"
            )
        self.retry_policy = validate_retry_policy(retry_policy, "HttpExporter.retry_policy")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError("HttpExporter.name: must be a non-empty str")
        self.name = name
        if transport is not None and not callable(getattr(transport, "handle_request", None)):
            raise ConfigError(
                "HttpExporter.transport: must be an httpx.BaseTransport (with handle_request)"
            )
        self._transport = transport

        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._client: httpx.Client | None = None
        self._inherited: httpx.Client | None = None
        self._closed = False
        self._sent_at: OrderedDict[str, str] = OrderedDict()

    def __repr__(self) -> str:
        return f"HttpExporter({self.endpoint!r}, format={self.format!r}, name={self.name!r})"

    # -- the exporter protocol -------------------------------------------------------------------

    def export(self, batch: Sequence[Event]) -> ExportResult | ExportFailure:
        """POST ``batch`` in one request and say what became of it; never raises."""
        try:
            return self._export(batch)
        except Exception as exc:  # a bug of ours must reach the lane as a result, not a crash
            return ExportFailure(retryable=True, message=self._message(f"internal error: {exc!r}"))

    content_type = "application/json"
    """Content-Type of a body made by an overridden :meth:`encode`."""
    checks_limits = True
    """This exporter measures each batch against its own byte limits (answering ``too_large``
    without sending), so the delivery lane need not serialise every event a second time."""

    def encode(self, batch: Sequence[Event], sent_at: str) -> bytes:
        """The request body for ``batch``: the extension point of vendor adapters.

        Override it (and :attr:`content_type`) to speak a vendor's batch API while keeping
        this exporter's connection reuse, gzip, auth, limits, failure reporting and
        byte-identical retries: ``sent_at`` (ISO 8601, UTC) is the time of the batch's first
        attempt, the same on every retry. The default body is signalkit's own (DESIGN §7).
        """
        parts = b",".join(event.to_json() for event in batch)
        return b'{"events":[' + parts + b'],"sent_at":' + orjson.dumps(sent_at) + b"}"

    def shutdown(self) -> None:
        """Close the connections; a later :meth:`export` sends nothing and fails."""
        with self._lock:
            client, self._client = self._client, None
            self._closed = True
            self._sent_at.clear()
        if client is not None and self._pid == os.getpid():
            with contextlib.suppress(Exception):  # closing must not break the host's exit
                client.close()

    # -- one export ------------------------------------------------------------------------------

    def _export(self, batch: Sequence[Event]) -> ExportResult | ExportFailure:
        if self._pid != os.getpid():
            self._forget_parent()
        if self._closed:
            return ExportFailure(retryable=False, message=f"{self.name} is shut down; not sent")
        if not batch:
            return ExportResult.SUCCESS
        if len(batch) > self.max_batch_events:
            return _too_large(f"{len(batch)} events, over max_batch_events={self.max_batch_events}")
        try:
            parts = [event.to_json() for event in batch]
        except Exception as exc:  # a value that cannot be JSON will not become JSON on a retry
            return ExportFailure(
                retryable=False, message=self._message(f"cannot serialise the batch: {exc!r}")
            )
        biggest = max(len(part) for part in parts)
        if biggest > self.max_event_bytes:
            return _too_large(
                f"an event of {biggest} bytes, over max_event_bytes={self.max_event_bytes}"
            )
        key = _batch_key(batch)
        if type(self).encode is not HttpExporter.encode:  # a vendor adapter's own body
            sent_at_text = self._first_sent_at(key)
            body = self.encode(batch, sent_at_text)
            content_type = self.content_type
            idempotency_key = hashlib.blake2b(
                key.encode() + sent_at_text.encode(), digest_size=16
            ).hexdigest()
        elif self.format == "ndjson":
            body = b"\n".join(parts) + b"\n"
            content_type = "application/x-ndjson"
            idempotency_key = key
        else:
            sent_at = orjson.dumps(self._first_sent_at(key))
            body = b'{"events":[' + b",".join(parts) + b'],"sent_at":' + sent_at + b"}"
            content_type = "application/json"
            # The same key promises the same payload: it changes with sent_at.
            idempotency_key = hashlib.blake2b(key.encode() + sent_at, digest_size=16).hexdigest()
        if len(body) > self.max_batch_bytes:
            self._forget(key)
            return _too_large(
                f"{len(batch)} events in {len(body)} bytes, "
                f"over max_batch_bytes={self.max_batch_bytes}"
            )
        headers = {"Idempotency-Key": idempotency_key}
        if not any(name.lower() == "content-type" for name in self._headers):
            headers["Content-Type"] = content_type
        if self.gzip_threshold_bytes is not None and len(body) > self.gzip_threshold_bytes:
            # mtime=0 and a fixed level: the same events always compress to the same bytes.
            # Level 1: a quarter of level 6's CPU for bodies ~17 % larger (benchmarks/README.md).
            body = gzip.compress(body, compresslevel=1, mtime=0)
            headers["Content-Encoding"] = "gzip"
        outcome = self._send(body, headers)
        if isinstance(outcome, ExportFailure) and (outcome.retryable or outcome.unauthorized):
            pass  # the lane sends this batch again: keep its sent_at
        else:
            self._forget(key)
        return outcome

    def _send(self, body: bytes, headers: dict[str, str]) -> ExportResult | ExportFailure:
        import httpx

        client = self._client_for_this_process()
        if client is None:
            return ExportFailure(retryable=False, message=f"{self.name} is shut down; not sent")
        try:
            with client.stream("POST", self._url, content=body, headers=headers) as response:
                status = response.status_code
                preview = _read_preview(response, self.timeout_s)
        except (httpx.TimeoutException, _SlowBody) as exc:
            return self._transport_failure(
                f"no answer within timeout_s={self.timeout_s:g} ({type(exc).__name__})"
            )
        except Exception as exc:  # connection refused or reset, cut short, bad response...
            detail = str(exc).strip()
            name = type(exc).__name__
            return self._transport_failure(f"{name}: {detail}" if detail else name)
        verdict = classify_status(status, "http")
        if verdict == "success":
            return ExportResult.SUCCESS
        said = _server_message(preview, response.headers)
        location = response.headers.get("location")
        if 300 <= status < 400 and location:
            said = (
                f"redirects are not followed; set endpoint to the final URL ({_mask_url(location)})"
            )
        reason = response.reason_phrase
        head = f"HTTP {status}" + (f" {reason}" if reason else "")
        return ExportFailure(
            retryable=verdict == "retry",
            message=self._message(f"{head}: {said}" if said else head),
            retry_after_s=parse_retry_after(response.headers.get("retry-after")),
            too_large=status == 413,
            unauthorized=verdict == "pause",
            status=status,
        )

    def _transport_failure(self, detail: str) -> ExportFailure:
        return ExportFailure(
            retryable=True, message=self._message(f"POST {self.endpoint}: {detail}")
        )

    def _message(self, text: str) -> str:
        """``text`` with every secret replaced, on one line, cut to :data:`MESSAGE_CHARS`."""
        # Redacted first, cut second: a cut must never leave the start of a secret behind.
        text = " ".join(self._redact(text).split())[: 2 * MESSAGE_CHARS]
        text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
        text = self._redact(text)  # in case removing control characters joined one up
        return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        return text

    # -- state: the client, sent_at per batch ----------------------------------------------------

    def _client_for_this_process(self) -> httpx.Client | None:
        """The client of this process, made on first use; None once shut down."""
        client = self._client
        if client is not None:
            return client
        import httpx

        with self._lock:
            if self._closed:
                return None
            if self._client is None:
                headers = {"User-Agent": f"signalkit/{_version()}", "Accept-Encoding": "identity"}
                headers.update(self._headers)
                self._client = httpx.Client(
                    headers=headers,
                    timeout=httpx.Timeout(self.timeout_s),
                    follow_redirects=False,
                    transport=self._transport,
                )
            return self._client

    def _forget_parent(self) -> None:
        # A forked child must not share the parent's sockets, nor close them (that would also
        # end the parent's TLS sessions): keep the inherited client alive, unused, and start over.
        self._lock = threading.Lock()  # the parent's may have been held by another thread
        self._inherited, self._client = self._client, None
        self._sent_at = OrderedDict()
        self._pid = os.getpid()

    def _first_sent_at(self, key: str) -> str:
        with self._lock:
            sent_at = self._sent_at.get(key)
            if sent_at is None:
                sent_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                self._sent_at[key] = sent_at
                if len(self._sent_at) > SENT_AT_MEMORY:
                    self._sent_at.popitem(last=False)
            else:
                self._sent_at.move_to_end(key)
            return sent_at

    def _forget(self, key: str) -> None:
        with self._lock:
            self._sent_at.pop(key, None)


class _SlowBody(Exception):
    """The response body kept trickling in past the timeout."""


def _read_preview(response: httpx.Response, timeout_s: float) -> bytes:
    """Up to :data:`_RESPONSE_PREVIEW_BYTES` of the raw body, within ``timeout_s`` of its headers.

    Reading it to the end lets the connection be reused; a longer body is cut, which only costs
    the connection.
    """
    deadline = time.monotonic() + timeout_s
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= _RESPONSE_PREVIEW_BYTES:
            break
        if time.monotonic() > deadline:
            raise _SlowBody(f"the response body took longer than {timeout_s:g} s")
    return b"".join(chunks)[:_RESPONSE_PREVIEW_BYTES]


def _server_message(preview: bytes, headers: httpx.Headers) -> str:
    """What the server said, as one line: a JSON body's ``message``/``error``... or its text."""
    encoding = headers.get("content-encoding", "identity").lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        try:  # bounded: a small compressed body must not inflate into megabytes
            preview = zlib.decompressobj(47).decompress(preview, _RESPONSE_PREVIEW_BYTES)
        except zlib.error:
            return "(undecodable compressed body)"
    elif encoding != "identity":
        return f"({encoding}-encoded body)"
    text = preview.decode("utf-8", "replace").strip()
    if text[:1] in ("{", "["):
        try:
            found = _message_in(orjson.loads(preview))
        except orjson.JSONDecodeError:
            found = None
        if found:
            text = found
    return text


def _message_in(value: object, depth: int = 0) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and depth < 3:
        return _message_in(value[0], depth + 1)
    if isinstance(value, dict) and depth < 3:
        for key in ("message", "error", "detail", "error_description", "msg", "reason", "title"):
            if key in value:
                found = _message_in(value[key], depth + 1)
                if found:
                    return found
    return None


def _too_large(detail: str) -> ExportFailure:
    return ExportFailure(retryable=False, too_large=True, message=f"batch not sent: {detail}")


def _batch_key(batch: Sequence[Event]) -> str:
    """Identity of a batch: a digest of its event ids in order."""
    ids = "\n".join(event.id for event in batch).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(ids, digest_size=16).hexdigest()


def _version() -> str:
    from .. import __version__  # at call time: the package has finished importing by then

    return __version__


# -- configuration checks ------------------------------------------------------------------------


def _parse_endpoint(endpoint: object) -> tuple[str, str, tuple[str, str, str] | None]:
    """(URL to request, URL to show, Basic credentials (user, password, base64) or None).

    Credentials leave the URL: httpx logs request URLs, and the URL is shown in messages.
    """
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise ConfigError("HttpExporter.endpoint: must be a URL such as https://host/path")
    if any(c.isspace() or not c.isprintable() for c in endpoint):
        raise ConfigError("HttpExporter.endpoint: must not contain spaces or control characters")
    try:
        parts = urlsplit(endpoint)
        _ = parts.port  # raises ValueError for a bad port
    except ValueError:
        raise ConfigError(
            "HttpExporter.endpoint: not a valid URL (check the host and port)"
        ) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ConfigError("HttpExporter.endpoint: must start with http:// or https://")
    if not parts.hostname:
        raise ConfigError("HttpExporter.endpoint: has no host")
    if parts.fragment:
        raise ConfigError("HttpExporter.endpoint: must not have a #fragment")
    userinfo, at, hostport = parts.netloc.rpartition("@")
    path = parts.path or "/"
    url = urlunsplit((parts.scheme, hostport, path, parts.query, ""))
    display = _mask_url(urlunsplit((parts.scheme, parts.netloc, path, parts.query, "")))
    if not at:
        return url, display, None
    raw_user, _, raw_password = userinfo.partition(":")
    user, password = unquote(raw_user), unquote(raw_password)
    blob = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return url, display, (user, password, blob)


def _credentials(
    headers: dict[str, str], auth_token: object, basic: tuple[str, str, str] | None
) -> tuple[dict[str, str], list[str]]:
    """(the headers every request carries, the secrets to keep out of messages)."""
    static = dict(headers)
    secrets = [
        value
        for key, value in headers.items()
        if value and (_SENSITIVE_HEADER.search(key) or len(value) >= _MIN_SECRET_CHARS)
    ]
    has_authorization = any(key.lower() == "authorization" for key in headers)
    if auth_token is not None:
        if not isinstance(auth_token, str) or not auth_token.strip():
            raise ConfigError("HttpExporter.auth_token: must be a non-empty str or None")
        if not _VISIBLE_ASCII.fullmatch(auth_token) or any(c.isspace() for c in auth_token):
            raise ConfigError(
                "HttpExporter.auth_token: must be printable ASCII without spaces "
                "(pass the token alone: 'Bearer ' is added for you)"
            )
        if has_authorization or basic is not None:
            raise ConfigError(
                "HttpExporter.auth_token: cannot be combined with an Authorization header "
                "or credentials in the endpoint URL; keep one of them"
            )
        static["Authorization"] = f"Bearer {auth_token}"
        secrets.append(auth_token)
    if basic is not None:
        if has_authorization:
            raise ConfigError(
                "HttpExporter.headers['Authorization']: cannot be combined with credentials "
                "in the endpoint URL; keep one of them"
            )
        user, password, blob = basic
        static["Authorization"] = f"Basic {blob}"
        secrets += [blob, password] if password else [blob]
        if len(user) >= _MIN_SECRET_CHARS or not password:  # a bare user is often a key
            secrets.append(user)
    return static, secrets


def _mask_url(text: str) -> str:
    """``text`` (a URL) with its userinfo and every query value replaced by ``[redacted]``."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return _REDACTED
    _, at, hostport = parts.netloc.rpartition("@")
    query = "&".join(
        f"{item.partition('=')[0]}={_REDACTED}" if "=" in item else item
        for item in parts.query.split("&")
    )
    netloc = f"{_REDACTED}@{hostport}" if at else hostport
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _query_values(url: str) -> list[str]:
    """Values in the query of ``url``, decoded and raw: an API key is sometimes put there."""
    values: list[str] = []
    for item in urlsplit(url).query.split("&"):
        name, eq, value = item.partition("=")
        if eq and value and (_SENSITIVE_HEADER.search(name) or len(value) >= _MIN_SECRET_CHARS):
            values += [value, unquote(value)]
    return values


def _check_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ConfigError("HttpExporter.headers: must be a mapping of header names to str values")
    checked: dict[str, str] = {}
    for key, value in headers.items():
        if not isinstance(key, str) or not _HEADER_NAME.fullmatch(key):
            raise ConfigError(f"HttpExporter.headers: {key!r} is not a valid header name")
        if key.lower() in _RESERVED_HEADERS:
            raise ConfigError(f"HttpExporter.headers[{key!r}]: set by the exporter; remove it")
        # Never show the value: it may be a key.
        if not isinstance(value, str) or not _VISIBLE_ASCII.fullmatch(value):
            raise ConfigError(
                f"HttpExporter.headers[{key!r}]: the value must be a str of printable ASCII"
            )
        checked[key] = value
    return checked


def _with_encoded_forms(secrets: list[str]) -> tuple[str, ...]:
    """The secrets and their percent-encoded forms, longest first (so none is half-replaced)."""
    forms = {s for s in secrets if s} | {quote(s, safe="") for s in secrets if s}
    return tuple(sorted(forms, key=len, reverse=True))


def _positive_number(field: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"HttpExporter.{field}: must be a finite number > 0, got {value!r}")
    return float(value)


def _int_at_least(field: str, value: object, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"HttpExporter.{field}: must be an int >= {least}, got {value!r}")
    return value
