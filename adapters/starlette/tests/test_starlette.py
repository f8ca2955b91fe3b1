"""signalkit-starlette served for real: Starlette and FastAPI apps behind uvicorn on 127.0.0.1,
driven with httpx and raw sockets. Authentication is Starlette's own AuthenticationMiddleware."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson
import pytest
from signalkit_starlette import (
    SignalkitMiddleware,
    default_rate_key,
    identify_failures,
    relay_routes,
)
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

import signalkit as sk
from signalkit import Subject
from signalkit.relay import Relay, relay_script

SECRET = "starlette-test-secret-0123456789abcdef"
MEMORY = sk.MemoryExporter()
CLIENT = sk.Client("starlette-test", exporters=[MEMORY], secret=SECRET, token_max_age_s=60)
TIGHT = Relay(CLIENT, rate=0.5, burst=2)  # for the 429 test: 2 signals, then 1 every 2 s
SMALL = Relay(CLIENT, max_body_bytes=1024)  # for the 413 tests
LIFESPAN: dict[str, bool] = {}


def shown(surface: str = "reply-draft", **kw: Any) -> sk.Exposure:
    with CLIENT.exposure(surface, model="drafter", model_version="v1", **kw) as exp:
        pass
    return exp


def recorded(exposure_id: str) -> list[sk.Event]:
    assert CLIENT.flush(5)
    return [e for e in MEMORY.events if e.exposure_id == exposure_id]


def who(event: sk.Event) -> dict[str, Any]:
    return event.subject.model_dump(exclude_none=True)


# -- the app -----------------------------------------------------------------------------------


class HeaderAuth(AuthenticationBackend):
    """Starlette's own auth: ``X-User: name`` signs in ``name`` (a test stand-in for a login)."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        name = conn.headers.get("x-user")
        return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None


def identify(conn: HTTPConnection) -> dict[str, Any] | None:
    """Session and tenant from headers; ``X-Break`` makes it fail the ways a host's code can."""
    broken = conn.headers.get("x-break")
    if broken == "raise":
        raise RuntimeError("the session store is down")
    if broken == "type":
        return ["not", "a", "mapping"]  # type: ignore[return-value]
    return {"session_id": conn.headers.get("x-session"), "tenant_id": conn.headers.get("x-tenant")}


async def recommend(request: Request) -> Response:
    exp = shown()
    return JSONResponse({"exposure_id": exp.id, "token": exp.token})


async def stream(request: Request) -> Response:
    """Each chunk records an exposure while the body is being sent (after the view returned)."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            await asyncio.sleep(0.02)
            yield (shown("stream").id + "\n").encode()

    return StreamingResponse(chunks(), media_type="text/plain")


def sync_stream(request: Request) -> Response:
    def chunks() -> Iterator[bytes]:  # starlette iterates it on a worker thread
        for _ in range(2):
            time.sleep(0.01)
            yield (shown("sync-stream").id + "\n").encode()

    return StreamingResponse(chunks(), media_type="text/plain")


BACKGROUND: list[str] = []


async def with_background(request: Request) -> Response:
    def later() -> None:
        BACKGROUND.append(shown("background").id)

    return JSONResponse({}, background=BackgroundTask(later))


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    LIFESPAN["started"] = True
    yield
    LIFESPAN["stopped"] = True


def make_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/recommend", recommend),
            Route("/stream", stream),
            Route("/sync-stream", sync_stream),
            Route("/background", with_background),
            *relay_routes(CLIENT),
            *relay_routes(relay=TIGHT, path="/tight", script_path=None),
            *relay_routes(relay=SMALL, path="/small", script_path=None),
        ],
        middleware=[
            Middleware(AuthenticationMiddleware, backend=HeaderAuth()),
            Middleware(SignalkitMiddleware, identify=identify),
        ],
        lifespan=lifespan,
    )


@contextmanager
def serve(app: ASGIApp, lifespan: Literal["on", "off"] = "off") -> Iterator[str]:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan=lifespan, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        assert thread.is_alive(), "uvicorn exited"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve(make_app(), lifespan="on") as base:
        yield base


@pytest.fixture
def http(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=10) as c:
        yield c


# -- the middleware ----------------------------------------------------------------------------


def test_context_reaches_recorded_events(http: httpx.Client) -> None:
    r = http.get("/recommend", headers={"x-user": "ana", "x-session": "s-1", "x-tenant": "acme"})
    assert r.status_code == 200
    (event,) = recorded(r.json()["exposure_id"])
    anonymous = r.cookies["signalkit_aid"]
    assert who(event) == {
        "user_id": "ana",
        "session_id": "s-1",
        "tenant_id": "acme",
        "anonymous_id": anonymous,
    }


def test_anonymous_cookie_is_issued_once_and_kept(http: httpx.Client) -> None:
    first = http.get("/recommend")
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Max-Age=31536000" in cookie
    assert "Secure" not in cookie  # plain http; https gets Secure
    second = http.get("/recommend")  # the client sends the cookie back
    assert "set-cookie" not in second.headers
    a, b = (recorded(r.json()["exposure_id"])[0] for r in (first, second))
    assert a.subject.anonymous_id == b.subject.anonymous_id == http.cookies["signalkit_aid"]
    assert a.subject.user_id is None


def test_an_invalid_anonymous_cookie_is_replaced(url: str) -> None:
    r = httpx.get(url + "/recommend", cookies={"signalkit_aid": "<script>"})
    fresh = r.cookies["signalkit_aid"]
    assert fresh != "<script>"
    assert recorded(r.json()["exposure_id"])[0].subject.anonymous_id == fresh


def test_streaming_responses_keep_the_context(http: httpx.Client) -> None:
    for path, n in (("/stream", 3), ("/sync-stream", 2)):
        r = http.get(path, headers={"x-user": "bo", "x-session": "s-2"})
        ids = r.text.split()
        assert len(ids) == n
        for exposure_id in ids:
            (event,) = recorded(exposure_id)
            assert event.subject.user_id == "bo"
            assert event.subject.session_id == "s-2"


async def test_concurrent_streams_keep_their_own_ids(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        responses = await asyncio.gather(
            *(c.get("/stream", headers={"x-user": f"u{i}"}) for i in range(12))
        )
    for i, r in enumerate(responses):
        for exposure_id in r.text.split():
            assert recorded(exposure_id)[0].subject.user_id == f"u{i}"


def test_background_tasks_run_in_the_context(http: httpx.Client) -> None:
    BACKGROUND.clear()
    http.get("/background", headers={"x-user": "cy"})
    deadline = time.monotonic() + 5
    while not BACKGROUND:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert recorded(BACKGROUND[0])[0].subject.user_id == "cy"


def test_identify_failing_does_not_break_the_request(
    http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    before = identify_failures()
    with caplog.at_level(logging.WARNING, "signalkit.starlette"):
        rs = [
            http.get("/recommend", headers={"x-break": how, "x-user": "di", "x-session": "s"})
            for how in ("raise", "type", "raise", "type")
        ]
    assert [r.status_code for r in rs] == [200] * 4
    assert identify_failures() == before + 4
    (message,) = [m for m in caplog.records if "identifying the request failed" in m.message]
    assert message.exc_info is not None  # with its traceback, once a minute at most
    assert "the session store is down" in caplog.text
    for r in rs:
        (event,) = recorded(r.json()["exposure_id"])
        assert event.subject.user_id == "di"  # the defaults stay
        assert event.subject.session_id is None  # identify's ids are left out
        assert event.subject.anonymous_id


def test_the_context_is_restored_after_the_response() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = SignalkitMiddleware(app, identify=lambda conn: {"user_id": "eve"})
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [],
        "scheme": "http",
    }

    async def run() -> str | None:
        with sk.context(user_id="outer"):
            await middleware(scope, receive, send)
            return shown().subject.user_id

    assert asyncio.run(run()) == "outer"
    assert sent[0]["status"] == 204
    assert scope["signalkit.subject"].user_id == "eve"
    assert shown().subject.user_id is None


def test_websocket_and_lifespan_scopes_pass_through_untouched() -> None:
    seen: list[tuple[str, object]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope["type"], shown().subject.user_id))

    def identify(conn: HTTPConnection) -> dict[str, str]:
        raise AssertionError("identify is for HTTP requests only")

    middleware = SignalkitMiddleware(app, identify=identify)

    async def run() -> None:
        for kind in ("websocket", "lifespan"):
            await middleware({"type": kind, "headers": []}, None, None)  # type: ignore[arg-type]

    asyncio.run(run())
    assert seen == [("websocket", None), ("lifespan", None)]


def test_the_cookie_is_secure_over_https_or_when_asked() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def cookie_of(middleware: SignalkitMiddleware, scheme: str) -> str:
        sent: list[dict[str, Any]] = []

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {"type": "http", "headers": [], "scheme": scheme, "method": "GET", "path": "/"}
        asyncio.run(middleware(scope, None, send))  # type: ignore[arg-type]
        (value,) = [v for k, v in sent[0]["headers"] if k == b"set-cookie"]
        return bytes(value).decode()

    assert "; Secure" in cookie_of(SignalkitMiddleware(app), "https")
    assert "; Secure" not in cookie_of(SignalkitMiddleware(app), "http")
    assert "; Secure" in cookie_of(SignalkitMiddleware(app, cookie_secure=True), "http")
    named = cookie_of(SignalkitMiddleware(app, anonymous_cookie="aid"), "http")
    assert named.startswith("aid=")


async def test_async_identify_and_a_subject_result() -> None:
    async def identify(conn: HTTPConnection) -> Subject:
        await asyncio.sleep(0)
        return Subject(user_id="fay", tenant_id="t")

    app = Starlette(
        routes=[Route("/recommend", recommend)],
        middleware=[Middleware(SignalkitMiddleware, identify=identify, anonymous_cookie=None)],
    )
    with serve(app) as base:
        async with httpx.AsyncClient(base_url=base) as c:
            r = await c.get("/recommend")
    assert "set-cookie" not in r.headers
    assert who(recorded(r.json()["exposure_id"])[0]) == {"user_id": "fay", "tenant_id": "t"}


def test_lifespan_passes_through(url: str) -> None:
    assert LIFESPAN.get("started") is True


def test_bad_configuration_is_refused_naming_the_option() -> None:
    with pytest.raises(sk.ConfigError, match="identify"):
        SignalkitMiddleware(recommend, identify="not callable")  # type: ignore[arg-type]
    with pytest.raises(sk.ConfigError, match="anonymous_cookie"):
        SignalkitMiddleware(recommend, anonymous_cookie="a b;")  # type: ignore[arg-type]
    with pytest.raises(sk.ConfigError, match="relay"):
        relay_routes(relay=TIGHT, rate=1)
    with pytest.raises(sk.ConfigError, match="path"):
        relay_routes(CLIENT, path="signals")
    with pytest.raises(sk.ConfigError, match="rate"):
        relay_routes(CLIENT, rate=-1)


# -- the relay ---------------------------------------------------------------------------------


def post(http: httpx.Client, *signals: dict[str, Any], path: str = "/signals", **kw: Any) -> Any:
    return http.post(path, content=orjson.dumps({"signals": list(signals)}), **kw)


def test_relay_records_signals_with_the_requests_subject(http: httpx.Client) -> None:
    exp = shown()
    r = post(
        http,
        {"kind": "toggle", "token": exp.token, "state": "expanded", "element": "sources"},
        {"kind": "action", "token": exp.token, "action": "accepted", "age_ms": 10},
        headers={"content-type": "application/json", "x-user": "gus", "x-session": "s-9"},
    )
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    assert r.headers["cache-control"] == "no-store"
    signals = [e for e in recorded(exp.id) if e.kind != "exposure"]
    assert [e.kind for e in signals] == ["toggle", "action"]
    for event in signals:
        assert event.subject.user_id == "gus"
        assert event.subject.session_id == "s-9"


def test_relay_accepts_text_plain_as_sendbeacon_sends_it(http: httpx.Client) -> None:
    exp = shown()
    r = post(
        http,
        {"kind": "feedback", "token": exp.token, "rating": 1},
        headers={"content-type": "text/plain;charset=UTF-8"},
    )
    assert r.status_code == 202


def test_relay_refuses_forged_and_expired_tokens(http: httpx.Client) -> None:
    exp = shown()
    t = exp.token
    forged = t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB")  # the signature changed
    r = post(http, {"kind": "action", "token": forged}, headers={"content-type": "text/plain"})
    assert r.status_code == 403
    assert r.json()["rejected"][0]["reason"] == "token_tampered"

    old = shown(at=datetime.now(UTC) - timedelta(minutes=5))  # token_max_age_s=60
    r = post(http, {"kind": "action", "token": old.token}, headers={"content-type": "text/plain"})
    assert r.status_code == 403
    assert r.json()["rejected"][0]["reason"] == "token_expired"

    r = post(http, {"kind": "action", "token": "hello"}, headers={"content-type": "text/plain"})
    assert r.status_code == 403
    assert [e.kind for e in recorded(exp.id)] == ["exposure"]
    assert [e.kind for e in recorded(old.id)] == ["exposure"]


def test_relay_rate_limit_answers_429_with_retry_after(http: httpx.Client) -> None:
    exp = shown()
    signal = {"kind": "action", "token": exp.token}
    headers = {"content-type": "application/json", "x-user": "rate-limited-user"}
    r = post(http, signal, signal, path="/tight", headers=headers)
    assert r.status_code == 202
    r = post(http, signal, path="/tight", headers=headers)
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"] == "rate_limited"
    # the key is the user: another user is not limited by this one
    r = post(http, signal, path="/tight", headers={**headers, "x-user": "someone-else"})
    assert r.status_code == 202


def raw(url: str, head: bytes, body: bytes = b"", timeout: float = 5) -> bytes:
    """Send ``head`` and ``body`` on a socket left open, and return what comes back."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(head + body)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_413_for_a_declared_length_without_reading_the_body(url: str) -> None:
    head = (
        b"POST /small HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1073741824\r\n\r\n"
    )
    started = time.monotonic()
    answer = raw(url, head)  # not one byte of the 1 GiB is sent
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"body_too_large"' in answer
    assert time.monotonic() - started < 4


def test_413_for_a_chunked_body_as_soon_as_it_goes_over(url: str) -> None:
    head = (
        b"POST /small HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * 600
    body = b"%x\r\n%s\r\n" % (len(chunk), chunk) * 2  # 1200 bytes > 1024; the body never ends
    answer = raw(url, head, body)  # the server answers while the client still owes the rest
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"the body is over the limit of 1024 bytes" in answer


def test_a_body_at_the_limit_is_read_and_handled(http: httpx.Client) -> None:
    exp = shown()
    body = orjson.dumps({"signals": [{"kind": "action", "token": exp.token}]})
    body += b" " * (1024 - len(body))
    r = http.post("/small", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 202


def test_the_script_is_served_with_an_etag(http: httpx.Client) -> None:
    r = http.get("/signals.js")
    assert r.status_code == 200
    assert r.text == relay_script()
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["cache-control"] == "public, max-age=3600"
    etag = r.headers["etag"]
    again = http.get("/signals.js", headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert http.head("/signals.js").status_code == 200
    assert http.post("/signals.js").status_code == 405
    assert http.get("/signals").status_code == 405


def test_a_failing_rate_key_falls_back_to_the_default(http: httpx.Client) -> None:
    def broken(request: Request) -> str:
        raise KeyError("x")

    relay = Relay(CLIENT)
    app = Starlette(routes=relay_routes(relay=relay, rate_key=broken))
    exp = shown()
    with serve(app) as base:
        r = httpx.post(
            base + "/signals",
            content=orjson.dumps({"signals": [{"kind": "action", "token": exp.token}]}),
            headers={"content-type": "application/json"},
        )
    assert r.status_code == 202
    assert relay.stats().accepted == 1
    assert default_rate_key.__doc__


# -- FastAPI -----------------------------------------------------------------------------------


def test_fastapi_app_with_middleware_relay_and_a_decorated_endpoint() -> None:
    from fastapi import APIRouter, FastAPI

    app = FastAPI()
    app.add_middleware(SignalkitMiddleware, identify=lambda conn: {"session_id": "fs-1"})
    app.router.routes.extend(relay_routes(CLIENT))
    router = APIRouter(prefix="/api")
    router.routes.extend(relay_routes(CLIENT, path="/api/signals", script_path=None))

    @router.get("/suggest")
    @CLIENT.recommendation("suggest", model="fake", model_version="1")
    async def suggest(q: str) -> dict[str, str]:
        exp = sk.current_exposure()
        assert exp is not None
        return {"text": q.upper(), "exposure_id": exp.id, "token": exp.token}

    app.include_router(router)
    with serve(app) as base, httpx.Client(base_url=base) as c:
        answer = c.get("/api/suggest", params={"q": "hi"}).json()
        assert answer["text"] == "HI"
        for path in ("/signals", "/api/signals"):
            r = c.post(
                path,
                content=orjson.dumps(
                    {"signals": [{"kind": "action", "token": answer["token"], "sid": path}]}
                ),
                headers={"content-type": "application/json"},
            )
            assert r.status_code == 202, r.text
        assert c.get("/signals.js").status_code == 200
    events = recorded(answer["exposure_id"])
    assert [e.kind for e in events] == ["exposure", "action", "action"]
    assert all(e.subject.session_id == "fs-1" for e in events)
    assert events[0].subject.anonymous_id == events[1].subject.anonymous_id


# -- the README ----------------------------------------------------------------------------------


def test_the_readme_example_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setenv("SIGNALKIT_DIR", str(tmp_path))  # its client's JSONL goes here
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(code, "README.md", "exec"), namespace)
    client: sk.Client = namespace["client"]
    who = {"x-user": "ana", "x-tenant": "acme"}  # the README's identify reads these
    with serve(namespace["app"]) as base, httpx.Client(base_url=base, headers=who) as c:
        draft = c.get("/draft").json()
        r = c.post(
            "/signals",
            content=orjson.dumps({"signals": [{"kind": "action", "token": draft["token"]}]}),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 202, r.text
        assert c.get("/signals.js").status_code == 200
    client.shutdown(5)
    lines = (tmp_path / "events.jsonl").read_bytes().splitlines()
    events = [orjson.loads(line) for line in lines]
    assert [e["kind"] for e in events] == ["exposure", "action"]
    for event in events:
        assert event["subject"]["user_id"] == "ana"
        assert event["subject"]["tenant_id"] == "acme"


# -- public face -------------------------------------------------------------------------------


def test_the_public_face_is_what_all_says() -> None:
    import signalkit_starlette

    public = {
        name
        for name, value in vars(signalkit_starlette).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("signalkit_starlette")
    }
    assert public <= set(signalkit_starlette.__all__)
    for name in signalkit_starlette.__all__:
        assert hasattr(signalkit_starlette, name)
        if name != "__version__" and callable(getattr(signalkit_starlette, name)):
            assert getattr(signalkit_starlette, name).__doc__
