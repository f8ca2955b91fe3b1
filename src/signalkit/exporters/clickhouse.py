"""Writes events into a ClickHouse table over its HTTP interface, for reports at scale.

One flat row per event (the columns of :data:`signalkit.analytics.COLUMNS`), in a
``ReplacingMergeTree`` ordered by event ``id``: a batch delivered twice (at-least-once
delivery, a retry after a timeout) is stored twice until ClickHouse merges, and
``SELECT ... FINAL`` — what ``signalkit report --source clickhouse://`` reads — counts it once.
Timestamps are Int64 milliseconds, so the table works on ClickHouse 18.16 (Debian's package,
no ``DateTime64``) as on current releases. See ``docs/clickhouse.md``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import orjson

from .._errors import ConfigError
from ..events import Event
from .base import ExportFailure, ExportResult, RetryPolicy
from .http import HttpExporter

if TYPE_CHECKING:
    import httpx

__all__ = ["ClickHouseExporter", "clickhouse_row", "create_table_sql"]

_DEFAULT_POLICY = RetryPolicy()


def create_table_sql(database: str, table: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for the events table (ReplacingMergeTree by ``id``)."""
    from ..analytics._columns import COLUMNS

    cols = ",\n    ".join(f"{c.name} {c.clickhouse}" for c in COLUMNS)
    return (
        f"CREATE TABLE IF NOT EXISTS {database}.{table} (\n    {cols}\n)\n"
        "ENGINE = ReplacingMergeTree()\n"
        "PARTITION BY toYYYYMM(toDateTime(intDiv(ts_ms, 1000)))\n"
        "ORDER BY id"
    )


def clickhouse_row(event: Event) -> dict[str, Any]:
    """The table row of one event: flat columns, ``ts`` as Int64 ms, booleans as 0/1."""
    from ..analytics._columns import COLUMNS

    data = event.model_dump(mode="python")
    row: dict[str, Any] = {}
    for col in COLUMNS:
        if col.name == "ts_ms":
            ts = event.ts if event.ts.tzinfo else event.ts.replace(tzinfo=UTC)
            row["ts_ms"] = int(ts.timestamp() * 1000)
            continue
        value: Any = data
        for part in col.path:
            if isinstance(value, dict):
                value = value.get(part)
            elif isinstance(value, list | tuple) and part.isdigit():
                value = value[int(part)] if int(part) < len(value) else None
            else:
                value = None
        if col.name in ("attributes", "items"):
            if col.name == "items" and event.kind != "exposure":
                value = None
            else:
                value = orjson.dumps(value if value is not None else {}).decode()
        elif isinstance(value, bool):
            value = int(value)
        row[col.name] = value
    return row


class ClickHouseExporter(HttpExporter):
    """Inserts batches into ``database.table`` with ``INSERT ... FORMAT JSONEachRow``.

    ``url`` is ClickHouse's HTTP interface (``http://127.0.0.1:8123``). The table is created
    on the first export when missing (``create_table=False`` to manage it yourself; the DDL is
    :func:`create_table_sql`). ``user``/``password`` travel in ClickHouse's
    ``X-ClickHouse-User``/``X-ClickHouse-Key`` headers and never appear in messages. Retries,
    gzip, limits and byte-identical resends are :class:`HttpExporter`'s.
    """

    content_type = "application/x-ndjson"

    def __init__(
        self,
        url: str = "http://127.0.0.1:8123",
        *,
        database: str = "default",
        table: str = "signalkit_events",
        user: str | None = None,
        password: str | None = None,
        create_table: bool = True,
        timeout_s: float = 10.0,
        max_batch_events: int = 10_000,
        retry_policy: RetryPolicy = _DEFAULT_POLICY,
        name: str = "clickhouse",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        from ..analytics._clickhouse import quote_identifier

        try:
            self.database = quote_identifier(database, "ClickHouseExporter.database")
            self.table = quote_identifier(table, "ClickHouseExporter.table")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.query:
            raise ConfigError(
                f"ClickHouseExporter.url: give the HTTP interface as http(s)://host:port, "
                f"got {url!r}"
            )
        self.base_url = url.rstrip("/") + "/"
        headers = {}
        if user is not None:
            headers["X-ClickHouse-User"] = user
        if password is not None:
            headers["X-ClickHouse-Key"] = password
        insert = f"INSERT INTO {self.database}.{self.table} FORMAT JSONEachRow"
        super().__init__(
            f"{self.base_url}?query={quote(insert)}",
            headers=headers,
            timeout_s=timeout_s,
            max_batch_events=max_batch_events,
            max_batch_bytes=64 * 1024 * 1024,
            max_event_bytes=8 * 1024 * 1024,
            retry_policy=retry_policy,
            name=name,
            transport=transport,
        )
        self._auth_headers = headers
        self._table_ready = not create_table
        self._table_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ClickHouseExporter({self.base_url!r}, table={self.database}.{self.table})"

    def create_table(self) -> None:
        """Create the events table if it does not exist; raises ``RuntimeError`` on failure."""
        import httpx

        with httpx.Client(transport=self._transport, timeout=self.timeout_s) as client:
            response = client.post(
                self.base_url,
                content=create_table_sql(self.database, self.table).encode(),
                headers=self._auth_headers,
            )
        if response.status_code != 200:
            first = (response.text.strip().splitlines() or [""])[0][:300]
            raise RuntimeError(f"ClickHouse answered {response.status_code}: {first}")

    def export(self, batch: Sequence[Event]) -> ExportResult | ExportFailure:
        """Create the table on first use, then insert ``batch``; never raises."""
        if not self._table_ready and batch:
            with self._table_lock:
                if not self._table_ready:
                    try:
                        self.create_table()
                    except Exception as exc:
                        return ExportFailure(
                            retryable=True,
                            message=self._redact(f"cannot create the table: {exc}"),
                        )
                    self._table_ready = True
        return super().export(batch)

    def encode(self, batch: Sequence[Event], sent_at: str) -> bytes:
        """One JSON object per line, one line per event (``FORMAT JSONEachRow``)."""
        return b"\n".join(orjson.dumps(clickhouse_row(e)) for e in batch) + b"\n"
