"""ClickHouse for real: the exporter writes a real server's table and the report reads it.

A ``clickhouse-server`` process (Debian's package, 18.16 here; ``.ci/run`` installs it) is
started on a free 127.0.0.1 port with its own config and data directory, and stopped at the
end. The same hand-built dataset as ``test_report.py`` goes through DuckDB (from JSONL) and
ClickHouse (through :class:`ClickHouseExporter`), and the two reports must agree.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import signalkit as sk
from signalkit.analytics import build_report
from signalkit.analytics.report import Report
from signalkit.events import parse_event
from signalkit.exporters import ClickHouseExporter, ExportResult
from test_report import SECRET, T0, D, H, S, record_dataset

pytest.importorskip("duckdb")

CONFIG = """<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><console>1</console></logger>
    <http_port>{http}</http_port>
    <tcp_port>{tcp}</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <path>{data}/</path>
    <tmp_path>{data}/tmp/</tmp_path>
    <user_files_path>{data}/user_files/</user_files_path>
    <format_schema_path>{data}/format_schemas/</format_schema_path>
    <mark_cache_size>104857600</mark_cache_size>
    <max_server_memory_usage_to_ram_ratio>0.2</max_server_memory_usage_to_ram_ratio>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <profiles><default></default></profiles>
    <quotas><default></default></quotas>
</yandex>
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ClickHouse:
    http_url: str
    port: int

    def query(self, sql: str) -> str:
        r = httpx.post(self.http_url, content=sql.encode(), timeout=30)
        assert r.status_code == 200, r.text
        return r.text

    def source(self, database: str) -> str:
        return f"clickhouse://127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouse]:
    binary = shutil.which("clickhouse-server") or (
        "/usr/sbin/clickhouse-server" if Path("/usr/sbin/clickhouse-server").exists() else None
    )
    if binary is None:
        pytest.skip(
            "clickhouse-server is not installed (apt-get install clickhouse-server; "
            ".ci/run does it when it can)"
        )
    root = tmp_path_factory.mktemp("clickhouse")
    http, tcp = _free_port(), _free_port()
    config = root / "config.xml"
    config.write_text(CONFIG.format(http=http, tcp=tcp, data=root / "data"))
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config-file={config}"], stdout=log, stderr=subprocess.STDOUT, cwd=root
    )
    url = f"http://127.0.0.1:{http}/"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(url + "ping", timeout=1).text.strip() == "Ok.":
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "clickhouse-server did not start: " + (root / "server.log").read_text()[-2000:]
                )
            time.sleep(0.2)
        yield ClickHouse(url, http)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def _fresh_database(ch: ClickHouse, name: str) -> str:
    ch.query(f"DROP DATABASE IF EXISTS {name}")
    ch.query(f"CREATE DATABASE {name}")
    return name


@pytest.fixture(scope="module")
def both(clickhouse: ClickHouse, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The hand-built dataset as JSONL and in a ClickHouse table (each event once or twice)."""
    path = tmp_path_factory.mktemp("both") / "events.jsonl"
    events = record_dataset(path)
    orphan_line = path.read_bytes().splitlines()[-1]
    orphan = parse_event(orphan_line)
    db = _fresh_database(clickhouse, "report_same")
    exporter = ClickHouseExporter(clickhouse.http_url, database=db)
    half = len(events) // 2
    assert exporter.export(events[: half + 3]) is ExportResult.SUCCESS
    assert exporter.export(events[half:]) is ExportResult.SUCCESS  # 3 events sent twice
    assert exporter.export([orphan]) is ExportResult.SUCCESS
    exporter.shutdown()
    return path, clickhouse.source(db)


def _comparable(report: Report) -> list[dict[str, Any]]:
    data = report.to_dict()
    return [
        {k: g[k] for k in ("label", "key", "is_baseline", "exposures", "funnel", "histograms")}
        | {"metrics": g["metrics"]}
        for g in data["groups"]
    ]


def _assert_same(a: Any, b: Any, where: str = "") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict), where
        assert set(a) == set(b), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list), where
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-9), where
    else:
        assert a == b, where


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"by": ["model.version", "model.variant"], "baseline": "v1 / a"},
        {"by": ["attributes.region"]},
        {"since": T0 + 30 * 60 * S, "until": T0 + 5 * D},
        {"action_window": timedelta(seconds=10), "act_on": {"accepted", "dismissed"}},
        {"by": ["surface", "model.name"], "surfaces": ["search"], "models": ["ranker"]},
    ],
    ids=["version", "version+variant", "attribute", "since-until", "window", "filters"],
)
def test_duckdb_and_clickhouse_give_the_same_report(
    both: tuple[Path, str], options: dict[str, Any]
) -> None:
    path, source = both
    local, remote = build_report(path, **options), build_report(source, **options)
    assert remote.source["engine"] == "clickhouse"
    assert local.source["engine"] == "duckdb"
    _assert_same(_comparable(local), _comparable(remote))
    assert local.orphan_signals == remote.orphan_signals == 1


def test_the_hand_computed_numbers_hold_on_clickhouse(both: tuple[Path, str]) -> None:
    _, source = both
    report = build_report(source)
    v1, v2 = report.group("v1"), report.group("v2")
    assert v1.exposures == 5
    assert v1.metrics["act_on_rate"].count == 2
    assert v1.metrics["time_to_action_p50_ms"].value == pytest.approx(16_000)
    assert v2.metrics["time_to_action_p90_ms"].value == pytest.approx(5_600)
    assert report.source["events"] == len(_events_in(both[0])) - 1  # less the duplicate line
    assert report.source["duplicates"] in (0, 3)  # 3 until ClickHouse merges the parts


def _events_in(path: Path) -> list[str]:
    ids = []
    for line in path.read_bytes().splitlines():
        try:
            ids.append(json.loads(line)["id"])
        except (ValueError, KeyError):
            continue
    return ids


def test_a_client_delivers_to_clickhouse_and_the_table_dedupes(
    clickhouse: ClickHouse,
) -> None:
    db = _fresh_database(clickhouse, "from_client")
    exporter = ClickHouseExporter(clickhouse.http_url, database=db, table="signals")
    client = sk.Client("live", exporters=[exporter], secret=SECRET)
    for i in range(30):
        with client.exposure("feed", model_version="v1" if i % 2 else "v2", at=T0 + i * H) as e:
            pass
        client.action(e, "clicked", at=T0 + i * H + (i + 1) * S)
    assert client.flush(20)
    client.shutdown(10)
    rows = clickhouse.query(f"SELECT count() FROM {db}.signals FINAL").strip()
    assert rows == "60"
    # resend everything: stored twice until a merge, counted once by FINAL and the report
    sent = clickhouse.query(f"SELECT * FROM {db}.signals FORMAT JSONEachRow").splitlines()
    r = httpx.post(
        clickhouse.http_url,
        params={"query": f"INSERT INTO {db}.signals FORMAT JSONEachRow"},
        content="\n".join(sent).encode(),
        timeout=30,
    )
    assert r.status_code == 200, r.text
    report = build_report(clickhouse.source(db) + "?table=signals")
    assert [g.exposures for g in report.groups] == [15, 15]
    assert report.group("v1").metrics["act_on_rate"].count == 15
    # v1: exposures 1, 3, ..., 29 clicked after 2, 4, ..., 30 s -> median 16 s
    assert report.group("v1").metrics["time_to_action_p50_ms"].value == pytest.approx(16_000)


def test_the_exporter_reports_a_server_that_is_down() -> None:
    exporter = ClickHouseExporter(f"http://127.0.0.1:{_free_port()}", timeout_s=2)
    memory = sk.MemoryExporter()
    client = sk.Client("x", exporters=[memory], secret=SECRET)
    with client.exposure("s"):
        pass
    client.shutdown(5)
    result = exporter.export(list(memory.events))
    assert result is not ExportResult.SUCCESS
    assert getattr(result, "retryable", False)


def test_the_exporter_refuses_a_bad_table_name() -> None:
    with pytest.raises(sk.ConfigError, match="not a plain identifier"):
        ClickHouseExporter(table="events; DROP TABLE x")


def test_a_clickhouse_error_reaches_the_cli_as_a_message(
    clickhouse: ClickHouse, capsys: pytest.CaptureFixture[str]
) -> None:
    from signalkit.cli import main

    assert main(["report", clickhouse.source("no_such_database")]) == 1
    err = capsys.readouterr().err
    assert "ClickHouse" in err
    assert "Traceback" not in err


def test_the_report_of_an_empty_window_is_empty(both: tuple[Path, str]) -> None:
    _, source = both
    report = build_report(source, since=T0 + 100 * D)
    assert report.groups == []
    assert build_report(both[0], since=T0 + 100 * D).groups == []


def test_the_command_reads_clickhouse_given_as_source_or_as_the_argument(
    both: tuple[Path, str], tmp_path: Path
) -> None:
    import sys

    path, source = both

    def report(*argv: str) -> dict[str, Any]:
        proc = subprocess.run(
            [sys.executable, "-m", "signalkit.cli", "report", *argv, "--format", "json"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        data: dict[str, Any] = json.loads(proc.stdout)
        return data

    remote = report("--source", source, "--by", "model.version", "--by", "model.variant")
    assert remote["source"]["engine"] == "clickhouse"
    assert remote == report(source, "--by", "model.version", "--by", "model.variant") | {
        "generated_at": remote["generated_at"]
    }
    local = report(str(path), "--by", "model.version", "--by", "model.variant")
    assert [g["label"] for g in remote["groups"]] == ["v1 / a", "v1 / b", "v2 / a"]
    _assert_same(remote["groups"], local["groups"])

    from signalkit.cli import main

    assert main(["report", str(path), "--source", source]) == 2  # two different sources
