"""Inbound frame benchmark: our frame reader vs wsproto, the same server bytes, side by side in one run.

    python bench/bench_frames.py [--frames 20000] [--size 256] [--repeat 5]

A stream of unmasked server text frames (`--size` payload bytes each, JSON-shaped ASCII) is cut into reads
two ways: socket-sized reads of 16 KiB (frames cut across reads, as TLS records deliver them) and one frame
per read. Each is fed to `FrameReader.feed` (the reader alone), to `Wire.receive` (the reader plus the
wire's per-read overhead, what the link calls) and to a wsproto client past its upgrade
(`receive_data` then `events()`, the path the wire took before issue 14). Every figure is process CPU time
per frame, best of `--repeat` runs, after a warm-up run that checks every frame came out whole.

This is the one bench script that imports a private module (`bybit_hybrid_core._link`): the frame reader
sits below every public face, and timing it through `HybridCore` would bury it in the codec and the data
plane (tests/test_project.py lists the exception). Not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from bybit_hybrid_core._link.frames import FrameReader
from bybit_hybrid_core._link.wire import MAX_MESSAGE_CHARS, Wire, WireUpgraded

_CLOCK = time.process_time  # CPU time of this process: other processes on the machine only stretch wall time
READ = 16 * 1024


def make_frames(count: int, size: int) -> list[bytes]:
    """`count` server text frames of exactly `size` payload bytes, each a different ticker delta."""
    out = []
    for i in range(count):
        body = {"topic": "tickers.BTCUSDT", "type": "delta", "cs": i, "ts": 1_717_000_000_000 + i}
        body["data"] = {"symbol": "BTCUSDT", "markPrice": f"{63561.6 + i % 97 / 10:.2f}"}
        payload = json.dumps(body, separators=(",", ":")).encode()
        payload = (payload + b" " * size)[:size] if len(payload) <= size else payload[:size]
        n = len(payload)
        head = bytes([0x81, n]) if n < 126 else bytes([0x81, 126]) + n.to_bytes(2, "big")
        out.append(head + payload)
    return out


def wsproto_client() -> WSConnection:
    client, server = WSConnection(ConnectionType.CLIENT), WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="stream.bybit.com", target="/v5/public/linear")))
    list(server.events())
    client.receive_data(server.send(AcceptConnection()))
    list(client.events())
    return client


def open_wire() -> Wire:
    wire, server = Wire("wss://stream.bybit.com/v5/public/linear"), WSConnection(ConnectionType.SERVER)
    wire.initiate()
    server.receive_data(wire.data_to_send())
    list(server.events())
    assert wire.receive(server.send(AcceptConnection())) == [WireUpgraded()]
    return wire


def run_reader(reads: list[bytes]) -> int:
    reader = FrameReader(MAX_MESSAGE_CHARS)
    feed = reader.feed
    return sum(len(feed(read)) for read in reads)


def run_wire(reads: list[bytes]) -> int:
    receive = open_wire().receive
    return sum(len(receive(read)) for read in reads)


def run_wsproto(reads: list[bytes]) -> int:
    client = wsproto_client()
    done = 0
    for read in reads:
        client.receive_data(read)
        for event in client.events():
            if isinstance(event, TextMessage) and event.message_finished:
                done += 1
    return done


def best(fn: Callable[[list[bytes]], int], reads: list[bytes], frames: int, repeat: int) -> float:
    """µs per frame, best of `repeat` timed runs after one checked warm-up."""
    got = fn(reads)
    assert got == frames, f"{fn.__name__}: {got} of {frames} frames"
    fastest = float("inf")
    for _ in range(repeat):
        start = _CLOCK()
        fn(reads)
        fastest = min(fastest, _CLOCK() - start)
    return fastest / frames * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=256, help="payload bytes per frame")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    frames = make_frames(args.frames, args.size)
    stream = b"".join(frames)
    layouts = {
        f"{READ // 1024} KiB reads": [stream[i : i + READ] for i in range(0, len(stream), READ)],
        "1 frame/read": frames,
    }
    print(
        f"{args.frames} text frames of {args.size} payload bytes; µs/frame, CPU time, best of {args.repeat}"
    )
    print(f"{'':<14}{'reader':>8}{'Wire':>8}{'wsproto':>9}{'wsproto/reader':>16}")
    for name, reads in layouts.items():
        ours = best(run_reader, reads, args.frames, args.repeat)
        wire = best(run_wire, reads, args.frames, args.repeat)
        theirs = best(run_wsproto, reads, args.frames, args.repeat)
        print(f"{name:<14}{ours:>8.2f}{wire:>8.2f}{theirs:>9.2f}{theirs / ours:>15.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
