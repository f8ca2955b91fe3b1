"""signalkit-flask served for real: Flask apps (with Flask-Login) behind werkzeug's WSGI server
on 127.0.0.1, driven with httpx and raw sockets."""

from __future__ import annotations

import gc
import logging
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import flask
import httpx
import orjson
import pytest
from flask_login import LoginManager, UserMixin, login_user
from signalkit_flask import Signalkit
from werkzeug.serving import make_server

import signalkit as sk
from signalkit import ConfigError
from signalkit.relay import relay_script

SECRET = "flask-test-secret-0123456789abcdef"
EMPTY = {"user_id": None, "anonymous_id": None, "session_id": None, "tenant_id": None}


@pytest.fixture(scope="module")
def memory() -> sk.MemoryExporter:
    return sk.MemoryExporter()


@pytest.fixture(scope="module")
def client(memory: sk.MemoryExporter) -> Iterator[sk.Client]:
    c = sk.Client("flask-test", exporters=[memory], secret=SECRET)
    yield c
    c.shutdown(timeout=5)


class User(UserMixin):
    def __init__(self, name: str) -> None:
        self.id = name


def build_app(client: sk.Client, **options: Any) -> tuple[flask.Flask, Signalkit]:
    """A small product: log in (Flask-Login), show a recommendation, stream some."""
    app = flask.Flask(__name__)
    app.secret_key = "flask-test-session-key"
    logins = LoginManager(app)
    logins.user_loader(User)

    def shown(surface: str) -> dict[str, Any]:
        with client.exposure(surface, model="drafter", model_version="v1") as exp:
            pass
        return {
            "exposure_id": exp.id,
            "token": exp.token,
            "thread": threading.get_ident(),
            "subject": exp.subject.model_dump() if exp.subject else None,
        }

    @app.get("/login/<name>")
    def login(name: str) -> Any:
        login_user(User(name))
        return {"user_id": name}

    @app.get("/record")
    def record() -> Any:
        return shown("view")

    @app.get("/stream")
    def stream() -> Any:
        @flask.stream_with_context
        def chunks() -> Iterator[bytes]:
            for _ in range(3):
                yield orjson.dumps({**shown("stream"), "path": flask.request.path}) + b"\n"

        return flask.Response(chunks(), mimetype="application/x-ndjson")

    @app.get("/plain-stream")
    def plain_stream() -> Any:
        def chunks() -> Iterator[bytes]:  # no stream_with_context: Flask's request is gone
            for _ in range(3):
                yield orjson.dumps(shown("plain-stream")) + b"\n"

        return flask.Response(chunks(), mimetype="application/x-ndjson")

    @app.get("/fail")
    def fail() -> Any:
        raise RuntimeError("the view failed")

    extension = Signalkit(app, client, **options)
    return app, extension


@contextmanager
def serve(app: Any, *, threaded: bool = False) -> Iterator[str]:
    """``app`` on werkzeug's server; by default one thread for every request (reuse tested)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per request
    server = make_server("127.0.0.1", 0, app, threaded=threaded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


@pytest.fixture
def make(client: sk.Client) -> Iterator[Callable[..., tuple[str, Signalkit]]]:
    """Build and serve an app with the given extension options; stopped after the test."""
    with ExitStack() as stack:

        def start(**options: Any) -> tuple[str, Signalkit]:
            app, extension = build_app(client, **options)
            return stack.enter_context(serve(app)), extension

        yield start


@contextmanager
def logged_in(url: str, name: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=10) as http:
        http.get(f"/login/{name}").raise_for_status()
        yield http


def exposure_event(client: sk.Client, memory: sk.MemoryExporter, exposure_id: str) -> sk.Event:
    assert client.flush(5)
    (event,) = [e for e in memory.events if e.id == exposure_id]
    return event


# -- context ------------------------------------------------------------------------------


def tenant(request: flask.Request) -> dict[str, str]:
    return {"tenant_id": request.headers.get("X-Tenant", "none"), "session_id": "s-1"}


def test_events_recorded_in_a_view_carry_the_user_and_identify_ids(
    make: Any, client: sk.Client, memory: sk.MemoryExporter
) -> None:
    url, _ = make(identify=tenant)
    with logged_in(url, "ana") as http:
        shown = http.get("/record", headers={"X-Tenant": "acme"}).raise_for_status().json()
    subject = exposure_event(client, memory, shown["exposure_id"]).subject
    assert subject == sk.Subject(user_id="ana", session_id="s-1", tenant_id="acme")


def test_identify_may_return_a_subject_and_its_ids_win(make: Any) -> None:
    url, _ = make(identify=lambda request: sk.Subject(user_id="from-identify", tenant_id="t-7"))
    with logged_in(url, "ana") as http:
        shown = http.get("/record").raise_for_status().json()
    assert shown["subject"]["user_id"] == "from-identify"


def test_context_does_not_leak_to_the_next_request_on_the_same_thread(make: Any) -> None:
    url, _ = make(identify=tenant)
    with logged_in(url, "ben") as http:
        first = http.get("/record", headers={"X-Tenant": "acme"}).raise_for_status().json()
        http.get("/fail")  # a view that raised leaves nothing behind either
    plain, _ = make()  # no identify: only Flask-Login's user, and there is none
    with httpx.Client(base_url=url, timeout=10) as anonymous:
        second = anonymous.get("/record").raise_for_status().json()
    with httpx.Client(base_url=plain, timeout=10) as anonymous:
        third = anonymous.get("/record").raise_for_status().json()
    assert first["subject"]["user_id"] == "ben"
    assert second["thread"] == first["thread"]
    assert second["subject"] == {**EMPTY, "tenant_id": "none", "session_id": "s-1"}
    assert third["subject"] == EMPTY


@pytest.mark.parametrize("path", ["/stream", "/plain-stream"])
def test_streamed_responses_see_the_context(make: Any, path: str) -> None:
    url, _ = make(identify=tenant)
    with logged_in(url, "cleo") as http:
        lines = http.get(path, headers={"X-Tenant": "acme"}).raise_for_status().text.splitlines()
        after = httpx.get(url + "/record", timeout=10).json()
    assert len(lines) == 3
    for line in lines:
        chunk = orjson.loads(line)
        assert (chunk["subject"]["user_id"], chunk["subject"]["tenant_id"]) == ("cleo", "acme")
        assert chunk["thread"] == after["thread"]
    assert after["subject"]["user_id"] is None


def test_concurrent_requests_on_threads_each_see_their_own_ids(client: sk.Client) -> None:
    app, _ = build_app(client, identify=tenant)
    with (
        serve(app, threaded=True) as url,
        httpx.Client(base_url=url, timeout=20) as http,
        ThreadPoolExecutor(8) as pool,
    ):
        answers = list(
            pool.map(lambda i: http.get("/stream", headers={"X-Tenant": f"t{i}"}), range(24))
        )
    for i, answer in enumerate(answers):
        lines = answer.raise_for_status().text.splitlines()
        assert [orjson.loads(line)["subject"]["tenant_id"] for line in lines] == [f"t{i}"] * 3


def test_without_the_wsgi_wrapper_the_hooks_still_set_and_clear_the_context(
    client: sk.Client,
) -> None:
    app, _ = build_app(client, identify=tenant)
    app.wsgi_app = lambda environ, start: flask.Flask.wsgi_app(app, environ, start)  # type: ignore[method-assign]
    with serve(app) as url:
        with logged_in(url, "dan") as http:
            first = http.get("/record", headers={"X-Tenant": "acme"}).raise_for_status().json()
        second = httpx.get(url + "/record", timeout=10).json()
    assert (first["subject"]["user_id"], first["subject"]["tenant_id"]) == ("dan", "acme")
    assert second["subject"] == {**EMPTY, "tenant_id": "none", "session_id": "s-1"}


def test_flasks_test_client_sees_the_context_and_unclosed_responses_leave_nothing(
    client: sk.Client,
) -> None:
    app, _ = build_app(client, identify=tenant)
    http = app.test_client()
    with_tenant = [http.get("/record", headers={"X-Tenant": f"t{i}"}) for i in range(3)]
    streamed = http.get("/stream", headers={"X-Tenant": "acme"})  # never read nor closed
    del streamed
    gc.collect()  # an unclosed body must not fail when collected (unraisable errors fail here)
    assert [r.get_json()["subject"]["tenant_id"] for r in with_tenant] == ["t0", "t1", "t2"]
    with sk.context() as subject:  # inherits whatever is set on this thread: nothing
        assert subject == sk.Subject()


def broken(request: flask.Request) -> dict[str, str]:
    raise RuntimeError("the tenant service is down")


@pytest.mark.parametrize("identify", [broken, lambda request: {"user": "typo"}, lambda r: 3])
def test_identify_raising_is_logged_and_the_request_goes_on(
    make: Any, identify: Any, caplog: pytest.LogCaptureFixture
) -> None:
    url, extension = make(identify=identify)
    with caplog.at_level(logging.WARNING, logger="signalkit.flask"), logged_in(url, "eve") as http:
        shown = http.get("/record").raise_for_status().json()
        http.get("/record").raise_for_status()
    assert shown["subject"]["user_id"] == "eve"  # Flask-Login's id is kept
    assert extension.identify_failures == 3  # login and two records
    messages = [r for r in caplog.records if r.name == "signalkit.flask"]
    assert len(messages) == 1  # rate-limited
    assert "identifying the request failed" in messages[0].getMessage()
    assert messages[0].exc_info is not None


def test_wrong_options_name_the_field(client: sk.Client) -> None:
    with pytest.raises(ConfigError, match="identify: must be a callable"):
        Signalkit(client=client, identify="myapp.identify")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="relay_path: must be a path"):
        Signalkit(client=client, relay_path="signals")
    with pytest.raises(ConfigError, match="rate: must be a positive number"):
        Signalkit(client=client, rate=0)
    app = flask.Flask(__name__)
    Signalkit(app, client)
    with pytest.raises(ConfigError, match="already set up"):
        Signalkit(app, client)


# -- relay --------------------------------------------------------------------------------


def post(http: httpx.Client, *signals: dict[str, Any], path: str = "/signals") -> httpx.Response:
    return http.post(path, json={"signals": list(signals)})


def test_a_valid_browser_batch_is_accepted_and_recorded_for_the_request_user(
    make: Any, client: sk.Client, memory: sk.MemoryExporter
) -> None:
    url, extension = make(identify=tenant)
    with logged_in(url, "fay") as http:
        shown = http.get("/record").raise_for_status().json()
        token = shown["token"]
        response = post(
            http,
            {"kind": "action", "token": token, "action": "accepted", "sid": "a1"},
            {"kind": "feedback", "token": token, "rating": 1},
        )
        again = post(http, {"kind": "action", "token": token, "action": "accepted", "sid": "a1"})
    assert response.status_code == 202
    assert response.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert client.flush(5)
    signals = [
        e for e in memory.events if e.exposure_id == shown["exposure_id"] and e.kind != "exposure"
    ]
    assert [e.kind for e in signals] == ["action", "feedback"]
    assert {e.subject for e in signals} == {
        sk.Subject(user_id="fay", session_id="s-1", tenant_id="none")
    }
    assert extension.relay.stats().accepted == 2


def test_the_relay_and_script_paths_are_configurable(make: Any) -> None:
    url, _ = make(relay_path="/t/sig", script_path="/static/sk.js")
    with httpx.Client(base_url=url, timeout=10) as http:
        token = http.get("/record").json()["token"]
        assert post(http, {"kind": "action", "token": token}, path="/t/sig").status_code == 202
        assert http.get("/static/sk.js").text == relay_script()
        assert post(http, {"kind": "action", "token": token}).status_code == 404
    url, _ = make(relay_path=None, script_path=None)
    assert httpx.get(url + "/signals.js", timeout=10).status_code == 404


def test_a_forged_token_gets_403(make: Any) -> None:
    url, _ = make()
    with httpx.Client(base_url=url, timeout=10) as http:
        token = http.get("/record").json()["token"]
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        response = post(http, {"kind": "action", "token": forged})
        get = http.get("/signals")
    assert response.status_code == 403
    assert response.json()["rejected"][0]["reason"] == "token_tampered"
    assert get.status_code == 405


def raw_request(url: str, data: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(data)
        received = b""
        while chunk := conn.recv(65536):  # the server closes after answering
            received += chunk
        return received


def test_a_huge_declared_body_is_refused_without_reading_it(make: Any) -> None:
    url, extension = make(max_body_bytes=1000)
    # 100 MB declared, 10 bytes sent: a view that read the body would wait for the rest (and
    # time out); the relay answers at once from Content-Length.
    started = time.monotonic()
    answer = raw_request(
        url,
        b"POST /signals HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100000000\r\n\r\n{"signals"',
    )
    assert answer.split(b"\r\n", 1)[0].split()[1] == b"413", answer[:200]
    assert answer.endswith(
        b'{"error":"body_too_large",'
        b'"message":"Content-Length 100000000 is over the limit of 1000 bytes"}'
    )
    assert time.monotonic() - started < 4
    assert extension.relay.stats().rejected == {"body_too_large": 1}


def test_a_chunked_body_is_read_no_further_than_the_limit(make: Any) -> None:
    url, _ = make(max_body_bytes=1000)
    sent = 0

    def body() -> Iterator[bytes]:  # no Content-Length: sent chunked
        nonlocal sent
        yield b'{"signals": ['
        for _ in range(100):
            sent += 1
            yield b'{"kind": "action", "token": "x"},'
        yield b"]}"

    with httpx.Client(base_url=url, timeout=10) as http:
        response = http.post("/signals", content=body(), headers={"Content-Type": "text/plain"})
    assert response.status_code == 413
    assert response.json()["message"] == "the body is over the limit of 1000 bytes"


def test_the_apps_own_lower_max_content_length_is_answered_as_json(client: sk.Client) -> None:
    app, _ = build_app(client)
    app.config["MAX_CONTENT_LENGTH"] = 100
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        response = http.post(
            "/signals", content=iter([b"x" * 300]), headers={"Content-Type": "text/plain"}
        )
    assert response.status_code == 413, response.text
    assert response.json()["message"] == "the body is over the limit of 100 bytes"


def test_rate_limit_is_429_with_retry_after(make: Any) -> None:
    url, _ = make(rate=0.5, burst=2)
    with httpx.Client(base_url=url, timeout=10) as http:
        token = http.get("/record").json()["token"]
        first = post(
            http,
            {"kind": "action", "token": token},
            {"kind": "feedback", "token": token, "rating": 1},
        )
        second = post(http, {"kind": "action", "token": token})
    assert first.status_code == 202
    assert second.status_code == 429
    assert second.headers["Retry-After"] == "2"
    assert second.json()["error"] == "rate_limited"


def test_the_script_is_served_with_an_etag_and_304(make: Any) -> None:
    url, _ = make()
    with httpx.Client(base_url=url, timeout=10) as http:
        first = http.get("/signals.js")
        etag = first.headers["ETag"]
        cached = http.get("/signals.js", headers={"If-None-Match": etag})
        weak = http.get("/signals.js", headers={"If-None-Match": f'"other", W/{etag}'})
        stale = http.get("/signals.js", headers={"If-None-Match": '"other"'})
    assert first.status_code == 200
    assert first.text == relay_script()
    assert first.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert etag.startswith('"')
    assert len(etag) == 34
    assert (cached.status_code, cached.content) == (304, b"")
    assert cached.headers["ETag"] == etag
    assert weak.status_code == 304
    assert stale.status_code == 200


# -- a real browser ------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium")
PAGE = """<!doctype html><html><body>
<script src="/signals.js" data-endpoint="/signals"></script>
<div data-signalkit-token="{token}"><p>Draft reply</p>
  <details data-signalkit-toggle="sources"><summary>Sources</summary>kb-12</details>
  <button id="use" data-signalkit-action="accepted">Use this reply</button>
  <button id="up" data-signalkit-feedback="1">up</button>
</div>
<script>
  window.addEventListener("load", function () {{
    document.querySelector("details").open = true;
    document.getElementById("use").click();
    document.getElementById("up").click();
  }});
</script>
</body></html>"""


def open_in_chromium(url: str, tmp_path: Path) -> None:
    """Load ``url`` in headless Chromium and let its timers run (the script flushes after 1 s)."""
    assert CHROMIUM is not None
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_a_page_in_a_real_browser_sends_signals_through_the_script_and_relay(
    client: sk.Client, memory: sk.MemoryExporter, tmp_path: Path
) -> None:
    app, extension = build_app(
        client, identify=lambda request: {"user_id": request.cookies.get("uid")}
    )

    @app.get("/page")
    def page() -> Any:
        with client.exposure("reply-draft", model="drafter", model_version="v1") as exp:
            pass
        app.config["exposure_id"] = exp.id
        response = flask.make_response(PAGE.format(token=exp.token))
        response.set_cookie("uid", "browser-user")  # the server's own idea of who this is
        return response

    with serve(app) as url:
        open_in_chromium(url + "/page", tmp_path)
    assert client.flush(5)
    signals = [e for e in memory.events if e.exposure_id == app.config["exposure_id"]]
    assert sorted(e.kind for e in signals) == ["action", "exposure", "feedback", "toggle"]
    for event in signals:
        if event.kind != "exposure":
            assert event.subject.user_id == "browser-user"
            assert event.score.strength > 0
    assert extension.relay.stats().accepted == 3


# -- the README ----------------------------------------------------------------------------


def test_the_readme_example_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text("utf-8")
    example = readme.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setenv("SIGNALKIT_DIR", str(tmp_path))  # the example's client writes JSONL here
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(example, "README.md", "exec"), namespace)
    try:
        with serve(namespace["app"]) as url:
            answer = httpx.get(
                url + "/draft", headers={"X-User": "u-7", "X-Tenant": "acme"}, timeout=10
            ).json()
    finally:
        namespace["client"].shutdown(timeout=5)
    assert answer["token"].startswith("sk1.")
    (line,) = (tmp_path / "events.jsonl").read_text("utf-8").splitlines()
    event = orjson.loads(line)
    assert (event["kind"], event["surface"]) == ("exposure", "reply-draft")
    assert event["subject"] == {**EMPTY, "user_id": "u-7", "tenant_id": "acme"}


def test_the_public_face_is_what_all_says() -> None:
    import signalkit_flask

    public = {name for name in vars(signalkit_flask) if not name.startswith("_")}
    assert set(signalkit_flask.__all__) - {"__version__"} == public
    assert all(getattr(signalkit_flask, name).__doc__ for name in public - {"Identify"})
