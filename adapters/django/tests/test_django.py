"""signalkit-django served for real: a minimal Django project (settings configured here) behind
werkzeug's WSGI server and uvicorn (ASGI, the async middleware path) on 127.0.0.1, driven with
httpx and raw sockets. Sessions, users and CSRF are Django's own, on a SQLite file."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import django
import httpx
import orjson
import pytest
from django.conf import settings

import signalkit as sk
from signalkit.relay import relay_script

SECRET = "django-test-secret-0123456789abcdef"
MEMORY = sk.MemoryExporter()
CLIENT = sk.Client("django-test", exporters=[MEMORY], secret=SECRET)
BASE = {"CLIENT": CLIENT}

# -- the project's views (this module is its ROOT_URLCONF) -----------------------------------


def _shown(surface: str) -> dict[str, Any]:
    with CLIENT.exposure(surface, model="drafter", model_version="v1") as exp:
        pass
    return {
        "exposure_id": exp.id,
        "token": exp.token,
        "thread": threading.get_ident(),
        "subject": exp.subject.model_dump() if exp.subject else None,
    }


def login_view(request: Any, name: str) -> Any:
    from django.contrib.auth import login
    from django.contrib.auth.models import User
    from django.http import JsonResponse

    user, _ = User.objects.get_or_create(username=name)
    login(request, user)
    return JsonResponse({"user_id": str(user.pk)})


def record_view(request: Any) -> Any:
    from django.http import JsonResponse

    return JsonResponse(_shown("sync-view"))


async def arecord_view(request: Any) -> Any:
    from django.http import JsonResponse

    await asyncio.sleep(0.005)  # let concurrent requests interleave on the loop
    return JsonResponse(_shown("async-view"))


def stream_view(request: Any) -> Any:
    from django.http import StreamingHttpResponse

    def chunks() -> Iterator[bytes]:
        for _ in range(3):
            yield orjson.dumps(_shown("stream")) + b"\n"

    return StreamingHttpResponse(chunks(), content_type="application/x-ndjson")


def astream_view(request: Any) -> Any:
    from django.http import StreamingHttpResponse

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            await asyncio.sleep(0)
            yield orjson.dumps(_shown("astream")) + b"\n"

    return StreamingHttpResponse(chunks(), content_type="application/x-ndjson")


PAGE = """<!doctype html><html><body>
<script src="/t/signals.js" data-endpoint="/t/signals"></script>
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
PAGES: dict[str, dict[str, str]] = {}


def page_view(request: Any) -> Any:
    from django.contrib.auth import login
    from django.contrib.auth.models import User
    from django.http import HttpResponse

    user, _ = User.objects.get_or_create(username="browser")
    login(request, user)  # the browser gets Django's session cookie with the page
    with CLIENT.exposure("reply-draft", model="drafter", model_version="v1") as exp:
        pass
    PAGES[exp.id] = {"user_id": str(user.pk), "session_id": str(request.session.session_key)}
    return HttpResponse(PAGE.format(token=exp.token))


def _urls() -> list[Any]:
    from django.urls import include, path

    return [
        path("login/<str:name>", login_view),
        path("record", record_view),
        path("arecord", arecord_view),
        path("stream", stream_view),
        path("astream", astream_view),
        path("page", page_view),
        path("t/", include("signalkit_django.urls")),
    ]


def __getattr__(name: str) -> Any:  # urlpatterns, built once Django is set up
    if name == "urlpatterns":
        return _urls()
    raise AttributeError(name)


# -- identify callables the tests switch to ------------------------------------------------


def tenant_identify(request: Any) -> dict[str, str]:
    return {"tenant_id": request.headers.get("X-Tenant", "none"), "anonymous_id": "anon-1"}


async def async_tenant_identify(request: Any) -> dict[str, str]:
    await asyncio.sleep(0)
    return {"tenant_id": "async-" + request.headers.get("X-Tenant", "none")}


def broken_identify(request: Any) -> dict[str, str]:
    raise RuntimeError("the tenant service is down")


def wrong_identify(request: Any) -> Any:
    return {"user": "typo"}


# -- servers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    db = tmp_path_factory.mktemp("django") / "db.sqlite3"
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="django-insecure-test-key-not-for-production-0123456789",
            ALLOWED_HOSTS=["127.0.0.1", "localhost"],
            ROOT_URLCONF=__name__,
            INSTALLED_APPS=[
                "django.contrib.contenttypes",
                "django.contrib.auth",
                "django.contrib.sessions",
            ],
            MIDDLEWARE=[
                "django.contrib.sessions.middleware.SessionMiddleware",
                "django.middleware.csrf.CsrfViewMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "signalkit_django.SignalkitMiddleware",
            ],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(db)}},
            USE_TZ=True,
            SIGNALKIT=BASE,
        )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    yield db
    CLIENT.shutdown(timeout=5)


@pytest.fixture(scope="module")
def wsgi_url(project: Path) -> Iterator[str]:
    from django.core.wsgi import get_wsgi_application
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per request
    server = make_server("127.0.0.1", 0, get_wsgi_application(), threaded=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture(scope="module")
def asgi_url(project: Path) -> Iterator[str]:
    import uvicorn
    from django.core.asgi import get_asgi_application

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        get_asgi_application(), lifespan="off", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(5)
    sock.close()


@pytest.fixture(params=["wsgi", "asgi"])
def url(request: pytest.FixtureRequest) -> str:
    base: str = request.getfixturevalue(f"{request.param}_url")
    return base


@pytest.fixture
def signalkit_settings(project: Path) -> Iterator[Any]:
    """Switch ``SIGNALKIT`` for one test (the servers read it at the next request)."""
    from django.test import override_settings

    overrides: list[Any] = []

    def use(**extra: Any) -> None:
        override = override_settings(SIGNALKIT={**BASE, **extra})
        override.enable()
        overrides.append(override)

    yield use
    for override in reversed(overrides):
        override.disable()


def exposure_event(exposure_id: str) -> sk.Event:
    assert CLIENT.flush(5)
    (event,) = [e for e in MEMORY.events if e.id == exposure_id]
    return event


@contextmanager
def logged_in(url: str, name: str) -> Iterator[tuple[httpx.Client, str]]:
    with httpx.Client(base_url=url, timeout=10) as http:
        yield http, http.get(f"/login/{name}").raise_for_status().json()["user_id"]


# -- context ------------------------------------------------------------------------------


@pytest.mark.parametrize("view", ["/record", "/arecord"])
def test_events_recorded_in_a_view_carry_the_user_and_session(url: str, view: str) -> None:
    with logged_in(url, "ana") as (http, user_id):
        shown = http.get(view).raise_for_status().json()
        session_key = http.cookies["sessionid"]
    event = exposure_event(shown["exposure_id"])
    assert event.subject.user_id == user_id
    assert event.subject.session_id == session_key
    assert event.subject.anonymous_id is None


@pytest.mark.parametrize("view", ["/record", "/arecord"])
def test_context_does_not_leak_to_the_next_request_on_the_same_thread(
    url: str, view: str, request: pytest.FixtureRequest
) -> None:
    with logged_in(url, "ben") as (http, _):
        first = http.get(view).raise_for_status().json()
    assert first["subject"]["user_id"] is not None
    with httpx.Client(base_url=url, timeout=10) as anonymous:
        second = anonymous.get(view).raise_for_status().json()
    # WSGI: the server's one thread; ASGI: async views on the loop's thread (Django runs each
    # request's sync views on a thread of its own there, so no reuse to test)
    if request.node.callspec.params["url"] == "wsgi" or view == "/arecord":
        assert second["thread"] == first["thread"]
    assert second["subject"] == {
        "user_id": None,
        "anonymous_id": None,
        "session_id": None,
        "tenant_id": None,
    }
    assert exposure_event(second["exposure_id"]).subject == sk.Subject()


@pytest.mark.parametrize("view", ["/stream", "/astream"])
# Django warns when a sync server streams an async iterator (and the reverse); both work
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume")
def test_streamed_responses_see_the_context_while_producing_chunks(url: str, view: str) -> None:
    with logged_in(url, "cleo") as (http, user_id):
        lines = http.get(view).raise_for_status().text.splitlines()
        session_key = http.cookies["sessionid"]
    assert len(lines) == 3
    for line in lines:
        subject = orjson.loads(line)["subject"]
        assert (subject["user_id"], subject["session_id"]) == (user_id, session_key)
    with httpx.Client(base_url=url, timeout=10) as anonymous:
        after = anonymous.get("/record").raise_for_status().json()
    assert after["subject"]["user_id"] is None


@pytest.mark.parametrize("identify", [tenant_identify, f"{__name__}.tenant_identify"])
def test_identify_adds_ids_to_the_defaults(
    url: str, signalkit_settings: Any, identify: Any
) -> None:
    signalkit_settings(IDENTIFY=identify)
    with logged_in(url, "dora") as (http, user_id):
        shown = http.get("/record", headers={"X-Tenant": "acme"}).raise_for_status().json()
    subject = exposure_event(shown["exposure_id"]).subject
    assert (subject.user_id, subject.tenant_id, subject.anonymous_id) == (user_id, "acme", "anon-1")


async def test_concurrent_requests_on_one_event_loop_each_see_their_own_ids(
    asgi_url: str, signalkit_settings: Any
) -> None:
    signalkit_settings(IDENTIFY=tenant_identify)
    async with httpx.AsyncClient(base_url=asgi_url, timeout=20) as http:
        answers = await asyncio.gather(
            *(http.get("/arecord", headers={"X-Tenant": f"t{i}"}) for i in range(20))
        )
    tenants = [answer.raise_for_status().json()["subject"]["tenant_id"] for answer in answers]
    assert tenants == [f"t{i}" for i in range(20)]


def test_an_async_identify_is_awaited_on_the_async_path(
    asgi_url: str, signalkit_settings: Any
) -> None:
    signalkit_settings(IDENTIFY=async_tenant_identify)
    with httpx.Client(base_url=asgi_url, timeout=10) as http:
        shown = http.get("/arecord", headers={"X-Tenant": "acme"}).raise_for_status().json()
    assert exposure_event(shown["exposure_id"]).subject.tenant_id == "async-acme"


@pytest.mark.parametrize("identify", [broken_identify, wrong_identify])
def test_identify_raising_is_logged_and_the_request_goes_on(
    url: str, signalkit_settings: Any, identify: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import signalkit_django
    from signalkit_django import _middleware

    _middleware._failures._last = None  # the previous test's message must not throttle this one
    signalkit_settings(IDENTIFY=identify)
    before = signalkit_django.identify_failures()
    with (
        caplog.at_level(logging.WARNING, logger="signalkit.django"),
        logged_in(url, "eve") as (http, user_id),
    ):
        shown = http.get("/record").raise_for_status().json()
        http.get("/record").raise_for_status()
    # the defaults are kept; the failure is counted and logged once (rate-limited)
    assert exposure_event(shown["exposure_id"]).subject.user_id == user_id
    assert signalkit_django.identify_failures() >= before + 3  # login and two records
    messages = [r for r in caplog.records if r.name == "signalkit.django"]
    assert len(messages) == 1
    assert "identifying the request failed" in messages[0].getMessage()
    assert messages[0].exc_info is not None


def test_a_wrong_setting_names_the_key(project: Path) -> None:
    from django.core.exceptions import ImproperlyConfigured
    from django.test import override_settings
    from signalkit_django import SignalkitMiddleware

    cases = [
        ({"IDENTFY": "x"}, "unknown key(s) ['IDENTFY']"),
        ({"IDENTIFY": "no.such.module.fn"}, "SIGNALKIT['IDENTIFY']: cannot import"),
        ({"CLIENT": 3}, "SIGNALKIT['CLIENT'] must be a signalkit.Client"),
        ({"RELAY": {"rate": -1}}, "SIGNALKIT['RELAY']: rate: must be a positive number"),
        ({"RELAY": {"rates": 1}}, "SIGNALKIT['RELAY']: Relay.__init__() got an unexpected keyword"),
    ]
    for value, message in cases:
        with override_settings(SIGNALKIT=value), pytest.raises(ImproperlyConfigured) as err:
            SignalkitMiddleware(lambda request: None)  # type: ignore[arg-type,return-value]
        assert message in str(err.value)


# -- relay --------------------------------------------------------------------------------


def post(http: httpx.Client, *signals: dict[str, Any]) -> httpx.Response:
    return http.post("/t/signals", json={"signals": list(signals)})


def test_a_valid_browser_batch_is_accepted_and_recorded_for_the_request_user(url: str) -> None:
    with logged_in(url, "fay") as (http, user_id):
        shown = http.get("/record").raise_for_status().json()
        token = shown["token"]
        # no CSRF token: the relay view is exempt, the exposure token is the credential
        response = post(
            http,
            {"kind": "action", "token": token, "action": "accepted", "sid": "a1"},
            {"kind": "toggle", "token": token, "state": "expanded", "element": "sources"},
        )
        again = post(http, {"kind": "action", "token": token, "action": "accepted", "sid": "a1"})
        session_key = http.cookies["sessionid"]
    assert response.status_code == 202
    assert response.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert CLIENT.flush(5)
    signals = [
        e for e in MEMORY.events if e.exposure_id == shown["exposure_id"] and e.kind != "exposure"
    ]
    assert [e.kind for e in signals] == ["action", "toggle"]
    assert {(e.subject.user_id, e.subject.session_id) for e in signals} == {(user_id, session_key)}


def test_a_forged_token_gets_403(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        token = http.get("/record").json()["token"]
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        response = post(http, {"kind": "action", "token": forged})
    assert response.status_code == 403
    assert response.json()["rejected"][0]["reason"] == "token_tampered"


def test_get_on_the_relay_is_405(url: str) -> None:
    assert httpx.get(url + "/t/signals", timeout=10).status_code == 405


def test_the_url_names_reverse_under_the_include_prefix(project: Path) -> None:
    from django.urls import reverse

    assert (reverse("signalkit:relay"), reverse("signalkit:script")) == (
        "/t/signals",
        "/t/signals.js",
    )


def test_oversize_body_is_413(url: str, signalkit_settings: Any) -> None:
    signalkit_settings(RELAY={"max_body_bytes": 1000})
    with httpx.Client(base_url=url, timeout=10) as http:
        token = http.get("/record").json()["token"]
        big = {"kind": "correction", "token": token, "original": "a", "corrected": "b" * 2000}
        response = post(http, big)
        fits = post(http, {"kind": "action", "token": token})
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert fits.status_code == 202


def raw_request(url: str, head: bytes, body: bytes = b"") -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(head + body)
        received = b""
        while chunk := conn.recv(65536):  # the server closes after answering
            received += chunk
        return received


def test_a_huge_declared_body_is_refused_without_reading_it(
    wsgi_url: str, signalkit_settings: Any
) -> None:
    signalkit_settings(RELAY={"max_body_bytes": 1000})
    # 100 MB declared, 10 bytes sent: a view that read the body would wait for the rest (and
    # time out); the relay view answers at once from Content-Length.
    head = (
        b"POST /t/signals HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000000\r\n\r\n"
    )
    started = time.monotonic()
    answer = raw_request(wsgi_url, head, b'{"signals"')
    assert answer.split(b"\r\n", 1)[0].split()[1] == b"413", answer[:200]
    assert answer.endswith(
        b'{"error":"body_too_large",'
        b'"message":"Content-Length 100000000 is over the limit of 1000 bytes"}'
    )
    assert time.monotonic() - started < 4


def test_a_chunked_body_is_read_no_further_than_the_limit(
    asgi_url: str, signalkit_settings: Any
) -> None:
    signalkit_settings(RELAY={"max_body_bytes": 1000})

    def body() -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"signals": ['
        yield b'{"kind": "action", "token": "x"},' * 100
        yield b"]}"

    with httpx.Client(base_url=asgi_url, timeout=10) as http:
        response = http.post(
            "/t/signals", content=body(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413
    assert response.json()["message"] == "the body is over the limit of 1000 bytes"


def test_rate_limit_is_429_with_retry_after(url: str, signalkit_settings: Any) -> None:
    signalkit_settings(RELAY={"rate": 0.5, "burst": 2})
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


def test_the_script_is_served_with_an_etag_and_304(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        first = http.get("/t/signals.js")
        etag = first.headers["ETag"]
        cached = http.get("/t/signals.js", headers={"If-None-Match": etag})
        weak = http.get("/t/signals.js", headers={"If-None-Match": f'"other", W/{etag}'})
        stale = http.get("/t/signals.js", headers={"If-None-Match": '"other"'})
    assert first.status_code == 200
    assert first.text == relay_script()
    assert first.headers["Content-Type"].startswith("text/javascript")
    assert etag.startswith('"')
    assert len(etag) == 34
    assert (cached.status_code, cached.content) == (304, b"")
    assert cached.headers["ETag"] == etag
    assert weak.status_code == 304
    assert stale.status_code == 200


# -- a real browser ------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium")


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
    url: str, tmp_path: Path
) -> None:
    PAGES.clear()
    open_in_chromium(url + "/page", tmp_path)
    ((exposure_id, who),) = PAGES.items()
    assert CLIENT.flush(5)
    signals = [e for e in MEMORY.events if e.exposure_id == exposure_id]
    assert sorted(e.kind for e in signals) == ["action", "exposure", "feedback", "toggle"]
    for event in signals:
        if event.kind != "exposure":
            assert event.subject.model_dump(exclude_none=True) == who


def test_the_public_face_is_what_all_says(project: Path) -> None:
    import signalkit_django

    public = {
        name
        for name, value in vars(signalkit_django).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("signalkit_")
    }
    assert set(signalkit_django.__all__) - {"__version__"} == public
    assert all(getattr(signalkit_django, name).__doc__ for name in public)
