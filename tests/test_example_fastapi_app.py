"""examples/fastapi_app: the README's command serves the app; httpx and a real headless Chromium
(driven by Playwright) use it, and the signals land in the JSONL with the right exposure."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "fastapi_app" / "app.py"
CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 1500  # how long the "user" reads the explanation before closing it and accepting


@dataclass
class App:
    url: str
    events: Path
    process: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    # The README's command: `uv run examples/fastapi_app/app.py` (the same environment as ours).
    tmp = tmp_path_factory.mktemp("fastapi_app")
    uv = shutil.which("uv")
    cmd = [uv, "run", "--frozen", str(SCRIPT)] if uv else [sys.executable, str(SCRIPT)]
    port = free_port()
    env = {**os.environ, "PORT": str(port), "SIGNALKIT_DIR": str(tmp)}
    env.pop("SIGNALKIT_SECRET", None)
    log = (tmp / "server.log").open("w")
    process = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp / "server.log").read_text()
            assert time.monotonic() < deadline, "the example did not start in 60 s"
            try:
                if httpx.get(url + "/signals.js", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield App(url, tmp / "events.jsonl", process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # our own process group: uv and the app
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        log.close()


def events_until(
    app: App, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 20
) -> list[dict[str, Any]]:
    """The JSONL's events, read again until ``done`` says they are all there."""
    deadline = time.monotonic() + timeout
    while True:
        lines = app.events.read_bytes().splitlines() if app.events.exists() else []
        events = [orjson.loads(line) for line in lines if line.endswith(b"}")]
        if done(events) or time.monotonic() > deadline:
            return events
        time.sleep(0.2)


def of(events: list[dict[str, Any]], exposure_id: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["exposure_id"] == exposure_id and e["kind"] == kind]


def test_the_page_and_api_work_over_http(app: App) -> None:
    with httpx.Client(base_url=app.url, timeout=10, follow_redirects=True) as http:
        page = http.get("/login/ana")  # sets the demo's user cookie, then shows the ticket
        assert page.status_code == 200
        assert '<script src="/signals.js"' in page.text
        token = re.search(r'data-signalkit-token="([^"]+)"', page.text)
        exposure_id = re.search(r'data-exposure-id="([^"]+)"', page.text)
        assert token
        assert exposure_id
        ask = {"ticket": "Where is my parcel?"}
        first, second = (http.get("/api/suggest", params=ask).json() for _ in range(2))
        assert first["text"] == second["text"]  # the fake model is deterministic
        assert first["exposure_id"] != second["exposure_id"]  # each call is its own exposure
        thumbs_up = {"kind": "feedback", "token": token[1], "rating": 1}
        r = http.post(
            "/signals",
            content=orjson.dumps({"signals": [thumbs_up]}),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 202, r.text
    events = events_until(app, lambda ev: bool(of(ev, exposure_id[1], "feedback")))
    (shown,) = of(events, exposure_id[1], "exposure")
    (feedback,) = of(events, exposure_id[1], "feedback")
    assert shown["surface"] == "reply-draft"
    assert shown["model"]["name"] == "fake-drafter"
    for event in (shown, feedback):
        assert event["subject"]["user_id"] == "ana"
        assert event["subject"]["tenant_id"] == "demo"
        assert event["subject"]["anonymous_id"]


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"needs Debian's chromium at {CHROMIUM} (.ci/run installs it)",
)
def test_a_real_browser_expands_waits_accepts_and_a_tampered_token_is_refused(
    app: App, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                "--disable-quic",
            ],
        )
        try:
            page = browser.new_page()
            warnings: list[str] = []
            page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
            page.goto(app.url + "/login/bea")
            page.wait_for_function("() => window.signalkit !== undefined")
            exposure_id = page.get_attribute("#suggestion", "data-exposure-id")
            token = page.get_attribute("#suggestion", "data-signalkit-token")
            assert exposure_id
            assert token

            page.click("#why summary")  # expand the explanation
            page.wait_for_timeout(WAIT_MS)
            page.click("#why summary")  # close it again
            with page.expect_response(lambda r: r.url.endswith("/signals")) as accepted:
                page.click("#accept")
                page.evaluate("() => signalkit.flush()")
            assert accepted.value.status == 202

            tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
            with page.expect_response(lambda r: r.url.endswith("/signals")) as refused:
                page.evaluate(
                    "t => { signalkit.action(t, 'accepted'); return signalkit.flush(); }", tampered
                )
            assert refused.value.status == 403
            assert refused.value.json()["rejected"][0]["reason"] == "token_tampered"
            page.wait_for_timeout(200)  # the script logs the refusal
            assert any("relay refused signals" in w for w in warnings), warnings
        finally:
            browser.close()

    events = events_until(
        app,
        lambda ev: len(of(ev, exposure_id, "toggle")) == 2 and bool(of(ev, exposure_id, "action")),
    )
    (shown,) = of(events, exposure_id, "exposure")
    expanded, collapsed = of(events, exposure_id, "toggle")
    (action,) = of(events, exposure_id, "action")  # the tampered one was not recorded
    assert (expanded["state"], collapsed["state"]) == ("expanded", "collapsed")
    assert expanded["element"] == collapsed["element"] == "explanation"
    assert collapsed["dwell_ms"] >= WAIT_MS - 50  # the page's clock, between two toggle events
    assert action["action"] == "accepted"
    # dated on the server's clock from the exposure: at least the wait, and not absurdly long
    assert WAIT_MS <= action["time_to_action_ms"] < 60_000
    assert collapsed["time_to_action_ms"] <= action["time_to_action_ms"]
    for event in (shown, expanded, collapsed, action):
        assert event["subject"]["user_id"] == "bea"
        assert event["subject"]["tenant_id"] == "demo"
