"""An httpx transport that keeps the body of a 2xx answer for the thread that sent the request.

:class:`signalkit.HttpExporter` reads only the start of an answer and keeps nothing of a
success; Langfuse's 207 says per event what it took, so the exporter needs all of it. The tap
sits between the exporter's client and the real transport (httpx's public transport seam).
httpx is imported on the first request, in the delivery thread.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = ["MAX_ANSWER_BYTES", "ResponseTap"]

MAX_ANSWER_BYTES = 16 * 1024 * 1024
"""A longer 2xx body is not kept (the exporter then takes the whole request as accepted)."""

_DROPPED_HEADERS = frozenset({b"content-encoding", b"content-length", b"transfer-encoding"})


class ResponseTap:
    """Passes requests to ``inner`` (or httpx's default transport) and keeps each 2xx body,
    decoded, until :meth:`take` collects it in the same thread."""

    def __init__(self, inner: Any = None) -> None:
        self._inner = inner
        self._own: httpx.BaseTransport | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._local = threading.local()

    def take(self) -> bytes | None:
        """The body of this thread's last 2xx answer (None if it was too long or none came),
        and forget it."""
        body: bytes | None = getattr(self._local, "body", None)
        self._local.body = None
        return body

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; a 2xx answer is read whole and kept (see :meth:`take`)."""
        import httpx

        response: httpx.Response = self._transport().handle_request(request)
        if not 200 <= response.status_code < 300:
            return response
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    chunks = []
                    break
                chunks.append(chunk)
        finally:
            response.close()
        body = b"".join(chunks)
        self._local.body = body if size <= MAX_ANSWER_BYTES else None
        headers = [
            (name, value)
            for name, value in response.headers.raw
            if name.lower() not in _DROPPED_HEADERS
        ]
        # stream=, not content=: a Response made with content counts as already read.
        return httpx.Response(
            response.status_code,
            headers=headers,
            stream=httpx.ByteStream(body),
            extensions=response.extensions,
        )

    def close(self) -> None:
        """Close the transport in use (the caller's, if one was given)."""
        transport = self._inner if self._inner is not None else self._own
        if transport is not None:
            transport.close()

    def _transport(self) -> Any:
        if self._inner is not None:
            return self._inner
        with self._lock:
            if self._own is None or self._pid != os.getpid():
                # After fork() the parent's pool belongs to the parent: start a new one.
                import httpx

                self._own = httpx.HTTPTransport()
                self._pid = os.getpid()
            return self._own
