"""LangfuseClientExporter: hands scores to a Langfuse client the application already configured.

The Langfuse SDK is imported here, when the exporter is built, and nowhere else: the package
and :class:`LangfuseExporter` work without it.
"""

from __future__ import annotations

import importlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from signalkit import ConfigError, ExportFailure, ExportResult
from signalkit.events import Event, ExposureEvent
from signalkit.exporters.vendor import cut_texts_to_fit, json_size, utc

from ._http import MAX_EVENT_BYTES, REMEMBERED
from ._score import (
    DEFAULT_SCORE_PREFIX,
    Target,
    check_environment,
    check_score_prefix,
    exposure_target,
    langfuse_scores,
    score_target,
)

__all__ = ["INSTALL_HINT", "LangfuseClientExporter", "SdkNotInstalled"]

INSTALL_HINT = "pip install 'signalkit-langfuse[sdk]'"

_MESSAGE_CHARS = 300


class SdkNotInstalled(ConfigError):
    """The Langfuse SDK is not installed: ``pip install 'signalkit-langfuse[sdk]'``, or use
    :class:`LangfuseExporter`, which needs no SDK. Like sentry_sdk's ``DidNotEnable``, catch it
    to run without this exporter rather than without the application."""


class LangfuseClientExporter:
    """Sends each signal's scores through a Langfuse client's own ``create_score()`` (SDK v3+).

    For an application that already has a configured ``langfuse.Langfuse`` client (or uses
    ``langfuse.get_client()``: pass ``client=None``): the scores get the same ids, trace and
    observation, names, values, data types, comments, metadata and time as with
    :class:`LangfuseExporter`, and the SDK batches and sends them with its own settings
    (including its ``sample_rate``, which drops scores of sampled-out traces).

    Delivery is handed over to the SDK: an event counts as delivered once ``create_score()``
    took its scores (the SDK logs, and does not raise, what it fails to send later). An
    exception from ``create_score()`` drops the event, counted ``rejected``. The client is
    yours: :meth:`shutdown` leaves it alone; flush or shut it down as you already do.
    """

    def __init__(
        self,
        client: Any = None,
        *,
        environment: str | None = None,
        score_prefix: str = DEFAULT_SCORE_PREFIX,
        use_otel_ids: bool = True,
        name: str = "langfuse",
    ) -> None:
        sdk = _import_sdk()
        target = sdk.get_client() if client is None else client
        create_score = getattr(target, "create_score", None)
        if not callable(create_score):
            raise ConfigError(
                "LangfuseClientExporter.client: must be a langfuse.Langfuse client (SDK v3 or "
                f"later, with create_score), or None for langfuse.get_client(); got "
                f"{type(client).__name__}"
            )
        if not isinstance(name, str) or not name.strip():
            raise ConfigError("LangfuseClientExporter.name: must be a non-empty str")
        if not isinstance(use_otel_ids, bool):
            raise ConfigError("LangfuseClientExporter.use_otel_ids: must be True or False")
        self.client: Any = target
        """The client scores are handed to."""
        self.environment = check_environment("LangfuseClientExporter", environment)
        """Passed as every score's ``environment`` (None: the client's own)."""
        self.score_prefix = check_score_prefix("LangfuseClientExporter", score_prefix)
        self.use_otel_ids = use_otel_ids
        self.name = name
        self._create_score: Callable[..., Any] = create_score
        self._targets: OrderedDict[str, Target] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LangfuseClientExporter({type(self.client).__name__}, name={self.name!r})"

    def export(self, batch: Sequence[Event]) -> ExportResult | ExportFailure:
        """``create_score()`` each score of each signal; never raises. An event whose scores
        the client refused is dropped only when it is the batch's single event: a longer
        batch is split (nothing of it was refused twice, and scores already handed over are
        overwritten, not counted twice, by their stable ids)."""
        for event in batch:
            if isinstance(event, ExposureEvent):
                found = exposure_target(event)
                if found is not None:
                    with self._lock:
                        self._targets[event.exposure_id] = found
                        if len(self._targets) > REMEMBERED:
                            self._targets.popitem(last=False)
        for event in batch:
            try:
                self._send(event)
            except Exception as exc:
                message = f"langfuse create_score() raised {exc!r}"[:_MESSAGE_CHARS]
                return ExportFailure(retryable=False, too_large=len(batch) > 1, message=message)
        return ExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release: the client belongs to the application."""

    def _send(self, event: Event) -> None:
        with self._lock:
            target = score_target(event, self._targets, use_otel_ids=self.use_otel_ids)
        scores = langfuse_scores(
            event, target=target, score_prefix=self.score_prefix, environment=self.environment
        )
        for score in scores:
            metadata: dict[str, Any] = score["metadata"]
            cut_texts_to_fit(score, metadata, MAX_EVENT_BYTES, json_size)
            self._create_score(
                name=score["name"],
                value=score["value"],
                trace_id=score["traceId"],
                observation_id=score.get("observationId"),
                score_id=score["id"],
                data_type=score["dataType"],
                comment=score.get("comment"),
                metadata=metadata,
                timestamp=utc(event.ts),
                environment=score.get("environment"),
            )


def _import_sdk() -> Any:
    try:
        return importlib.import_module("langfuse")
    except ImportError as exc:
        raise SdkNotInstalled(
            "LangfuseClientExporter: the Langfuse SDK is not installed; "
            f"{INSTALL_HINT}, or use LangfuseExporter(public_key, secret_key), which needs no SDK"
        ) from exc
