"""How fast could the hot path be? ``action(token)`` and the decorator, restructured (a sketch).

Run from the repository root:

    uv run python benchmarks/lean_sketch.py

Each sketch does the same caller-side work as signalkit (same event content, same checks for
the arguments it takes, the subject context variable, the OpenTelemetry probe, one queue
append under a lock), but in one function instead of a stack of small ones: no per-call
closure, one lock instead of two, the score looked up directly, the token's ``_Ref`` cached.
They are A/B'd against the real calls in alternating rounds (this VM's speed drifts).

* ``lean action``: what ``client.action(token, "accepted")`` costs with that structure.
* ``lean decorator``: the decorator with the model reference and exposure score made once at
  decoration time, the exposure event still built on the caller's thread.
* ``deferred decorator``: the same, but the caller only queues the finished handle and the
  worker would build the ``ExposureEvent`` (what a < 5 µs decorator on this machine needs).

The sketches read signalkit's private names; they are an experiment to size the opportunity,
not a test, and may need touching up when those internals change.
"""

from __future__ import annotations

import bisect
import statistics
import sys
import threading
import time
import timeit
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import signalkit
from signalkit import _ids, scoring
from signalkit._client import _EMPTY_SUBJECT, _Ref
from signalkit._context import _exposure, _subject
from signalkit._instrument import Exposure
from signalkit.events import SCHEMA_VERSION, ActionEvent, ExposureEvent

ROTATE = 1000
_setattr = object.__setattr__


def _fast_new(cls: Any, values: dict[str, Any], fields: set[str]) -> Any:
    obj = cls.__new__(cls)
    _setattr(obj, "__dict__", values)
    _setattr(obj, "__pydantic_fields_set__", fields)
    _setattr(obj, "__pydantic_extra__", None)
    _setattr(obj, "__pydantic_private__", None)
    return obj


def ab(
    variants: dict[str, Callable[[], Any]], between: Callable[[], None], rounds: int = 12
) -> dict[str, list[float]]:
    res: dict[str, list[float]] = {k: [] for k in variants}
    items = list(variants.items())
    for r in range(rounds):
        for name, fn in items if r % 2 == 0 else items[::-1]:
            res[name].append(timeit.timeit(fn, number=10_000) / 10_000 * 1e6)
            between()
    return res


def main() -> int:
    mem = signalkit.MemoryExporter()
    client = signalkit.Client(
        "bench", exporters=[mem], secret="x" * 32, max_queue=10_000_000, max_queue_bytes=1 << 40
    )
    exposures = []
    for i in range(ROTATE):
        with client.exposure(
            "reply-draft", model="gpt-x", model_version="2026-11-01", user_id=f"user-{i}"
        ) as exp:
            pass
        exposures.append(exp)
    tokens = [e.token for e in exposures]
    policy = client.policy
    q: deque[Any] = deque()
    lock = threading.Lock()
    seq = [0]
    nbytes = [0]
    modules = sys.modules
    time_ns, perf, fromts = time.time_ns, time.perf_counter, datetime.fromtimestamp
    new_id = _ids.new_id
    service, producer = client.service, client.producer_id
    max_age = client._signer.max_age_ms

    # -- lean action(token) ----------------------------------------------------------------
    refs: dict[str, _Ref] = {}
    for t in tokens:
        c = client._signer.verify(t)
        known = client._recent.get(c.exposure_id)
        refs[t] = _Ref(
            c.exposure_id, c.shown_at_ms, c.model, getattr(known, "subject", None), None, None
        )
    bounds = tuple(b.below_ms for b in policy.latency_bands if b.below_ms is not None)
    scores: dict[tuple[str, int], Any] = {}
    action_fields = set(ActionEvent.model_fields)

    def lean_action(token: str, action: str) -> Any:
        if type(action) is not str or not 0 < len(action) <= 200:
            raise ValueError("action")
        if client._pipeline.closed:
            raise RuntimeError("closed")
        ts_ns = time_ns()
        ts_ms = ts_ns // 1_000_000
        ref = refs.get(token)
        if ref is None:
            raise NotImplementedError("slow path: verify the token, then cache its _Ref")
        age = ts_ms - (ref.shown_at_ms or 0)
        if age > max_age:
            raise ValueError("expired")
        ttl = float(age if age > 0 else 0)
        key = (action, bisect.bisect_right(bounds, ttl))
        score = scores.get(key)
        if score is None:
            score = scores[key] = scoring.score_action(action, ttl, policy)
        if modules.get("opentelemetry.trace") is not None:
            raise NotImplementedError("slow path: trace ids")
        v = {
            "schema_version": SCHEMA_VERSION,
            "id": new_id(),
            "ts": fromts(ts_ns / 1e9, UTC),
            "service": service,
            "exposure_id": ref.exposure_id,
            "producer_id": producer,
            "seq": 0,
            "subject": _subject.get() or ref.subject or _EMPTY_SUBJECT,
            "model": ref.model,
            "trace_id": None,
            "span_id": None,
            "attributes": {},
            "score": score,
            "time_to_action_ms": ttl,
            "kind": "action",
            "action": action,
            "item_id": None,
        }
        ev = _fast_new(ActionEvent, v, action_fields)
        with lock:
            if len(q) >= 10_000_000 or nbytes[0] + 600 > 1 << 40:
                raise RuntimeError("full")
            seq[0] += 1
            v["seq"] = seq[0]
            q.append((ev, 600))
            nbytes[0] += 600
        return ev

    real_ev = client.action(tokens[0], "accepted")
    lean_ev = lean_action(tokens[0], "accepted")
    skip = {"id", "ts", "seq", "producer_id", "time_to_action_ms"}
    assert real_ev is not None
    assert real_ev.model_dump(exclude=skip) == lean_ev.model_dump(exclude=skip)

    # -- decorators ------------------------------------------------------------------------
    ref = client._model_ref("gpt-x", "2026-11-01", None)  # once, at decoration time
    exposure_score = scoring.score_exposure(policy)  # constant per policy
    recent: OrderedDict[str, Any] = OrderedDict()
    exposure_fields = set(ExposureEvent.model_fields)

    def open_handle() -> Exposure:
        exp = Exposure.__new__(Exposure)
        exp._client = client
        exp._started = perf()
        exp._latency_ms = None
        exp.id = new_id()
        exp.surface = "reply-draft"
        exp.model = ref
        exp.subject = _subject.get() or _EMPTY_SUBJECT
        exp.attributes = None
        exp.items = ()
        exp._shown_at_ms = None
        exp._token = None
        exp.event = None
        exp.valid = True
        if modules.get("opentelemetry.trace") is not None:
            raise NotImplementedError("slow path: trace ids")
        exp.trace_id = exp.span_id = None
        exp._context_token = _exposure.set(exp)
        return exp

    def remember(exp: Exposure) -> None:
        recent[exp.id] = exp
        if len(recent) > 16_384:
            recent.popitem(last=False)

    def lean_decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            exp = open_handle()
            result = fn(*args, **kwargs)
            shown = exp._shown_at_ms = time_ns() // 1_000_000
            v = {
                "schema_version": SCHEMA_VERSION,
                "id": exp.id,
                "ts": fromts(shown / 1000, UTC),
                "service": service,
                "exposure_id": exp.id,
                "producer_id": producer,
                "seq": 0,
                "subject": exp.subject,
                "model": ref,
                "trace_id": None,
                "span_id": None,
                "attributes": {},
                "score": exposure_score,
                "kind": "exposure",
                "surface": "reply-draft",
                "items": (),
                "latency_ms": (perf() - exp._started) * 1000,
            }
            ev = _fast_new(ExposureEvent, v, exposure_fields)
            remember(exp)
            with lock:
                seq[0] += 1
                v["seq"] = seq[0]
                q.append((ev, 600))
            exp.event = ev
            return result

        return wrapper

    def deferred_decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            exp = open_handle()
            result = fn(*args, **kwargs)
            exp._shown_at_ms = time_ns() // 1_000_000
            exp._latency_ms = (perf() - exp._started) * 1000
            remember(exp)
            with lock:
                seq[0] += 1
                q.append((exp, seq[0]))  # the worker would build the ExposureEvent
            return result

        return wrapper

    def recommend(x: int) -> int:
        return x

    real_deco = client.recommendation("reply-draft", model="gpt-x", model_version="2026-11-01")(
        recommend
    )
    lean_deco, deferred_deco = lean_decorator(recommend), deferred_decorator(recommend)
    for _ in range(20_000):  # fill the recent-exposure maps to their steady state
        real_deco(1)
        lean_deco(1)
        deferred_deco(1)

    def between() -> None:
        client.flush(timeout=60)
        mem.clear()
        q.clear()

    between()
    i = [0]

    def real() -> None:
        client.action(tokens[i[0] % ROTATE], "accepted")
        i[0] += 1

    def lean() -> None:
        lean_action(tokens[i[0] % ROTATE], "accepted")
        i[0] += 1

    res = ab(
        {
            "client.action(token)": real,
            "lean action": lean,
            "bare function": lambda: recommend(1),
            "@client.recommendation": lambda: real_deco(1),
            "lean decorator": lambda: lean_deco(1),
            "deferred decorator": lambda: deferred_deco(1),
        },
        between,
    )
    bare = statistics.median(res.pop("bare function"))
    print(
        f"µs per call, medians (min) over {len(next(iter(res.values())))} alternating rounds "
        f"of 10,000 calls; decorator rows minus a bare call ({bare:.2f} µs):"
    )
    for name, values in res.items():
        sub = bare if "decorator" in name or "recommendation" in name else 0.0
        print(f"  {name:<24} {statistics.median(values) - sub:7.2f}  ({min(values) - sub:.2f})")
    try:
        st = client.stats
        print(
            f"signalkit stats: recorded {st.recorded}, rejected {st.rejected}, dropped {st.dropped}"
        )
    except Exception as exc:  # the sketch does not depend on it
        print(f"signalkit stats unavailable: {exc!r}")
    client.shutdown(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
