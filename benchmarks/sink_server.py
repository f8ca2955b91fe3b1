"""A counting HTTP sink for ``throughput.py``, run as its own process (its own GIL).

    python benchmarks/sink_server.py [--max-seconds 3600]

It listens on 127.0.0.1 only, on three ports it picks itself, and prints them as one JSON
line on stdout: ``{"data": P1, "outage": P2, "control": P3}``.

* **data** answers every POST with 200 at once: ``{"status":1}`` on a PostHog path
  (``.../batch/``), ``{}`` on Segment's ``.../v1/batch`` and on any other path (signalkit), and
  an empty protobuf body (a valid, empty ``ExportLogsServiceResponse``) on ``.../v1/logs``.
  GETs get ``{}``. The first path segment is the *key*: each benchmark run points its SDK at
  ``http://127.0.0.1:P1/<key>`` so the sink counts every run apart.
* **outage** behaves the same while up. ``GET /down?key=K`` on the control port takes it down:
  a new connection is accepted and closed at once, without reading it, and a request that
  arrives on a connection opened earlier gets the connection closed without an answer. Both are
  counted as *attempts during the outage*, for key K (connections carry no path, so the key
  is the one named in ``/down``: outage runs are one at a time). ``GET /up`` brings it back
  on the same port.
* **control** (GET): ``/stats?key=K`` (events received for K, below), ``/down?key=K``,
  ``/up``, ``/forget?key=K`` (free what is kept for K), ``/ping``.

To answer fast, a request is only read and answered while it is served: its body is kept with
its arrival time (``time.monotonic()``, after the whole body was read; CLOCK_MONOTONIC is the
same clock in every process of the machine) and parsed later, when ``/stats`` asks for that
key. Parsing counts events per request: JSON ``{"batch": [...]}`` (PostHog, Segment) or
``{"events": [...]}`` (signalkit), gzip undone when ``Content-Encoding: gzip``, and OTLP/HTTP
protobuf ``ExportLogsServiceRequest`` log records (JSON OTLP is read too). For each event the
integer attribute/property ``i`` and the string ``phase`` are read, so the stats give, per
phase, the events, the distinct ``i`` (duplicates = events - distinct) and the first and last
arrival time; events without ``i`` (set-up events) are counted apart. ``arrivals`` lists
``(time, events)`` for every request, for timelines.

The process stops when its stdin closes (the benchmark exited) or after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import socket
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

try:
    import orjson

    _loads = orjson.loads
except ImportError:  # pragma: no cover - the project depends on orjson
    _loads = json.loads

HOST = "127.0.0.1"


class Store:
    """Raw requests per key, parsed on demand; attempts counted while the outage port is down."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.raw: dict[str, list[tuple[float, str, str, str, bytes]]] = {}
        self.summary: dict[str, dict[str, Any]] = {}
        self.seen: dict[str, set[int]] = {}
        self.refused_requests: dict[str, int] = {}
        self.refused_connections: dict[str, int] = {}
        self.refused_times: dict[str, list[float]] = {}
        self.outage_key = "?"
        self.down_at: float | None = None
        self.up_at: float | None = None
        self.answered: dict[str, int] = {}

    def add(self, key: str, t: float, path: str, encoding: str, ctype: str, body: bytes) -> None:
        with self.lock:
            self.raw.setdefault(key, []).append((t, path, encoding, ctype, body))

    def refused(self, key: str | None) -> None:
        now = time.monotonic()
        with self.lock:
            if key is None:
                k = self.outage_key
                self.refused_connections[k] = self.refused_connections.get(k, 0) + 1
            else:
                k = key
                self.refused_requests[k] = self.refused_requests.get(k, 0) + 1
            self.refused_times.setdefault(k, []).append(now)

    def stats(self, key: str) -> dict[str, Any]:
        with self.lock:
            todo = self.raw.pop(key, [])
        s = self.summary.setdefault(key, _empty_summary())
        seen = self.seen.setdefault(key, set())
        for t, path, encoding, ctype, body in todo:
            _parse_into(s, seen, t, path, encoding, ctype, body)
        with self.lock:
            out = json.loads(json.dumps(s))
            out["refused_requests"] = self.refused_requests.get(key, 0)
            out["refused_connections"] = self.refused_connections.get(key, 0)
            out["refused_times"] = self.refused_times.get(key, [])
            out["down_at"] = self.down_at
            out["up_at"] = self.up_at
        return out

    def forget(self, key: str) -> None:
        with self.lock:
            self.raw.pop(key, None)
            self.summary.pop(key, None)
            self.seen.pop(key, None)


def _empty_summary() -> dict[str, Any]:
    return {
        "requests": 0,
        "bytes": 0,
        "events": 0,
        "events_without_i": 0,
        "distinct": 0,
        "duplicates": 0,
        "parse_errors": 0,
        "first_arrival": None,
        "last_arrival": None,
        "phases": {},
        "paths": {},
        "per_second": {},
        "arrivals": [],
    }


def _parse_into(
    s: dict[str, Any],
    seen: set[int],
    t: float,
    path: str,
    encoding: str,
    ctype: str,
    body: bytes,
) -> None:
    s["requests"] += 1
    s["bytes"] += len(body)
    s["paths"][path] = s["paths"].get(path, 0) + 1
    try:
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        tags = _otlp_protobuf_tags(body) if "protobuf" in ctype else _json_tags(_loads(body))
    except Exception:
        s["parse_errors"] += 1
        return
    if not tags:
        return
    s["first_arrival"] = t if s["first_arrival"] is None else min(s["first_arrival"], t)
    s["last_arrival"] = t if s["last_arrival"] is None else max(s["last_arrival"], t)
    sec = str(int(t))
    s["per_second"][sec] = s["per_second"].get(sec, 0) + len(tags)
    s["arrivals"].append((t, len(tags)))
    phases = s["phases"]
    for i, phase in tags:
        s["events"] += 1
        if i is None:
            s["events_without_i"] += 1
            continue
        p = phases.get(phase)
        if p is None:
            p = phases[phase] = {
                "events": 0,
                "distinct": 0,
                "first_arrival": t,
                "last_arrival": t,
                "last_new_arrival": t,
            }
        p["events"] += 1
        p["first_arrival"] = min(p["first_arrival"], t)
        p["last_arrival"] = max(p["last_arrival"], t)
        if i in seen:
            s["duplicates"] += 1
        else:
            seen.add(i)
            s["distinct"] += 1
            p["distinct"] += 1
            p["last_new_arrival"] = max(p["last_new_arrival"], t)


def _props_tags(props: Any) -> tuple[int | None, str]:
    if not isinstance(props, dict):
        return None, ""
    i = props.get("i")
    return (i if isinstance(i, int) else None), str(props.get("phase", ""))


def _json_tags(doc: Any) -> list[tuple[int | None, str]]:
    if isinstance(doc, dict):
        if isinstance(doc.get("batch"), list):  # PostHog, Segment
            return [_props_tags(e.get("properties")) for e in doc["batch"] if isinstance(e, dict)]
        if isinstance(doc.get("events"), list):  # signalkit
            return [_props_tags(e.get("attributes")) for e in doc["events"] if isinstance(e, dict)]
        if isinstance(doc.get("resourceLogs"), list):  # OTLP/JSON
            out: list[tuple[int | None, str]] = []
            for rl in doc["resourceLogs"]:
                for sl in rl.get("scopeLogs", ()):
                    for rec in sl.get("logRecords", ()):
                        attrs = {}
                        for kv in rec.get("attributes", ()):
                            v = kv.get("value", {})
                            attrs[kv.get("key")] = (
                                int(v["intValue"]) if "intValue" in v else v.get("stringValue")
                            )
                        out.append(_props_tags(attrs))
            return out
    if isinstance(doc, list):  # NDJSON would not get here; a bare list of events
        return [_props_tags(e.get("attributes")) for e in doc if isinstance(e, dict)]
    return []


_ExportLogsServiceRequest: Any = None


def _otlp_protobuf_tags(body: bytes) -> list[tuple[int | None, str]]:
    global _ExportLogsServiceRequest
    if _ExportLogsServiceRequest is None:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceRequest,
        )

        _ExportLogsServiceRequest = ExportLogsServiceRequest
    req = _ExportLogsServiceRequest()
    req.ParseFromString(body)
    out: list[tuple[int | None, str]] = []
    for rl in req.resource_logs:
        for sl in rl.scope_logs:
            for rec in sl.log_records:
                i: int | None = None
                phase = ""
                for kv in rec.attributes:
                    if kv.key == "i":
                        i = kv.value.int_value
                    elif kv.key == "phase":
                        phase = kv.value.string_value
                out.append((i, phase))
    return out


class SinkServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, store: Store, toggles: bool) -> None:
        super().__init__((HOST, 0), Handler)
        self.store = store
        self.toggles = toggles
        self.down = False

    def verify_request(self, request: Any, client_address: Any) -> bool:
        if self.down:  # accept and close at once: counted, never read
            self.store.refused(None)
            return False
        return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real ingestion endpoint
    server: SinkServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _reply(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _key(self) -> str:
        parts = self.path.split("/")
        return parts[1] if len(parts) > 1 and parts[1] else "-"

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self) -> None:
        key = self._key()
        if self.server.down:  # a request on a connection opened before the outage
            self.server.store.refused(key)
            self.close_connection = True
            return  # no answer: the client sees the connection closed
        body = self._read_body()
        t = time.monotonic()
        path = self.path
        if path.endswith("/v1/logs"):
            self._reply(200, b"", "application/x-protobuf")
        elif path.endswith("/batch/") or path.endswith("/batch"):
            self._reply(200, b'{"status":1}' if not path.endswith("/v1/batch") else b"{}")
        else:
            self._reply(200, b"{}")
        self.server.store.add(
            key,
            t,
            path.split("?")[0],
            self.headers.get("Content-Encoding", "").lower(),
            self.headers.get("Content-Type", "").lower(),
            body,
        )

    def do_GET(self) -> None:
        if self.server.down:
            self.server.store.refused(self._key())
            self.close_connection = True
            return
        self._reply(200, b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ControlHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _reply(self, doc: Any) -> None:
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        store: Store = self.server.store  # type: ignore[attr-defined]
        outage: SinkServer = self.server.outage  # type: ignore[attr-defined]
        if parts.path == "/stats":
            self._reply(store.stats(q.get("key", "-")))
        elif parts.path == "/down":
            with store.lock:
                store.outage_key = q.get("key", "?")
                store.down_at = time.monotonic()
                store.up_at = None
            outage.down = True
            self._reply({"down_at": store.down_at})
        elif parts.path == "/up":
            outage.down = False
            with store.lock:
                store.up_at = time.monotonic()
            self._reply({"up_at": store.up_at})
        elif parts.path == "/forget":
            store.forget(q.get("key", "-"))
            self._reply({})
        else:
            self._reply({"ok": True, "now": time.monotonic()})

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> int:
    p = argparse.ArgumentParser(description="counting HTTP sink for throughput.py")
    p.add_argument("--max-seconds", type=float, default=3600.0, help="stop after this long")
    args = p.parse_args()
    store = Store()
    data = SinkServer(store, toggles=False)
    outage = SinkServer(store, toggles=True)
    control = ThreadingHTTPServer((HOST, 0), ControlHandler)
    control.daemon_threads = True
    control.store = store  # type: ignore[attr-defined]
    control.outage = outage  # type: ignore[attr-defined]
    servers = [data, outage, control]
    for srv in servers:
        threading.Thread(
            target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        ).start()
    print(
        json.dumps(
            {
                "data": data.server_address[1],
                "outage": outage.server_address[1],
                "control": control.server_address[1],
            }
        ),
        flush=True,
    )
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait(args.max_seconds)
    for srv in servers:
        srv.shutdown()
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
