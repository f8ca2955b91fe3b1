"""Shared fixtures: real clients with in-memory or JSONL exporters, and small real exporters.

Nothing here patches signalkit: every fake is an exporter class that implements the public
``export(batch) -> ExportResult`` / ``shutdown()`` protocol.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest

import signalkit as sk
from signalkit import ExportResult

SECRET = "s" * 32
"""A real token secret, long enough to be accepted."""


class BlockingExporter:
    """Holds every export until the test sets :attr:`release`; remembers what it got."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.events: list[sk.Event] = []
        self._lock = threading.Lock()

    def export(self, batch: Sequence[sk.Event]) -> ExportResult:
        self.entered.set()
        self.release.wait(timeout=30)  # a safety net: a test always releases it
        with self._lock:
            self.events.extend(batch)
        return ExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


class RaisingExporter:
    """A sink with a bug: every export raises. Retried three times, quickly, then given up."""

    retry_policy = sk.RetryPolicy(base_s=0.01, cap_s=0.02, max_attempts=3)

    def __init__(self) -> None:
        self.calls = 0

    def export(self, batch: Sequence[sk.Event]) -> ExportResult:
        self.calls += 1
        raise RuntimeError("sink is broken")

    def shutdown(self) -> None:
        pass


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests never read the developer's signalkit settings nor write into the repository."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SIGNALKIT_SECRET", raising=False)
        mp.delenv("SIGNALKIT_SERVICE", raising=False)
        mp.setenv("SIGNALKIT_DIR", str(tmp_path_factory.mktemp("signalkit-dir")))
        yield


@pytest.fixture
def memory() -> sk.MemoryExporter:
    return sk.MemoryExporter()


@pytest.fixture
def client(memory: sk.MemoryExporter) -> Iterator[sk.Client]:
    """A non-strict client delivering to ``memory``, with a real secret."""
    c = sk.Client("test-service", exporters=[memory], secret=SECRET)
    yield c
    c.shutdown(timeout=2)


@pytest.fixture
def strict_client(memory: sk.MemoryExporter) -> Iterator[sk.Client]:
    """A strict client: bad input raises a typed error naming the field."""
    c = sk.Client("test-service", exporters=[memory], secret=SECRET, strict=True)
    yield c
    c.shutdown(timeout=2)


@pytest.fixture
def exposure(client: sk.Client) -> sk.Exposure:
    """An exposure recorded by ``client`` (a reply draft by a named model)."""
    with client.exposure(
        "reply-draft", model="drafter", model_version="v1", user_id="user-1"
    ) as exp:
        pass
    assert exp.event is not None
    return exp


@pytest.fixture
def blocking_exporter() -> Iterator[BlockingExporter]:
    exporter = BlockingExporter()
    yield exporter
    exporter.release.set()


@pytest.fixture
def raising_exporter() -> RaisingExporter:
    return RaisingExporter()
