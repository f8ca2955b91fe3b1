"""A ClickHouse server as a report source: ``clickhouse://[user[:password]@]host[:port]/[db]``.

Queries go over ClickHouse's HTTP interface with httpx; the events table is the one
:class:`signalkit.exporters.ClickHouseExporter` writes (``?table=`` names another).
``clickhouse+https://`` speaks HTTPS. The default port is 8123 (8443 with HTTPS).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

__all__ = ["DEFAULT_TABLE", "ClickHouseSource", "is_clickhouse_url", "quote_identifier"]

DEFAULT_TABLE = "signalkit_events"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_clickhouse_url(source: object) -> bool:
    """Whether ``source`` is a ``clickhouse://`` (or ``clickhouse+https://``) URL."""
    return isinstance(source, str) and source.startswith(("clickhouse://", "clickhouse+http"))


def quote_identifier(name: str, what: str) -> str:
    """``name`` checked as a plain identifier (letters, digits, underscore)."""
    if not _IDENT.match(name):
        raise ValueError(f"{what}: {name!r} is not a plain identifier (letters, digits, _)")
    return name


@dataclass
class ClickHouseSource:
    """Where a ClickHouse events table is, and a way to query it."""

    base_url: str
    database: str = "default"
    table: str = DEFAULT_TABLE
    user: str | None = None
    password: str | None = None
    timeout_s: float = 300.0

    @classmethod
    def from_url(cls, url: str) -> ClickHouseSource:
        """Parse ``clickhouse://user:password@host:port/database?table=name``."""
        parts = urlsplit(url)
        https = parts.scheme == "clickhouse+https"
        if parts.scheme not in ("clickhouse", "clickhouse+http", "clickhouse+https"):
            raise ValueError(f"not a ClickHouse URL: {parts.scheme}://...")
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (8443 if https else 8123)
        hostpart = f"[{host}]" if ":" in host else host
        database = unquote(parts.path.strip("/")) or "default"
        query = parse_qs(parts.query)
        table = query.get("table", [DEFAULT_TABLE])[0]
        return cls(
            base_url=f"{'https' if https else 'http'}://{hostpart}:{port}/",
            database=quote_identifier(database, "ClickHouse database"),
            table=quote_identifier(table, "ClickHouse table"),
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    @property
    def display(self) -> str:
        """The location without credentials."""
        return f"{self.base_url}{self.database}.{self.table}"

    @property
    def events(self) -> str:
        """The table expression the metric SQL reads: deduplicated by event id with FINAL."""
        return f"{self.database}.{self.table} FINAL"

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run ``sql`` and return its rows as dicts (64-bit integers as numbers)."""
        import httpx

        headers = {}
        if self.user is not None:
            headers["X-ClickHouse-User"] = self.user
        if self.password is not None:
            headers["X-ClickHouse-Key"] = self.password
        params = {
            "database": self.database,
            "output_format_json_quote_64bit_integers": "0",
        }
        response = httpx.post(
            self.base_url,
            params=params,
            content=(sql.rstrip().rstrip(";") + "\nFORMAT JSON").encode(),
            headers=headers,
            timeout=self.timeout_s,
        )
        if response.status_code != 200:
            message = response.text.strip().splitlines()[0][:500] if response.text else ""
            raise RuntimeError(
                f"ClickHouse at {self.base_url} answered {response.status_code}: {message}"
            )
        rows: list[dict[str, Any]] = orjson.loads(response.content)["data"]
        return rows
