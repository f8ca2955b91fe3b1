"""Where signalkit's caller-thread time goes: ``action`` and the ``recommendation`` decorator.

Run from the repository root:

    uv run python benchmarks/profile_hot_path.py             # cProfile + component timings
    uv run --with pyinstrument python benchmarks/profile_hot_path.py --pyinstrument

Three views, because each one alone misleads for calls this short:

1. cProfile of N calls (``--n``, default 50000) sorted by own time (``tottime``). cProfile adds
   a fixed cost to every Python-level call, so it over-weights code that makes many tiny calls.
2. Component timings: each step the call makes, timed alone with ``timeit`` (best of 5) through
   signalkit's private helpers. Their sum next to the full call shows what is left over (call
   overhead, try/except, the f-strings and dict building of the methods themselves). Private
   names change; a step whose helper is missing is reported as skipped.
3. Optionally pyinstrument (a sampling profiler: low overhead, coarse) over the same calls.

This reads signalkit's internals for diagnosis only; the benchmark itself is hot_path.py.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import signalkit
from signalkit import _ids

ROTATE = 1000


def make_client() -> tuple[Any, Any, list[Any], list[str]]:
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
    return client, mem, exposures, [e.token for e in exposures]


def workloads(
    client: Any, exposures: list[Any], tokens: list[str]
) -> dict[str, Callable[[int], None]]:
    action = client.action

    def action_token(n: int) -> None:
        for i in range(n):
            action(tokens[i % ROTATE], "accepted")

    def action_exposure(n: int) -> None:
        for i in range(n):
            action(exposures[i % ROTATE], "accepted")

    @client.recommendation("reply-draft", model="gpt-x", model_version="2026-11-01")
    def recommend(x: int) -> int:
        return x

    def decorated(n: int) -> None:
        for i in range(n):
            recommend(i)

    return {
        "action(token, cached)": action_token,
        "action(Exposure)": action_exposure,
        "@recommendation call": decorated,
    }


def run_cprofile(name: str, work: Callable[[int], None], n: int, top: int, flush: Any) -> None:
    work(2000)
    flush()
    prof = cProfile.Profile()
    prof.enable()
    work(n)
    prof.disable()
    flush()
    out = io.StringIO()
    st = pstats.Stats(prof, stream=out)
    st.strip_dirs().sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    # Keep the table only.
    start = text.find("   ncalls")
    print(f"\n=== cProfile: {name}, {n} calls, by own time (tottime) ===")
    print(text[start:].rstrip())


def best_us(fn: Callable[[], Any], number: int = 20_000) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def components(client: Any, exposures: list[Any], tokens: list[str], flush: Any) -> None:
    from signalkit import _client as C
    from signalkit import scoring
    from signalkit.events import ActionEvent

    tok, exp = tokens[0], exposures[0]
    now_ms = datetime.now(UTC).timestamp() * 1000
    now_ms = int(now_ms)
    steps: list[tuple[str, Callable[[], Any] | None]] = []

    def add(label: str, make: Callable[[], Callable[[], Any]]) -> None:
        try:
            fn = make()
            fn()
        except Exception as exc:  # a private helper renamed or changed: skip it
            print(f"  (skipped {label}: {exc!r})")
            fn = None
        steps.append((label, fn))

    ts_ns = 1_700_000_000_000_000_000
    add("whole call: client.action(token)", lambda: lambda: client.action(tok, "accepted"))
    add("whole call: client.action(Exposure)", lambda: lambda: client.action(exp, "accepted"))
    add(
        "  _check_name (the slow check, for non-ASCII names)",
        lambda: lambda: C._check_name("action", "accepted"),
    )
    add("  _common(token, ...)", lambda: lambda: client._common(ActionEvent, tok, None, None, None))
    add(
        "  _common(Exposure, ...)",
        lambda: lambda: client._common(ActionEvent, exp, None, None, None),
    )
    add("    time.time_ns()", lambda: __import__("time").time_ns)
    add("    _ids.stamp() [ms, id, ts]", lambda: _ids.stamp)
    add(
        "    _resolve(token)  [a token the signer verified before]",
        lambda: lambda: client._resolve(tok, now_ms),
    )
    add(
        "      _signer.verify(token) [cache hit]",
        lambda: lambda: client._signer.verify(tok, now_ms),
    )
    add("    _resolve(Exposure)", lambda: lambda: client._resolve(exp, now_ms))
    add("    _check_attributes(None)", lambda: lambda: C._check_attributes(None))
    add(
        "    _subject(..., fallback)",
        lambda: lambda: client._subject(None, None, None, None, exp.subject),
    )
    add("    _trace_ids()", lambda: client._trace_ids)
    add(
        "    datetime.fromtimestamp(ts/1e9, UTC) [once per ms]",
        lambda: lambda: datetime.fromtimestamp(ts_ns / 1e9, UTC),
    )
    v = client._common(ActionEvent, tok, None, None, None)[0]
    v.update(action="accepted", item_id=None, time_to_action_ms=10.0)
    add("  _construct(ActionEvent, values)", lambda: lambda: C._construct(ActionEvent, v))
    add(
        "  score_action (cached)",
        lambda: lambda: scoring.score_action("accepted", 1234.0, client.policy),
    )
    ev = client.action(tok, "accepted")
    assert ev is not None
    assert ev.score is not None
    add(
        "  _emit(values) [build + pipeline.submit]",
        lambda: lambda: client._emit(ActionEvent, dict(v), 700, ev.score),
    )
    add("    pipeline.submit(event)", lambda: lambda: client._pipeline.submit(ev, 700))
    add(
        "  uncached token: _signer._verify_signature(token)",
        lambda: lambda: client._signer._verify_signature(tok),
    )
    add(
        "decorator: client.exposure(...) [Exposure.__init__]",
        lambda: lambda: client.exposure("reply-draft", model="gpt-x", model_version="2026-11-01"),
    )
    add(
        "  _model_ref(name, version, None)",
        lambda: lambda: client._model_ref("gpt-x", "2026-11-01", None),
    )

    def record() -> Callable[[], Any]:
        pool = [client.exposure("reply-draft", model="gpt-x") for _ in range(120_000)]
        it = iter(pool)
        return lambda: client._record_exposure(next(it))

    add("  _record_exposure(exp)", record)
    print("\n=== component timings (µs per call, best of 5 x 20000; queue flushed between) ===")
    for label, fn in steps:
        if fn is None:
            continue
        us = best_us(fn)
        flush()
        print(f"  {label:<55} {us:8.2f}")


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--n", type=int, default=50_000)
    p.add_argument("--top", type=int, default=22)
    p.add_argument("--pyinstrument", action="store_true")
    args = p.parse_args()
    client, mem, exposures, tokens = make_client()

    def flush() -> None:
        client.flush(timeout=60)
        mem.clear()

    work = workloads(client, exposures, tokens)
    for name, fn in work.items():
        run_cprofile(name, fn, args.n, args.top, flush)
    components(client, exposures, tokens, flush)
    if args.pyinstrument:
        from pyinstrument import Profiler

        for name, fn in work.items():
            fn(2000)
            flush()
            prof = Profiler(interval=0.0001)
            prof.start()
            fn(args.n)
            prof.stop()
            flush()
            print(f"\n=== pyinstrument: {name}, {args.n} calls ===")
            print(prof.output_text(unicode=True, color=False, show_all=False))
    try:
        st = client.stats
        print(f"\nstats: recorded {st.recorded}, rejected {st.rejected}, dropped {st.dropped}")
    except Exception as exc:  # not needed for the profile
        print(f"\nstats unavailable: {exc!r}")
    client.shutdown(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
