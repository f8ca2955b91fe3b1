"""A real process using a spool, for tests/test_spool.py (kill -9, two processes, a full disk).

Usage: ``python tests/spool_writer.py MODE DIRECTORY [ARGS...]``

- ``loop DIR FSYNC SIZE BATCH``: append batches of numbered records forever; after each
  ``append`` that returned ``ok``, print its last seq on its own line (flushed). The test
  kills it with SIGKILL and checks that every printed seq survived.
- ``exit DIR COUNT BATCH``: append COUNT records, then leave with ``os._exit`` — no ``close``,
  so the WAL is left behind as after a crash.
- ``hold DIR``: open the spool, print ``ready``, hold it until stdin closes.
- ``disk-full DIR``: DIR is a small filesystem holding a file ``filler``; append until the
  disk is full, delete ``filler``, append again; print a JSON report.
- ``file-size-limit DIR``: the same with a file size limit (RLIMIT_FSIZE) instead of a full disk.

Only ``signalkit._spool`` (and the two stdlib-only modules it imports) is loaded, not the whole
package, so that a process starts in ~50 ms and the kill tests stay fast.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import resource
import signal
import sys
import types
from typing import Any


def record(seq: int, size: int = 256) -> bytes:
    """The content of record ``seq``: its number, then bytes derived from it (checkable)."""
    head = b"%012d:" % seq
    body = hashlib.sha256(head).digest()
    body = body * (size // len(body) + 1)
    return (head + body)[:size] if size > len(head) else head


def _spool_module() -> Any:
    spec = importlib.util.find_spec("signalkit")  # finds the package without running it
    assert spec is not None
    assert spec.submodule_search_locations is not None
    package = types.ModuleType("signalkit")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["signalkit"] = package
    return importlib.import_module("signalkit._spool")


def _loop(directory: str, fsync: str, size: int, batch: int) -> None:
    spool = _spool_module().Spool(directory, fsync=fsync)
    seq = spool.last_seq
    while True:
        result = spool.append([record(seq + i + 1, size) for i in range(batch)])
        if not result.ok:
            print(f"refused {result.reason}", flush=True)
            continue
        seq = result.last_seq
        print(seq, flush=True)


def _exit(directory: str, count: int, batch: int) -> None:
    spool = _spool_module().Spool(directory, fsync="never")
    for start in range(0, count, batch):
        n = min(batch, count - start)
        assert spool.append([record(start + i + 1) for i in range(n)]).ok
    print(spool.last_seq, flush=True)
    os._exit(0)


def _hold(directory: str) -> None:
    spool = _spool_module().Spool(directory)
    print("ready", flush=True)
    sys.stdin.read()
    spool.close()


def _fill_until_refused(spool: Any, report: dict[str, Any]) -> int:
    """Append 4 KiB records until one batch is refused; returns the last stored seq."""
    for _ in range(100_000):
        result = spool.append([record(spool.last_seq + i + 1, 4096) for i in range(8)])
        if not result.ok:
            report["refused"] = {"reason": result.reason, "refused": result.refused}
            return int(result.last_seq)
    raise AssertionError("the disk never filled up")


def _check_back(spool: Any, report: dict[str, Any]) -> None:
    spool.add_cursor("check", start="head")
    rows = spool.read("check", 1_000_000)
    report["read"] = len(rows)
    report["intact"] = all(data == record(seq, 4096) for seq, data in rows)
    report["seqs_contiguous"] = [seq for seq, _ in rows] == list(range(1, len(rows) + 1))


def _disk_full(directory: str) -> None:
    module = _spool_module()
    report: dict[str, Any] = {}
    spool = module.Spool(os.path.join(directory, "spool"), fsync="always")
    report["stored_before_full"] = _fill_until_refused(spool, report)
    report["errors"] = spool.stats()["errors"]
    os.unlink(os.path.join(directory, "filler"))  # space comes back
    after = spool.append([record(spool.last_seq + i + 1, 4096) for i in range(8)])
    report["after"] = {"ok": after.ok, "last_seq": after.last_seq}
    _check_back(spool, report)
    spool.close()
    print(json.dumps(report), flush=True)


def _file_size_limit(directory: str) -> None:
    module = _spool_module()
    report: dict[str, Any] = {}
    spool = module.Spool(directory, fsync="always")
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (512 * 1024, hard))
    report["stored_before_full"] = _fill_until_refused(spool, report)
    report["errors"] = spool.stats()["errors"]
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    after = spool.append([record(spool.last_seq + i + 1, 4096) for i in range(8)])
    report["after"] = {"ok": after.ok, "last_seq": after.last_seq}
    _check_back(spool, report)
    spool.close()
    print(json.dumps(report), flush=True)


def main(argv: list[str]) -> None:
    mode, directory, *rest = argv
    if mode == "loop":
        _loop(directory, rest[0], int(rest[1]), int(rest[2]))
    elif mode == "exit":
        _exit(directory, int(rest[0]), int(rest[1]))
    elif mode == "hold":
        _hold(directory)
    elif mode == "disk-full":
        _disk_full(directory)
    elif mode == "file-size-limit":
        _file_size_limit(directory)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
