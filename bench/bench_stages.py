"""Where the core's time goes, by stage, without a profiler: the stages timed alone on bench_core's stream.

    python bench/bench_stages.py [--messages 20000] [--repeat 5] [--seed 7]
    python bench/bench_stages.py --yardstick ../shared/bench --messages 30000   # the yardstick's stream
    python bench/bench_stages.py --one-per-read ...                            # one frame per read

Each row is one stage run on its own over the same frames (best of `--repeat`, process CPU time per topic
message): our frame reader alone; the frame reader plus the codec's `decode` of every payload; each link's
`LinkConnection.receive` (frames, decode and the link's own bookkeeping: counters, the per-topic push time,
latency); the whole core (`receive` + `poll`, what bench_core.py times). The differences are the link's
and the core's share (dispatch, data plane, events). `json.loads` of the same payloads, without framing,
is the issue-14 yardstick. It reaches into internals (`_link`, `_codec`) on purpose: a benchmark, not API.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core_stream import TLS_RECORD, Entry, live_core, make_stream, rest_body

from bybit_hybrid_core import HybridCore, Link
from bybit_hybrid_core._codec import decode
from bybit_hybrid_core._link import LinkConnection
from bybit_hybrid_core._link.frames import FrameReader

_CLOCK = time.process_time


def _best(run: Callable[[Any], None], repeat: int, setup: Callable[[], Any] = lambda: None) -> float:
    """The least CPU time of `repeat` runs of `run(setup())`; the setup is not timed."""
    best = float("inf")
    for _ in range(repeat):
        state = setup()
        gc.collect()
        start = _CLOCK()
        run(state)
        best = min(best, _CLOCK() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--yardstick",
        metavar="DIR",
        help="the shared yardstick's stream instead (DIR: ../shared/bench), fed to a public-only live core",
    )
    parser.add_argument(
        "--one-per-read", action="store_true", help="each frame its own read (what a quiet socket hands over)"
    )
    args = parser.parse_args()
    if args.yardstick:
        n, size, entries, make_core = _yardstick(args.yardstick, args.messages, args.one_per_read)
    else:
        stream = make_stream(args.messages, args.seed, chunk=0 if args.one_per_read else TLS_RECORD)
        body = rest_body(args.seed)
        n, size, entries = stream.messages, stream.size / stream.messages, stream.entries

        def make_core() -> HybridCore:
            return live_core(body)

    payloads: list[bytes] = []
    readers = {link: FrameReader(1 << 24) for link in {entry.link for entry in entries}}
    for entry in entries:
        payloads += [p for p in readers[entry.link].feed(entry.data) if isinstance(p, bytes)]
    topics = [p for p in payloads if p.startswith(b'{"topic"')]

    def fresh_readers() -> dict[Link, FrameReader]:
        return {link: FrameReader(1 << 24) for link in readers}

    def frames(fresh: dict[Link, FrameReader]) -> None:
        for entry in entries:
            fresh[entry.link].feed(entry.data)

    def frames_decode(fresh: dict[Link, FrameReader]) -> None:
        for entry in entries:
            for payload in fresh[entry.link].feed(entry.data):
                if isinstance(payload, bytes):
                    decode(payload)

    def connections() -> dict[Link, LinkConnection]:
        return dict(make_core()._links)

    def links(conns: dict[Link, LinkConnection]) -> None:
        for entry in entries:
            for _ in conns[entry.link].receive(entry.data, entry.now):
                pass

    def ready() -> HybridCore:
        core = make_core()
        core.poll()
        return core

    def whole(core: HybridCore) -> None:
        for entry in entries:
            core.receive(entry.link, entry.data, entry.now)
            core.poll()

    def loads(_: None) -> None:
        for payload in topics:
            json.loads(payload)

    rows = [
        ("frame reader", _best(frames, args.repeat, fresh_readers)),
        ("+ decode (msgspec, the value rules)", _best(frames_decode, args.repeat, fresh_readers)),
        ("+ the link (LinkConnection.receive)", _best(links, args.repeat, connections)),
        ("+ the core (dispatch, data plane, events, poll)", _best(whole, args.repeat, ready)),
    ]
    print(f"{n} topic messages, {size:.0f} B per frame, best of {args.repeat}, µs per message")
    previous = 0.0
    for label, seconds in rows:
        total = seconds / n * 1e6
        print(f"{label:<50} {total:>7.2f}  (this stage {total - previous:>6.2f})")
        previous = total
    print(f"{'bare json.loads of the same payloads':<50} {_best(loads, args.repeat) / n * 1e6:>7.2f}")


def _yardstick(
    where: str, messages: int, one_per_read: bool
) -> tuple[int, float, list[Entry], Callable[[], HybridCore]]:
    """The stream of ../shared/bench/loopback_peers.py (its `common.make_stream`), as 16 KiB reads of
    unmasked frames on the linear link, and its public-only live core (`hybrid_setup`), as its "core alone"
    row builds them."""
    sys.path.insert(0, str(Path(where).resolve()))
    from common import make_stream as shared_stream  # type: ignore[import-not-found]
    from hybrid_setup import chunks, frame, live_public_core, public_config  # type: ignore[import-not-found]

    stream = shared_stream(n_updates=100_000)
    payloads = stream.messages[:messages]
    frames = [frame(p) for p in payloads]
    reads = frames if one_per_read else chunks(b"".join(frames), TLS_RECORD)
    entries = [Entry(Link.LINEAR, data, 1.0 + i * 1e-5, 0) for i, data in enumerate(reads)]

    def make_core() -> HybridCore:
        core: HybridCore = live_public_core(public_config(stream.symbols))
        return core

    return len(payloads), sum(map(len, payloads)) / len(payloads), entries, make_core


if __name__ == "__main__":
    main()
