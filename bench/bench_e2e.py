"""End-to-end benchmark: one TLS WebSocket stream over 127.0.0.1, read by pybit, ccxt pro, our three adapters
and a do-nothing client, side by side in the same run.

    pip install -e ".[bench]"                                     # the peers: pybit, ccxt, aiohttp, trustme
    python bench/bench_e2e.py -n 20000 --rounds 3                 # throughput, permsg and blast framings
    python bench/bench_e2e.py --latency --rate 5000 -n 20000      # paced: send -> event delivered, p50/p99
    python bench/bench_e2e.py --only anyio,asyncio,threaded,floor -n 300 --rounds 1 --warmup 0   # smoke

The server (bench/e2e_server.py) is its own process, pinned to the last CPU; this process (the clients) to
the first, when the machine has more than one. It serves the stream of bench/e2e_stream.py: 200 linear
symbols x (tickers, orderbook.50, publicTrade), Bybit's real shapes, ~256 B per message.

Throughput (`--modes permsg,blast`): each message its own TLS record (`permsg`, what a live venue mostly
sends) or the whole push in full 16 KiB records (`blast`). The figure is the client's CPU time
(`time.process_time()` of this process, every thread) per message, from just before the client asks for
the push (its subscribe to the end topic) to the end marker; connecting, the TLS handshake, subscribing
and every `Subscribed` ack are setup, outside the clock. Rounds are interleaved (every contender once per
round, the order rotated round by round); the table gives the median over rounds and ratios against pybit
and ccxt (above 1: fewer CPU µs per message than that peer).

Latency (`--latency --rate N`): one record per message, sent at N messages/s; the server stamps each
send (`perf_counter_ns`, one monotonic clock for both processes), the client stamps the moment the event
reaches the user's `async for` / `for` (pybit: its callback; ccxt: after its handler); p50/p90/p99 per
round, the median over rounds. The do-nothing client is the floor: TLS, the socket and the event loop.

The contenders, each used as its users use it:

* `pybit`: `pybit.unified_trading.WebSocket(channel_type="linear")` (websocket-client underneath) with
  `ticker_stream`, `orderbook_stream(50, ...)`, `trade_stream` callbacks for all 200 symbols; its URL
  pointed here (its module constant) and the CA trusted through `WEBSOCKET_CLIENT_CA_BUNDLE`.
* `ccxt`: ccxt pro's transport and receive path, with its markets given by hand (no REST here): an
  aiohttp `ws_connect` as ccxt opens it, every frame through ccxt's `Client.handle_message` into
  `bybit.handle_message` (tickers parsed, order books kept, trades cached); futures are never awaited.
* `anyio`, `asyncio`, `threaded`: `bybit_hybrid.HybridStream`, `bybit_hybrid.asyncio.HybridStream`,
  `bybit_hybrid.threaded.HybridStream` with `endpoints=Endpoints.custom(...)`, `cafile=`,
  `categories=("linear",)`, `topics=` (600), consumed with `async for` / `for`.
* `floor`: asyncio `Protocol` over TLS, frames split by length and counted, nothing decoded.

Scratch (the throwaway CA and certificate, the send times) goes to `.bench/` at the repository root
(gitignored). A peer that is not installed is skipped with a line saying so. Machines here are shared and
noisy: compare the contenders of one run (the ratios), not absolute figures across runs.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import faulthandler
import gc
import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from importlib import metadata, util
from pathlib import Path
from types import MethodType
from typing import Any

from e2e_stream import END_TOPIC, SNAPSHOTS, frame, make_stream, symbols, topics_for

HERE = Path(__file__).resolve().parent
SCRATCH = HERE.parent / ".bench"
HOST = "127.0.0.1"
CPU = time.process_time
WALL = time.perf_counter
CLOCK = time.perf_counter_ns
HANG_AFTER = 300.0  # seconds one contender's run may take


# ----------------------------------------------------------------------------------------------- setup
def make_certs(scratch: Path) -> Path:
    """A throwaway CA and a server certificate for 127.0.0.1 (trustme, else openssl); returns the CA file."""
    scratch.mkdir(parents=True, exist_ok=True)
    ca_file, cert, key = scratch / "ca.pem", scratch / "server.pem", scratch / "server.key"
    if ca_file.exists() and cert.exists() and key.exists():
        return ca_file
    try:
        import trustme
    except ImportError:
        san = "subjectAltName=IP:127.0.0.1,DNS:localhost"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
             str(cert), "-days", "30", "-subj", "/CN=127.0.0.1", "-addext", san],
            check=True, capture_output=True,
        )  # fmt: skip
        ca_file.write_bytes(cert.read_bytes())
        return ca_file
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    issued.private_key_pem.write_to_path(str(key))
    cert.write_bytes(b"".join(pem.bytes() for pem in issued.cert_chain_pems))
    ca.cert_pem.write_to_path(str(ca_file))
    return ca_file


@dataclass
class Server:
    proc: subprocess.Popen[str]
    port: int

    @classmethod
    def start(cls, scratch: Path, messages: int, seed: int, cpu: int | None) -> Server:
        cmd = [sys.executable, str(HERE / "e2e_server.py"), "--scratch", str(scratch),
               "--messages", str(messages), "--seed", str(seed)]  # fmt: skip
        if cpu is not None:
            cmd += ["--cpu", str(cpu)]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        if line[:1] != ["READY"]:
            proc.kill()
            raise SystemExit(f"the bench server did not start: {line}")
        return cls(proc, int(line[1]))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@dataclass
class Run:
    """One contender's run: where to connect, how many messages, and (latency) where to stamp deliveries."""

    port: int
    mode: str
    n: int
    symbols: list[str]
    cafile: str
    rate: float = 0.0
    latency: bool = False
    run_id: str = field(default_factory=lambda: f"r{os.getpid()}_{time.perf_counter_ns()}")
    deliver: array.array[int] = field(default_factory=lambda: array.array("q"))

    def __post_init__(self) -> None:
        if self.latency:
            self.deliver = array.array("q", bytes(8 * self.n))

    @property
    def base(self) -> str:
        return f"wss://{HOST}:{self.port}/{self.mode}/{self.n}/{self.rate:g}/{self.run_id}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)


@dataclass
class Result:
    delivered: int  # market events (or messages) the user saw
    cpu: float  # seconds of process CPU time, all threads
    wall: float


# ----------------------------------------------------------------------------------------------- pybit
def c_pybit(run: Run) -> Result:
    import pybit.unified_trading as unified

    os.environ["WEBSOCKET_CLIENT_CA_BUNDLE"] = run.cafile
    saved = unified.PUBLIC_WSS
    unified.PUBLIC_WSS = run.base + "/v5/public/{CHANNEL_TYPE}"
    try:
        ws = unified.WebSocket(channel_type="linear", testnet=False)
    finally:
        unified.PUBLIC_WSS = saved
    count = 0
    deliver = run.deliver if run.latency else None
    done = threading.Event()
    times: dict[str, float] = {}

    def on_market(message: dict[str, Any]) -> None:
        nonlocal count
        if deliver is not None:
            deliver[count] = CLOCK()
        count += 1

    def on_end(message: dict[str, Any]) -> None:
        times["cpu"], times["wall"] = CPU(), WALL()
        done.set()

    try:
        ws.ticker_stream(symbol=run.symbols, callback=on_market)
        ws.orderbook_stream(depth=50, symbol=run.symbols, callback=on_market)
        ws.trade_stream(symbol=run.symbols, callback=on_market)
        time.sleep(0.5)  # its subscribe acks (pybit tells nobody when they came)
        gc.collect()
        c0, w0 = CPU(), WALL()
        ws.trade_stream(symbol=END_TOPIC.split(".")[1], callback=on_end)
        while not done.wait(5.0):
            if not ws.wst.is_alive():
                raise ConnectionError(f"pybit: its thread ended before the end marker ({count} messages)")
    finally:
        closer = threading.Thread(target=ws.exit, daemon=True)  # exit() waits for its socket to go, unbounded
        closer.start()
        closer.join(10)
        if closer.is_alive():
            print("  note: pybit's WebSocket.exit() did not return within 10 s; left behind", flush=True)
    return Result(count, times["cpu"] - c0, times["wall"] - w0)


# ------------------------------------------------------------------------------------------------ ccxt
class _CcxtClient:
    """What ccxt's `Client.handle_message` and `bybit.handle_*` touch on a client (no future is waiting)."""

    url = "wss://stream.bybit.com/v5/public/linear"
    verbose = False
    decompressBinary = True
    gunzip = inflate = False

    def __init__(self, on_message: Callable[..., Any]) -> None:
        self.futures: dict[str, Any] = {}
        self.subscriptions: dict[str, Any] = {}
        self.rejections: dict[str, Any] = {}
        self.on_message_callback = on_message
        self.last_message_at = 0

    def resolve(self, result: Any, message_hash: str) -> Any:
        future = self.futures.pop(message_hash, None)
        if future is not None:
            future.resolve(result)
        return result

    def reject(self, result: Any, message_hash: str | None = None) -> Any:
        return result


def _ccxt_exchange(names: list[str]) -> Any:
    import ccxt.pro

    exchange = ccxt.pro.bybit({"enableRateLimit": False})
    markets = []
    for s in names:
        base = s.removesuffix("USDT")
        markets.append({
            "id": s, "symbol": f"{base}/USDT:USDT", "base": base, "quote": "USDT", "settle": "USDT",
            "baseId": base, "quoteId": "USDT", "settleId": "USDT", "type": "swap", "spot": False,
            "margin": False, "swap": True, "future": False, "option": False, "active": True, "contract": True,
            "linear": True, "inverse": False, "contractSize": 1.0, "expiry": None, "expiryDatetime": None,
            "strike": None, "optionType": None, "precision": {"amount": 0.001, "price": 0.01}, "limits": {},
            "info": {"symbol": s},
        })  # fmt: skip
    exchange.set_markets(markets)
    return exchange


async def c_ccxt(run: Run) -> Result:
    import aiohttp
    from ccxt.async_support.base.ws.client import Client

    exchange = _ccxt_exchange(run.symbols)
    client = _CcxtClient(exchange.handle_message)  # with ccxt's own handle_text_or_binary_message:
    client.handle_text_or_binary_message = MethodType(Client.handle_text_or_binary_message, client)
    handle = Client.handle_message
    end = '{"topic":"' + END_TOPIC + '"'
    deliver = run.deliver if run.latency else None
    count = 0
    try:
        async with aiohttp.ClientSession() as session, session.ws_connect(
            run.base + "/v5/public/linear", ssl=run.ssl_context(), autoping=False, autoclose=False,
            compress=0, max_msg_size=10485760,
        ) as ws:  # fmt: skip
            topics = topics_for(run.symbols)
            for i in range(0, len(topics), 10):  # ccxt's watch_*_for_symbols subscribe in batches too
                batch = {"op": "subscribe", "req_id": str(i), "args": topics[i : i + 10]}
                await ws.send_str(json.dumps(batch))
            for _ in range(0, len(topics), 10):
                handle(client, await ws.receive())
            gc.collect()
            c0, w0 = CPU(), WALL()
            await ws.send_str(json.dumps({"op": "subscribe", "req_id": "end", "args": [END_TOPIC]}))
            handle(client, await ws.receive())  # its ack
            receive = ws.receive
            while True:
                msg = await receive()
                if msg.data.startswith(end):
                    break
                handle(client, msg)
                if deliver is not None:
                    deliver[count] = CLOCK()
                count += 1
            c1, w1 = CPU(), WALL()
    finally:
        await exchange.close()
    return Result(count, c1 - c0, w1 - w0)


# -------------------------------------------------------------------------------------- our adapters
def _hybrid_options(run: Run) -> dict[str, Any]:
    from bybit_hybrid import Endpoints

    return {"endpoints": Endpoints.custom(run.base), "cafile": run.cafile, "categories": ("linear",),
            "topics": topics_for(run.symbols)}  # fmt: skip


class _User:
    """The user's loop body: one type test and a count per market event; setup until every topic is
    confirmed; the delivery stamp per market event when measuring latency."""

    def __init__(self, run: Run) -> None:
        from bybit_hybrid_core import (
            LinkDown,
            OrderbookUpdate,
            ProtocolProblem,
            PublicTrades,
            Subscribed,
            TickerUpdate,
        )

        self.market = (TickerUpdate, OrderbookUpdate)
        self.trades, self.subscribed, self.bad = PublicTrades, Subscribed, (LinkDown, ProtocolProblem)
        self.run = run
        self.wanted, self.confirmed = len(run.symbols) * 3, 0
        self.count, self.c0, self.w0 = 0, 0.0, 0.0
        self.live = False
        self.deliver = run.deliver if run.latency else None

    def take(self, stream: Any, event: Any) -> Result | None:
        """One event of the user's loop (every adapter's the same): the result once the end marker came."""
        if not self.live:
            self.live = self.setup(event)
            if self.live:
                stream.subscribe(END_TOPIC)
            return None
        kind = type(event)
        if kind in self.market or (kind is self.trades and event.topic != END_TOPIC):
            if self.deliver is not None:
                self.deliver[self.count] = CLOCK()
            self.count += 1
        elif kind is self.trades:
            return self.result()
        elif isinstance(event, self.bad):
            raise AssertionError(event)
        return None

    def setup(self, event: object) -> bool:
        """True once every topic is confirmed: the clock starts and the caller asks for the push."""
        if isinstance(event, self.subscribed):
            self.confirmed += len(event.topics)
        elif isinstance(event, self.bad):
            raise AssertionError(f"setup: {event}")
        if self.confirmed < self.wanted:
            return False
        gc.collect()
        self.c0, self.w0 = CPU(), WALL()
        return True

    def result(self) -> Result:
        return Result(self.count, CPU() - self.c0, WALL() - self.w0)


async def _consume(stream: Any, user: _User) -> Result:
    async for event in stream:
        done = user.take(stream, event)
        if done is not None:
            return done
    raise AssertionError("the stream ended before the end marker")


async def c_anyio(run: Run) -> Result:
    from bybit_hybrid import HybridStream

    async with HybridStream(**_hybrid_options(run)) as stream:
        return await _consume(stream, _User(run))


async def c_asyncio(run: Run) -> Result:
    from bybit_hybrid.asyncio import HybridStream

    async with HybridStream(**_hybrid_options(run)) as stream:
        return await _consume(stream, _User(run))


def c_threaded(run: Run) -> Result:
    from bybit_hybrid.threaded import HybridStream

    user = _User(run)
    with HybridStream(**_hybrid_options(run)) as stream:
        for event in stream:
            done = user.take(stream, event)
            if done is not None:
                return done
    raise AssertionError("the stream ended before the end marker")


# ----------------------------------------------------------------------------------------------- floor
class _Floor(asyncio.Protocol):
    """TLS and the event loop, nothing else: the upgrade by wsproto, then frames split by length and counted
    (the ack of the end topic first, then n messages, then the end marker)."""

    def __init__(self, run: Run) -> None:
        from wsproto import ConnectionType, WSConnection

        self.ws = WSConnection(ConnectionType.CLIENT)
        self.run, self.deliver = run, run.deliver if run.latency else None
        self.upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.buf = b""
        self.frames = -1  # the ack is not a message
        self.last = run.n

    def data_received(self, data: bytes) -> None:
        if not self.upgraded.done():
            self.ws.receive_data(data)
            list(self.ws.events())
            self.upgraded.set_result(None)
            return
        buf = self.buf + data if self.buf else data
        i, size, k, deliver = 0, len(buf), self.frames, self.deliver
        while size - i >= 2:
            length = buf[i + 1] & 0x7F
            head = 2
            if length == 126:
                if size - i < 4:
                    break
                length, head = int.from_bytes(buf[i + 2 : i + 4], "big"), 4
            elif length == 127:
                if size - i < 10:
                    break
                length, head = int.from_bytes(buf[i + 2 : i + 10], "big"), 10
            if size - i < head + length:
                break
            i += head + length
            if deliver is not None and 0 <= k < self.last:
                deliver[k] = CLOCK()
            k += 1
        self.frames = k
        self.buf = buf[i:]
        if k > self.last and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError("lost before the end marker"))


async def c_floor(run: Run) -> Result:
    from wsproto.events import CloseConnection, Request, TextMessage

    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_connection(
        lambda: _Floor(run), HOST, run.port, ssl=run.ssl_context(), server_hostname=HOST
    )
    target = run.base.split(str(run.port), 1)[1] + "/v5/public/linear"
    transport.write(proto.ws.send(Request(host=HOST, target=target)))
    await proto.upgraded
    gc.collect()
    c0, w0 = CPU(), WALL()
    go = {"op": "subscribe", "req_id": "e", "args": [END_TOPIC]}
    transport.write(proto.ws.send(TextMessage(json.dumps(go))))
    await proto.done
    c1, w1 = CPU(), WALL()
    transport.write(proto.ws.send(CloseConnection(code=1000)))
    transport.close()
    return Result(proto.frames - 1, c1 - c0, w1 - w0)


# --------------------------------------------------------------------------------------------- the runs
@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    fn: Callable[[Run], Any]
    needs: tuple[str, ...]  # import names a peer needs

    def missing(self) -> list[str]:
        return [name for name in self.needs if util.find_spec(name) is None]

    def __call__(self, run: Run) -> Result:
        # a contender that hangs (no end marker) ends the bench with every thread's stack, not silently
        faulthandler.dump_traceback_later(HANG_AFTER, exit=True)
        try:
            return self._run(run)
        finally:
            faulthandler.cancel_dump_traceback_later()

    def _run(self, run: Run) -> Result:
        gc.collect()
        if self.key == "anyio":
            import anyio

            result: Result = anyio.run(self.fn, run, backend="asyncio")
            return result
        out = self.fn(run)
        if isinstance(out, Coroutine):
            return asyncio.run(out)
        assert isinstance(out, Result)
        return out


CONTENDERS = (
    Contender("pybit", "pybit WebSocket (websocket-client)", c_pybit, ("pybit", "websocket")),
    Contender("ccxt", "ccxt pro bybit (aiohttp)", c_ccxt, ("ccxt", "aiohttp")),
    Contender("anyio", "bybit_hybrid.HybridStream (anyio)", c_anyio, ()),
    Contender("asyncio", "bybit_hybrid.asyncio.HybridStream", c_asyncio, ()),
    Contender("threaded", "bybit_hybrid.threaded.HybridStream", c_threaded, ()),
    Contender("floor", "floor: do-nothing client", c_floor, ()),
)


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _pctl(xs: list[float], q: float) -> float:
    k = (len(xs) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def _order(names: list[Contender], round_no: int) -> list[Contender]:
    shift = round_no % len(names)
    return names[shift:] + names[:shift]


def _note(c: Contender, res: Result, n: int) -> None:
    if res.delivered != n:
        print(f"  note: {c.key} delivered {res.delivered} events for {n} messages", flush=True)


def throughput(
    args: argparse.Namespace, who: list[Contender], port: int, cafile: str, names: list[str]
) -> None:
    for mode in args.modes.split(","):
        print(f"\n## {mode}: n={args.n}, {args.rounds} interleaved round(s) after {args.warmup} warm-up; "
              f"loadavg {_loadavg()}", flush=True)  # fmt: skip
        for r in range(args.warmup):
            for c in who:
                res = c(Run(port, mode, args.n, names, cafile))
                _note(c, res, args.n)
                print(f"warm-up {r + 1} {c.key}: {res.cpu / args.n * 1e6:.2f} µs/msg", flush=True)
        cpu: dict[str, list[float]] = {c.key: [] for c in who}
        wall: dict[str, list[float]] = {c.key: [] for c in who}
        for r in range(args.rounds):
            load = _loadavg()
            for c in _order(who, r):
                res = c(Run(port, mode, args.n, names, cafile))
                _note(c, res, args.n)
                cpu[c.key].append(res.cpu / args.n * 1e6)
                wall[c.key].append(res.wall / args.n * 1e6)
            print(f"round {r + 1} (loadavg {load}): "
                  + "; ".join(f"{c.key} {cpu[c.key][-1]:.2f}" for c in who), flush=True)  # fmt: skip
        _throughput_table(mode, args, who, cpu, wall)


def _throughput_table(
    mode: str, args: argparse.Namespace, who: list[Contender], cpu: dict[str, list[float]],
    wall: dict[str, list[float]],
) -> None:  # fmt: skip
    med = {k: statistics.median(v) for k, v in cpu.items()}
    refs = [k for k in ("pybit", "ccxt") if k in med]
    print(f"\n### {mode}: client CPU µs per message (process_time, all threads), median of {args.rounds} "
          f"round(s), n={args.n}\n")  # fmt: skip
    print("| contender | µs/msg | msg/s | min-max µs | wall µs/msg |" + "".join(f" x{k} |" for k in refs))
    print("|---|---:|---:|---:|---:|" + "---:|" * len(refs))
    for c in who:
        m = med[c.key]
        cells = [c.label, f"{m:.2f}", f"{1e6 / m:,.0f}", f"{min(cpu[c.key]):.2f}-{max(cpu[c.key]):.2f}",
                 f"{statistics.median(wall[c.key]):.2f}"]  # fmt: skip
        cells += [f"{med[k] / m:.2f}x" for k in refs]
        print("| " + " | ".join(cells) + " |")
    if refs:
        print("\nxpeer = the peer's µs/msg / this row's (above 1: cheaper than the peer)")
    print(flush=True)


def _sends(scratch: Path, run_id: str) -> array.array[int]:
    path = scratch / "sends" / f"{run_id}.bin"
    for _ in range(500):
        if path.exists():
            break
        time.sleep(0.01)
    sends = array.array("q")
    sends.frombytes(path.read_bytes())
    path.unlink()
    return sends


def latency(args: argparse.Namespace, who: list[Contender], port: int, cafile: str, names: list[str]) -> None:
    print(
        f"\n## latency: paced {args.rate:,.0f} msg/s, one TLS record per message, n={args.n}, "
        f"{args.rounds} interleaved round(s) after {args.warmup} warm-up; loadavg {_loadavg()}",
        flush=True,
    )
    first = SNAPSHOTS if args.n > SNAPSHOTS else 0
    if first:
        print(f"the {first} snapshots go first, at once, then a 0.3 s pause; latency is over the "
              f"{args.n - first} paced updates", flush=True)  # fmt: skip
    stats: dict[str, list[dict[str, float]]] = {c.key: [] for c in who}
    for r in range(args.warmup + args.rounds):
        load = _loadavg()
        for c in _order(who, r):
            run = Run(port, "paced", args.n, names, cafile, rate=args.rate, latency=True)
            res = c(run)
            _note(c, res, args.n)
            sends = _sends(args.scratch, run.run_id)
            got = min(res.delivered, args.n)
            lat = sorted((run.deliver[i] - sends[i]) / 1000 for i in range(first, got))
            span = max((sends[got - 1] - sends[first]) / 1e9, 1e-9)
            st = {"p50": _pctl(lat, 0.5), "p90": _pctl(lat, 0.9), "p99": _pctl(lat, 0.99), "max": lat[-1],
                  "cpu": res.cpu / args.n * 1e6, "rate": (got - 1 - first) / span}  # fmt: skip
            warm = r < args.warmup
            print(
                f"{'warm-up' if warm else 'round'} {r + 1 - (0 if warm else args.warmup)} {c.key}: "
                f"p50 {st['p50']:.0f} p90 {st['p90']:.0f} p99 {st['p99']:.0f} max {st['max']:.0f} µs, "
                f"CPU {st['cpu']:.2f} µs/msg, sent at {st['rate']:,.0f}/s (loadavg {load})",
                flush=True,
            )
            if not warm:
                stats[c.key].append(st)
    floor = stats.get("floor")
    print(f"\n### latency, server send -> event delivered to the user (µs), paced {args.rate:,.0f} msg/s, "
          f"n={args.n}: median over {args.rounds} round(s) of each round's percentile\n")  # fmt: skip
    extra = " p50 - floor | p99 - floor |" if floor else ""
    print("| contender | p50 | p90 | p99 | max | CPU µs/msg |" + extra)
    print("|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if floor else ""))
    for c in who:
        med = {k: statistics.median(s[k] for s in stats[c.key]) for k in ("p50", "p90", "p99", "max", "cpu")}
        cells = [c.label] + [f"{med[k]:.0f}" for k in ("p50", "p90", "p99", "max")] + [f"{med['cpu']:.2f}"]
        if floor:
            for q in ("p50", "p99"):
                cells.append(f"{med[q] - statistics.median(s[q] for s in floor):+.0f}")
        print("| " + " | ".join(cells) + " |")
    print(flush=True)


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for dist in ("bybit-hybrid", "wsproto", "msgspec", "anyio", "pybit", "websocket-client", "ccxt",
                 "aiohttp"):  # fmt: skip
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{dist} {metadata.version(dist)}")
    return (f"{os.cpu_count()} CPUs ({cpu}), {platform.python_implementation()} {platform.python_version()}, "
            + ", ".join(versions))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("-n", type=int, default=20_000, help="messages per run (default 20000)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds (default 3)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    ap.add_argument("--modes", default="permsg,blast", help="throughput framings (default permsg,blast)")
    ap.add_argument("--only", default="", help="contenders, e.g. pybit,ccxt,anyio,asyncio,threaded,floor")
    ap.add_argument("--latency", action="store_true", help="the paced latency run instead of throughput")
    ap.add_argument("--rate", type=float, default=5_000, help="latency: messages per second (default 5000)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--scratch", type=Path, default=SCRATCH, help="certificates and send times (.bench/)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    keys = [k for k in args.only.split(",") if k] or [c.key for c in CONTENDERS]
    unknown = set(keys) - {c.key for c in CONTENDERS}
    if unknown:
        ap.error(f"unknown contender(s) {sorted(unknown)}")
    who = []
    for c in CONTENDERS:
        if c.key not in keys:
            continue
        if c.missing():
            print(f'skipped {c.key}: {", ".join(c.missing())} not installed (pip install -e ".[bench]")')
            continue
        who.append(c)
    if not who:
        print("nothing to run")
        return 1
    cafile = str(make_certs(args.scratch))
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server = Server.start(args.scratch, args.n, args.seed, cpus[-1] if len(cpus) > 1 else None)
    try:
        if len(cpus) > 1:
            os.sched_setaffinity(0, {cpus[0]})
        names = symbols(args.seed)
        sample = make_stream(min(args.n, 20_000), args.seed).messages[: args.n]
        print(f"machine: {machine()}")
        pinned = f"clients on CPU {cpus[0]}, server on CPU {cpus[-1]}" if len(cpus) > 1 else "no (one CPU)"
        print(f"pinned: {pinned}")
        print(f"stream: {len(names)} symbols, {3 * len(names)} topics; {args.n} messages per run, mean frame "
              f"{sum(len(frame(m)) for m in sample) / len(sample):.0f} B (first {len(sample)})")  # fmt: skip
        if args.latency:
            latency(args, who, server.port, cafile, names)
        else:
            throughput(args, who, server.port, cafile, names)
        print(f"loadavg at the end {_loadavg()}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
