"""Exporters: where batches of events go. All share :class:`Exporter`'s small protocol."""

from .base import Exporter, ExportFailure, ExportResult, RetryPolicy
from .clickhouse import ClickHouseExporter
from .console import ConsoleExporter
from .http import HttpExporter
from .jsonl import JsonlExporter
from .memory import MemoryExporter
from .otel import OtelExporter

__all__ = [
    "ClickHouseExporter",
    "ConsoleExporter",
    "ExportFailure",
    "ExportResult",
    "Exporter",
    "HttpExporter",
    "JsonlExporter",
    "MemoryExporter",
    "OtelExporter",
    "RetryPolicy",
]
