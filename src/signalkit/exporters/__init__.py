"""Exporters: where batches of events go. All share :class:`Exporter`'s small protocol."""

from .base import Exporter, ExportResult
from .console import ConsoleExporter
from .jsonl import JsonlExporter
from .memory import MemoryExporter

__all__ = ["ConsoleExporter", "ExportResult", "Exporter", "JsonlExporter", "MemoryExporter"]
