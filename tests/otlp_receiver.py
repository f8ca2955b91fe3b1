"""A real OTLP/HTTP receiver on 127.0.0.1 for tests: the collector side of the wire.

It accepts ``POST .../v1/logs``, ``.../v1/metrics`` and ``.../v1/traces`` carrying protobuf
(plain, gzip or deflate), decodes each body with the ``opentelemetry-proto`` request classes
and keeps it, with its path and headers. :meth:`OtlpReceiver.fail_next` makes the next
requests fail with a status (and ``Retry-After``) to exercise an exporter's retries.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

_SIGNALS: dict[str, tuple[type[Message], type[Message]]] = {
    "/v1/logs": (ExportLogsServiceRequest, ExportLogsServiceResponse),
    "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
    "/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
}


@dataclass(frozen=True)
class Received:
    """One request the receiver accepted (or was told to refuse)."""

    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    message: Message | None
    """The decoded request; ``None`` for a refused one."""
    status: int


@dataclass(frozen=True)
class ReceivedLog:
    """One log record with the resource and scope it was sent under."""

    record: LogRecord
    resource: dict[str, Any]
    scope: str

    @property
    def attributes(self) -> dict[str, Any]:
        return attributes(self.record.attributes)


def any_value(value: AnyValue) -> Any:
    """A protobuf ``AnyValue`` as plain Python."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def attributes(pairs: Iterator[KeyValue] | Any) -> dict[str, Any]:
    """Repeated ``KeyValue`` as a dict."""
    return {kv.key: any_value(kv.value) for kv in pairs}


class OtlpReceiver:
    """Use as a context manager; :attr:`endpoint` is the base URL to give an exporter."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._failures: list[tuple[str, int, str | None]] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, signal: str, status: int, *, retry_after: str | None = None) -> None:
        """Refuse the next request for ``signal`` (``/v1/logs``...) with ``status``."""
        with self._lock:
            self._failures.append((signal, status, retry_after))

    # -- reading what arrived ---------------------------------------------------------------

    def requests(self, signal: str) -> list[Received]:
        """Every request for ``signal`` (``/v1/logs``...), refused ones included, in order."""
        with self._lock:
            return [r for r in self.received if r.path.endswith(signal)]

    def logs(self) -> list[ReceivedLog]:
        """Every log record accepted, in arrival order."""
        out: list[ReceivedLog] = []
        for request in self.requests("/v1/logs"):
            if not isinstance(request.message, ExportLogsServiceRequest):
                continue
            for resource_logs in request.message.resource_logs:
                resource = attributes(resource_logs.resource.attributes)
                for scope_logs in resource_logs.scope_logs:
                    for record in scope_logs.log_records:
                        out.append(ReceivedLog(record, resource, scope_logs.scope.name))
        return out

    def metrics(self) -> dict[str, Any]:
        """Every metric accepted, by name (the last one received wins)."""
        out: dict[str, Any] = {}
        for request in self.requests("/v1/metrics"):
            if not isinstance(request.message, ExportMetricsServiceRequest):
                continue
            for resource_metrics in request.message.resource_metrics:
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        out[metric.name] = metric
        return out

    def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait until ``condition()`` holds (checked on each request); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    # -- serving ----------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        path = handler.path
        signal = next((s for s in _SIGNALS if path.endswith(s)), None)
        if signal is None:
            self._reply(handler, 404, b"unknown path")
            return
        with self._lock:
            failure = next((f for f in self._failures if f[0] == signal), None)
            if failure is not None:
                self._failures.remove(failure)
        if failure is not None:
            _, status, retry_after = failure
            self._record(Received(path, headers, None, status))
            extra = {"Retry-After": retry_after} if retry_after is not None else {}
            self._reply(handler, status, b"refused by the test", extra)
            return
        encoding = headers.get("content-encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        request_type, response_type = _SIGNALS[signal]
        message = request_type.FromString(body)
        self._record(Received(path, headers, message, 200))
        self._reply(
            handler,
            200,
            response_type().SerializeToString(),
            {"Content-Type": "application/x-protobuf"},
        )

    def _record(self, received: Received) -> None:
        with self._changed:
            self.received.append(received)
            self._changed.notify_all()

    @staticmethod
    def _reply(
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
