"""Memory benchmark: does a live `HybridCore` stay flat over millions of messages?

    python bench/bench_memory.py                       # 10,000,000 messages (~15 min here)
    python bench/bench_memory.py --messages 2000000    # ~3 min

The core of `bench_core.py` (bench/core_stream.py: both links LIVE, 9 linear topics confirmed, a BTCUSDT
position open, so the join prices every mark) is fed the seeded `Venue` stream without end: tickers,
orderbook.50 deltas that insert, update and delete real levels, and publicTrade bursts, generated step by
step as it is fed (nothing is replayed, so books, tickers, sequence numbers and timers stay as real as the
first message's; stream time runs at the Venue's 100 ms per step, ~1.5 s per 100 messages, and every ping
of the core is answered with Bybit's pong). Frames of one step go in reads of at most 16 KiB, as over TLS.

RSS (resident set size, /proc/self/statm) is printed after setup, at every 10% and at the end, each after
`gc.collect()`; the growth is given from the start and from the 10% mark (books and tickers are full by
then: what is left is what a long-running bot would see). The stream generator lives in the same process:
its state is bounded too, so flat RSS means a flat core. The run must be clean: no `LinkDown`, no
`ProtocolProblem`.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import time
from collections.abc import Iterator

from core_stream import POSITION, START_MS, TLS_RECORD, TOPICS, config, framer, live_core, rest_body
from wsproto.events import TextMessage

from bybit_hybrid_core import Link, LinkDown, ProtocolProblem
from bybit_hybrid_core.testing import Venue, dumps, pong_reply

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss() -> int:
    """Resident set size in bytes now (the peak on systems without /proc)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def reads(seed: int) -> Iterator[tuple[Link, bytes, float, int]]:
    """(link, read, now, topic messages in it) without end: the Venue's steps as socket reads."""
    venue = Venue(seed, START_MS)
    venue.open_position(*POSITION[:3], POSITION[3], 0.0)
    server = framer()
    pong = {
        link: server.send(TextMessage(data=dumps(pong_reply(link.value, "", "bench-conn", START_MS))))
        for link in (Link.LINEAR, Link.PRIVATE)
    }
    interval = config().timings.ping_interval
    next_ping = interval
    subscribed = {"linear": set(TOPICS)}
    first = [m for m in (venue.snapshot("linear", t, 0.0) for t in TOPICS) if m is not None]
    yield Link.LINEAR, b"".join(server.send(TextMessage(data=dumps(m))) for m in first), 0.0, len(first)
    step = 0
    while True:
        step += 1
        now = step / 10
        frames = [server.send(TextMessage(data=dumps(m))) for _, _, m in venue.publish(now, subscribed)]
        count = len(frames)
        if now >= next_ping:  # the core pings at its first input at or after this: answer on both links
            next_ping = now + interval
            yield Link.PRIVATE, pong[Link.PRIVATE], now, 0
            frames.append(pong[Link.LINEAR])
        data = b"".join(frames)
        for start in range(0, len(data), TLS_RECORD):
            yield Link.LINEAR, data[start : start + TLS_RECORD], now, count
            count = 0


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    total = args.messages
    core = live_core(rest_body(args.seed))
    core.poll()
    receive, poll = core.receive, core.poll
    bad = (LinkDown, ProtocolProblem)
    marks = [total * k // 10 for k in range(1, 11)]
    fed = events = problems = 0
    gc.collect()
    start = rss()
    at_10 = start
    t0 = time.process_time()
    print(f"python {sys.version.split()[0]}; {total:,} messages (seed {args.seed}), {len(TOPICS)} topics, "
          f"1 position; RSS after gc.collect()")  # fmt: skip
    print(f"{'messages':>12} {'RSS':>12} {'vs start':>9} {'stream time':>12} {'CPU s':>8} {'events':>12}")
    print(f"{0:>12,} {_mib(start):>12} {'':>9} {'0 s':>12} {0:>8.1f} {0:>12,}", flush=True)
    for link, data, now, count in reads(args.seed):
        receive(link, data, now)
        out = poll().events
        events += len(out)
        for event in out:
            if isinstance(event, bad):
                problems += 1
                if problems <= 3:
                    print(f"not clean at now={now}: {event}", flush=True)
        fed += count
        if fed >= marks[0]:
            marks.pop(0)
            gc.collect()
            now_rss = rss()
            if len(marks) == 9:
                at_10 = now_rss
            print(f"{fed:>12,} {_mib(now_rss):>12} {100 * (now_rss - start) / start:>+8.2f}% {now:>10,.0f} s "
                  f"{time.process_time() - t0:>8.1f} {events:>12,}", flush=True)  # fmt: skip
            if not marks:
                break
    end = rss()
    cpu = (time.process_time() - t0) / fed * 1e6
    print(
        f"growth: start -> end {100 * (end - start) / start:+.3f}% ({(end - start) / 1024:+,.0f} KiB); "
        f"10% -> end {100 * (end - at_10) / at_10:+.3f}% ({(end - at_10) / 1024:+,.0f} KiB); "
        f"{problems} LinkDown/ProtocolProblem, {cpu:.1f} µs CPU per message (core + generator)"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
