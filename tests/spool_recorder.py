"""Run as a subprocess by tests/test_spool_delivery.py: records events as fast as it can into a
client with a spool, printing ``<index> <id> <CLOCK_MONOTONIC>`` once each call returned."""

from __future__ import annotations

import sys
import time

import signalkit as sk


def main() -> None:
    spool_dir, url, fsync = sys.argv[1], sys.argv[2], sys.argv[3]
    exporter = sk.HttpExporter(url, timeout_s=0.5)
    client = sk.Client(
        "recorder",
        exporters=[exporter],
        secret="s" * 32,
        spool=spool_dir,
        spool_fsync=fsync,  # type: ignore[arg-type]
        flush_interval_s=0.05,
    )
    with client.exposure("s") as exp:
        pass
    print(f"0 {exp.id} {time.monotonic()}", flush=True)
    i = 1
    while True:
        event = client.action(exp, "clicked", attributes={"i": i})
        assert event is not None
        print(f"{i} {event.id} {time.monotonic()}", flush=True)
        i += 1
        time.sleep(0.001)


if __name__ == "__main__":
    main()
