"""Core benchmark: `HybridCore` alone, bytes in, events out, next to dict-based peers in the same run.

    python bench/bench_core.py [--messages 20000] [--repeat 5] [--seed 7] [--gc on|off] [--quick]
    python bench/bench_core.py --profile 25      # the core alone under cProfile: top 25 by cumtime, tottime

A live core (both links up, every topic confirmed, a BTCUSDT position open) is fed a seeded Venue stream
of linear tickers, orderbook.50 and publicTrade frames for three symbols (bench/core_stream.py), as
unmasked server frames in socket-sized reads; the timed loop is `core.receive(link, read, now)` then
`core.poll()` per read, as an adapter does it. The peers (bench/core_peers.py) read the same bytes through
wsproto and do the equivalent work on dicts. Every figure is process CPU time, best of `--repeat` runs after
one warm-up run that also checks the run was clean (no link down, no protocol problem, every message
became an event). Not a test; docs/performance.md explains the columns and holds the latest figures.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import sys
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from core_peers import DictPeer, PybitPeer, feed, loads_only, no_op
from core_stream import FAMILIES, POSITION, TLS_RECORD, Stream, live_core, make_stream, rest_body

from bybit_hybrid_core import Hangup, LinkDown, ProtocolProblem

_CLOCK = time.process_time  # CPU time of this process: other processes on the machine only stretch wall time
_BAD = (LinkDown, ProtocolProblem)


def _check(stream: Stream, body: bytes) -> Counter[str]:
    """One untimed run that keeps every output: the run must be clean; returns the events by class."""
    core = live_core(body)
    core.poll()
    kinds: Counter[str] = Counter()
    for entry in stream.entries:
        core.receive(entry.link, entry.data, entry.now)
        out = core.poll()
        kinds.update(type(e).__name__ for e in out.events)
        bad = [e for e in out.events if isinstance(e, _BAD)] + [
            a for a in out.actions if isinstance(a, Hangup)
        ]
        if bad:
            raise AssertionError(f"the bench run was not clean at now={entry.now}: {bad[:3]}")
    return kinds


def _time_core(stream: Stream, body: bytes, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        core = live_core(body)  # a fresh core each run: state (books, tickers, seq) starts equal
        core.poll()
        receive, poll, entries = core.receive, core.poll, stream.entries
        gc.collect()
        start = _CLOCK()
        for entry in entries:
            receive(entry.link, entry.data, entry.now)
            poll()
        best = min(best, _CLOCK() - start)
    return best


def _time_peer(stream: Stream, make: Callable[[], Callable[[str], None]], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat + 1):  # the first run warms up
        run = feed(make())
        gc.collect()
        start = _CLOCK()
        run(stream.entries)
        best = min(best, _CLOCK() - start)
    return best


def _peers(avg: Decimal) -> dict[str, Callable[[], Callable[[str], None]]]:
    _, symbol, side, size = POSITION
    return {
        "dicts": lambda: DictPeer(symbol, side, Decimal(size), avg),
        "pybit": lambda: PybitPeer(symbol, side, Decimal(size), avg),
        "loads": lambda: loads_only,
        "framing": lambda: no_op,
    }


def _measure(stream: Stream, body: bytes, repeat: int, avg: Decimal) -> dict[str, Any]:
    kinds = _check(stream, body)
    row: dict[str, Any] = {"messages": stream.messages, "events": sum(kinds.values()), "kinds": kinds}
    row["core"] = _time_core(stream, body, repeat) / stream.messages
    for name, make in _peers(avg).items():
        row[name] = _time_peer(stream, make, repeat) / stream.messages
    return row


HEADER = (
    f"{'':<13}{'msgs':>6} {'ev/msg':>6} | {'core µs':>8} {'msg/s':>8} | {'dicts µs':>8} {'ratio':>6} | "
    f"{'pybit µs':>8} {'ratio':>6} | {'loads µs':>8} {'ratio':>6} | {'framing µs':>10}"
)


def _line(label: str, row: dict[str, Any]) -> str:
    core = row["core"]
    cells = [f"{label:<13}{row['messages']:>6} {row['events'] / row['messages']:>6.2f} |"]
    cells.append(f"{core * 1e6:>8.2f} {1 / core:>8,.0f} |")
    for name in ("dicts", "pybit", "loads"):
        cells.append(f"{row[name] * 1e6:>8.2f} {row[name] / core:>5.2f}x |")
    cells.append(f"{row['framing'] * 1e6:>10.2f}")
    return " ".join(cells)


def _title(whole: Stream, args: argparse.Namespace) -> str:
    reads = sum(1 for e in whole.entries if e.messages)
    parts = [
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs",
        f"{whole.messages} messages (seed {args.seed}): "
        + ", ".join(f"{whole.counts[f]} {f}" for f in FAMILIES),
        f"{whole.size / whole.messages:.0f} B per frame",
        f"reads of <= {TLS_RECORD} B, {whole.messages / reads:.1f} messages per read, {whole.pongs} pongs",
        f"best of {args.repeat} after a warm-up run, process CPU time",
        f"gc {args.gc} (thresholds {'/'.join(map(str, gc.get_threshold()))}, collected before each run)",
    ]
    return "; ".join(parts)


def _profile(stream: Stream, body: bytes, top: int) -> int:
    """The timed loop of the core under cProfile (no peers): where a message's time goes."""
    core = live_core(body)
    core.poll()
    receive, poll = core.receive, core.poll

    def run() -> None:
        for entry in stream.entries:
            receive(entry.link, entry.data, entry.now)
            poll()

    profiler = cProfile.Profile()
    profiler.runcall(run)
    print(f"{stream.messages} messages; cProfile adds its own overhead per call: compare shares, not times")
    for key in ("cumulative", "tottime"):
        pstats.Stats(profiler).strip_dirs().sort_stats(key).print_stats(top)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--gc", choices=("on", "off"), default="on")
    ap.add_argument("--quick", action="store_true", help="300 messages, 1 run: a smoke test, not figures")
    ap.add_argument("--profile", type=int, metavar="N", help="cProfile the core alone; print the top N")
    args = ap.parse_args(argv)
    if args.quick:
        args.messages, args.repeat = min(args.messages, 300), 1
    if args.gc == "off":
        gc.disable()

    body = rest_body(args.seed)
    if args.profile:
        return _profile(make_stream(args.messages, args.seed), body, args.profile)
    avg = next(iter(live_core(body).positions().values())).avg_price
    streams = {fam: make_stream(args.messages, args.seed, only=fam) for fam in FAMILIES}
    streams["all"] = make_stream(args.messages, args.seed)
    streams["all, 1/read"] = make_stream(args.messages, args.seed, chunk=0)
    print(_title(streams["all"], args))
    print(HEADER)
    rows = {}
    for label, stream in streams.items():
        rows[label] = row = _measure(stream, body, args.repeat, avg)
        print(_line(label, row), flush=True)
    print("ratio = peer time / core time (above 1: the core is faster); framing = wsproto alone")
    print("events (all): " + ", ".join(f"{n} {k}" for k, n in rows["all"]["kinds"].most_common()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
