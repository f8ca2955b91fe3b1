"""FaultySink: a real HTTP server on 127.0.0.1 that records every request and misbehaves on cue.

For tests of anything that POSTs events over HTTP (the HttpExporter, delivery lanes, adapters)::

    from sinks import CloseMidResponse, FaultySink, Respond

    with FaultySink() as sink:                          # listens on 127.0.0.1, a free port
        exporter = sk.HttpExporter(sink.url)
        sink.script([503, Respond(429, retry_after=2)])  # the next two requests, in order
        sink.respond_with(200)                           # every request after the script
        sink.hang(5)                                     # answer 200, but only after 5 s
        sink.respond_with(CloseMidResponse())            # headers, part of a body, then close
        sink.down(); sink.up()                           # refuse connections; back, same port
        assert sink.received_ids() == [...]              # every event id that arrived
        assert sink.wait_for_ids(expected, timeout=5)    # ... answered 2xx, within 5 s

Each request gets the next scripted behaviour, or the default (:meth:`FaultySink.respond_with`)
once the script is empty. Before that, a body the sink cannot read is answered 400 and a body
over ``max_body_bytes`` / ``max_events`` 413, without using up the script.

Requests are recorded as :class:`ReceivedRequest` (method, path, lower-cased headers, the raw and
the decoded body — gzip undone —, the parsed events and their ids, and the status the sink
answered), on arrival, so a test sees a request even while the sink hangs on it.

The sink stops itself after ``lifetime_s`` (default 120 s) in case a test forgets to, never
listens beyond 127.0.0.1, and its threads are daemons: it cannot keep a test run alive.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import select
import socket
import socketserver
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeAlias

import orjson

__all__ = [
    "Behaviour",
    "CloseMidResponse",
    "Disconnect",
    "FaultySink",
    "Hang",
    "ReceivedRequest",
    "Respond",
]

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Respond:
    """Answer with ``status``, ``headers``, an optional ``Retry-After`` and ``body``.

    ``body`` may be a callable given the :class:`ReceivedRequest` (status still ``None``), e.g.
    to echo the request's headers back. 1xx, 204 and 304 answers carry no body; a 1xx also
    closes the connection, since a final answer never follows it.
    """

    status: int = 200
    body: bytes | str | Callable[[ReceivedRequest], bytes | str] = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    retry_after: str | int | float | None = None
    content_type: str = "application/json"


@dataclass(frozen=True)
class Hang:
    """Read the request, then wait ``seconds`` before answering ``then`` (the client has usually
    timed out by then). :meth:`FaultySink.down` and :meth:`FaultySink.stop` cut the wait short."""

    seconds: float
    then: Respond = field(default_factory=Respond)


@dataclass(frozen=True)
class CloseMidResponse:
    """Send the status line and headers promising ``promised_bytes`` of body, then ``sent_bytes``
    of it, then close the connection: the response is cut short."""

    status: int = 200
    promised_bytes: int = 1000
    sent_bytes: int = 10


@dataclass(frozen=True)
class Disconnect:
    """Read the request, then close the connection without answering."""


Behaviour: TypeAlias = Respond | Hang | CloseMidResponse | Disconnect
"""What the sink does with one request."""


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the sink received it, and what it answered."""

    method: str
    path: str
    headers: Mapping[str, str]
    """Header names lower-cased (the last value wins if one was repeated)."""
    raw_body: bytes
    """The body as it came over the wire (gzip still applied)."""
    body: bytes
    """The body after undoing ``Content-Encoding: gzip``/``deflate``."""
    events: tuple[Any, ...]
    """The events in the body: a JSON body's ``events`` list (or a JSON array), or the lines of
    NDJSON (``Content-Type`` containing ``ndjson`` or ``jsonl``)."""
    peer: tuple[str, int]
    """The client's address: requests from one connection share it."""
    behaviour: Behaviour
    """What the sink did with it (including the 400/413 of its own checks)."""
    status: int | None = None
    """The status answered in full; ``None`` while in progress, or if the sink hung up,
    hung past the client or cut the response short."""
    at: float = 0.0
    """``time.monotonic()`` when the request had arrived in full."""

    @property
    def event_ids(self) -> list[str]:
        """The ``id`` of each event in the body, in order."""
        return [
            e["id"] for e in self.events if isinstance(e, dict) and isinstance(e.get("id"), str)
        ]

    @property
    def accepted(self) -> bool:
        """Whether the sink answered 2xx in full: the events count as delivered."""
        return self.status is not None and 200 <= self.status < 300

    def json(self) -> Any:
        """The decoded body parsed as JSON."""
        return orjson.loads(self.body)


class FaultySink:
    """A scriptable HTTP sink on 127.0.0.1; see the module docstring.

    ``max_body_bytes`` (of the decoded body) and ``max_events`` make it answer 413 like a sink
    with payload limits. ``path`` is the path of :attr:`url`; any path is accepted.
    """

    def __init__(
        self,
        *,
        path: str = "/v1/events",
        max_body_bytes: int | None = None,
        max_events: int | None = None,
        lifetime_s: float = 120.0,
    ) -> None:
        self.path = path
        self.max_body_bytes = max_body_bytes
        self.max_events = max_events
        self.lifetime_s = lifetime_s
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._requests: list[ReceivedRequest] = []
        self._script: deque[Behaviour] = deque()
        self._default: Behaviour = Respond()
        self._connections: set[socket.socket] = set()
        self._interrupt = threading.Event()
        self._server: _Server | None = None
        self._port = 0
        self._timer: threading.Timer | None = None
        self._stopped = False

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FaultySink:
        """Listen on a free port of 127.0.0.1; the sink stops itself after ``lifetime_s``."""
        self.up()
        self._timer = threading.Timer(self.lifetime_s, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop listening, cut every connection and hang; idempotent."""
        self._stopped = True
        self.down()
        if self._timer is not None:
            self._timer.cancel()

    def __enter__(self) -> FaultySink:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def down(self) -> None:
        """Refuse connections: close the listening socket and every open connection (a client's
        pooled keep-alive connection included), and end any :class:`Hang` early."""
        with self._lock:
            server, self._server = self._server, None
            self._interrupt.set()
        if server is not None:
            server.shutdown()
            server.server_close()
        for sock in list(self._connections):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def up(self) -> None:
        """Listen again, on the same port as before (a free one the first time)."""
        if self._stopped:
            raise RuntimeError("FaultySink: stopped for good; make a new one")
        with self._lock:
            if self._server is not None:
                return
            self._interrupt = threading.Event()
            server = _Server(self._port, self)
            self._server = server
            self._port = server.server_address[1]
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        thread.name = f"FaultySink:{self._port}"
        thread.start()

    @property
    def is_up(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self._port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port><path>``: where to point an exporter."""
        return self.base_url + self.path

    # -- behaviour -------------------------------------------------------------------------------

    def respond_with(self, behaviour: Behaviour | int = 200, **respond: Any) -> None:
        """Set what every request gets once the script is empty. An int is a status;
        keyword arguments go to :class:`Respond` (``body=``, ``retry_after=``, ``headers=``)."""
        with self._lock:
            self._default = _behaviour(behaviour, respond)

    def script(self, behaviours: Iterable[Behaviour | int]) -> None:
        """Queue behaviours for the next requests, one each, after any still queued."""
        with self._lock:
            self._script.extend(_behaviour(b, {}) for b in behaviours)

    def hang(self, seconds: float, then: Respond | None = None) -> None:
        """Make every request wait ``seconds`` before it is answered (``then``, default 200)."""
        self.respond_with(Hang(seconds, then or Respond()))

    def reset(self) -> None:
        """Forget requests and script, end any hang, answer 200 again, and be up: a clean sink
        for the next test when one is shared."""
        with self._lock:
            self._requests.clear()
            self._script.clear()
            self._default = Respond()
            if self._server is not None:
                self._interrupt.set()
                self._interrupt = threading.Event()
        self.up()

    # -- what arrived ----------------------------------------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def received_ids(self) -> list[str]:
        """Every event id that arrived, in order, duplicates included, whatever the answer."""
        return [i for r in self.requests for i in r.event_ids]

    def accepted_ids(self) -> list[str]:
        """Every event id in a request answered 2xx in full, duplicates included."""
        return [i for r in self.requests if r.accepted for i in r.event_ids]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` requests have arrived; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._requests) >= count, timeout)

    def wait_for_ids(self, ids: Iterable[str] | int, timeout: float = 5.0) -> bool:
        """Wait until every id in ``ids`` (or that many distinct ids) was accepted (2xx)."""
        want = ids if isinstance(ids, int) else set(ids)

        def done() -> bool:
            got = {i for r in self._requests if r.accepted for i in r.event_ids}
            return len(got) >= want if isinstance(want, int) else want <= got

        with self._changed:
            return self._changed.wait_for(done, timeout)

    @property
    def open_connections(self) -> int:
        """Connections open right now (a client's keep-alive pool shows here)."""
        with self._lock:
            return len(self._connections)

    def wait_for_open_connections(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until exactly ``count`` connections are open (0: every client closed its
        connections); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._connections) == count, timeout)

    # -- serving (handler threads) ---------------------------------------------------------------

    def _serve(self, handler: _Handler) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        try:
            raw = _read_body(handler, headers)
        except (ValueError, OSError):
            handler.close_connection = True
            return
        body, events, problem = _decode(raw, headers)
        with self._lock:
            if problem is not None:
                behaviour: Behaviour = Respond(400, body=orjson.dumps({"error": problem}))
            elif self.max_body_bytes is not None and len(body) > self.max_body_bytes:
                behaviour = Respond(
                    413,
                    body=orjson.dumps(
                        {"error": f"payload of {len(body)} bytes over {self.max_body_bytes}"}
                    ),
                )
            elif self.max_events is not None and len(events) > self.max_events:
                behaviour = Respond(
                    413,
                    body=orjson.dumps({"error": f"{len(events)} events over {self.max_events}"}),
                )
            else:
                behaviour = self._script.popleft() if self._script else self._default
            request = ReceivedRequest(
                method=handler.command,
                path=handler.path,
                headers=headers,
                raw_body=raw,
                body=body,
                events=events,
                peer=(str(handler.client_address[0]), int(handler.client_address[1])),
                behaviour=behaviour,
                at=time.monotonic(),
            )
            index = len(self._requests)
            self._requests.append(request)
            interrupt = self._interrupt
            self._changed.notify_all()

        recorded = request

        def mark(status: int | None) -> None:
            # Set before the answer is written: once a client has its 2xx, a test must see it.
            nonlocal recorded
            with self._lock:
                if index < len(self._requests) and self._requests[index] is recorded:
                    recorded = dataclasses.replace(request, status=status)
                    self._requests[index] = recorded
                self._changed.notify_all()

        self._perform(handler, behaviour, request, interrupt, mark)

    def _perform(
        self,
        handler: _Handler,
        behaviour: Behaviour,
        request: ReceivedRequest,
        interrupt: threading.Event,
        mark: Callable[[int | None], None],
    ) -> None:
        answered = False
        try:
            if isinstance(behaviour, Hang):
                if not _hang(handler.connection, behaviour.seconds, interrupt):
                    handler.close_connection = True
                    return
                behaviour = behaviour.then
            if isinstance(behaviour, Disconnect):
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
                return
            if isinstance(behaviour, CloseMidResponse):
                handler.send_response(behaviour.status)
                handler.send_header("Content-Length", str(behaviour.promised_bytes))
                handler.end_headers()
                handler.wfile.write(b"x" * behaviour.sent_bytes)
                handler.wfile.flush()
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
                return
            mark(behaviour.status)
            answered = True
            _respond(handler, behaviour, request)
        except OSError:  # the client went away (it timed out, or the sink went down)
            handler.close_connection = True
            if answered:
                mark(None)

    def _opened(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.add(sock)
            self._changed.notify_all()

    def _closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.discard(sock)
            self._changed.notify_all()


def _hang(sock: socket.socket, seconds: float, interrupt: threading.Event) -> bool:
    """Wait ``seconds``; False if cut short by ``interrupt`` or because the client hung up (a
    thread per abandoned request would otherwise linger for the whole hang)."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        if interrupt.wait(min(remaining, 0.02)):
            return False
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            try:
                if not sock.recv(1, socket.MSG_PEEK):
                    return False  # end of stream: the client closed its side
            except OSError:
                return False
    return True


def _behaviour(value: Behaviour | int, respond: Mapping[str, Any]) -> Behaviour:
    if isinstance(value, int):
        return Respond(value, **respond)
    if respond:
        raise TypeError("keyword arguments go with a status, not with a behaviour object")
    return value


def _respond(handler: _Handler, answer: Respond, request: ReceivedRequest) -> None:
    status = answer.status
    body = answer.body(request) if callable(answer.body) else answer.body
    data = body.encode() if isinstance(body, str) else body
    no_body = status < 200 or status in (204, 304)
    handler.send_response(status)
    if answer.retry_after is not None:
        handler.send_header("Retry-After", str(answer.retry_after))
    for name, value in answer.headers.items():
        handler.send_header(name, value)
    if status < 200:  # no final answer will follow: end the exchange here
        handler.close_connection = True
    elif not no_body:
        if data:
            handler.send_header("Content-Type", answer.content_type)
        handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    if data and not no_body and handler.command != "HEAD":
        handler.wfile.write(data)
    if status < 200:
        handler.connection.shutdown(socket.SHUT_RDWR)


def _read_body(handler: _Handler, headers: Mapping[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        out = bytearray()
        while True:
            size = int(handler.rfile.readline(1 << 16).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline(1 << 16) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(out)
            out += handler.rfile.read(size)
            handler.rfile.readline(1 << 16)
    length = int(headers.get("content-length", "0") or "0")
    if length < 0:
        raise ValueError("negative Content-Length")
    return handler.rfile.read(length) if length else b""


def _decode(raw: bytes, headers: Mapping[str, str]) -> tuple[bytes, tuple[Any, ...], str | None]:
    """(decoded body, events, problem): problem is why the sink cannot read the body."""
    encoding = headers.get("content-encoding", "identity").strip().lower()
    try:
        if encoding in ("gzip", "x-gzip"):
            body = gzip.decompress(raw)
        elif encoding == "deflate":
            body = zlib.decompress(raw)
        elif encoding == "identity":
            body = raw
        else:
            return raw, (), f"unsupported Content-Encoding {encoding!r}"
    except (OSError, EOFError, zlib.error) as exc:
        return raw, (), f"bad {encoding} body: {exc}"
    if not body.strip():
        return body, (), None
    try:
        if any(t in headers.get("content-type", "") for t in ("ndjson", "jsonl")):
            events = tuple(orjson.loads(line) for line in body.splitlines() if line.strip())
            return body, events, None
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return body, (), f"malformed JSON: {exc}"
    if isinstance(document, dict) and isinstance(document.get("events"), list):
        return body, tuple(document["events"]), None
    if isinstance(document, list):
        return body, tuple(document), None
    return body, (), None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real sinks do
    timeout = 30  # an idle keep-alive connection ends on its own
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.sink._opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.sink._closed(self.connection)

    def handle(self) -> None:
        with contextlib.suppress(OSError):  # reset by the client or by down()
            super().handle()

    def do_POST(self) -> None:
        self.server.sink._serve(self)

    do_PUT = do_PATCH = do_GET = do_DELETE = do_HEAD = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read sink.requests, not stderr


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, port: int, sink: FaultySink) -> None:
        self.sink = sink
        super().__init__((HOST, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS call tests do not need.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away is what these tests are about, not an error
