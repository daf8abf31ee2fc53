"""The network commands: `watch` (public tickers), `positions` (an account's hybrid stream) and `record`."""

from __future__ import annotations

import os
import re
import sys
import time
from collections import deque
from typing import Any

from bybit_hybrid_core import Credentials, Event, Link, LinkStatus, SubscriptionFailed

from .errors import EXIT_OK, EXIT_USAGE, CliError
from .live import LiveRun, endpoint_options, open_stream
from .record import RecordingCore
from .view import NOTABLE, PositionBoard, TickerBoard, event_line, link_lines

__all__ = ["keys_from_env", "run_positions", "run_record", "run_watch"]

_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,40}$")  # BTCUSDT, BTC-27MAR26, BTC-27MAR26-70000-C


def keys_from_env() -> tuple[str, str]:
    """BYBIT_API_KEY / BYBIT_API_SECRET, or a usage error naming what is missing. Never echoes a value."""
    key = os.environ.get("BYBIT_API_KEY", "").strip()
    secret = os.environ.get("BYBIT_API_SECRET", "").strip()
    missing = [name for name, value in (("BYBIT_API_KEY", key), ("BYBIT_API_SECRET", secret)) if not value]
    if missing:
        unset = "neither is set" if len(missing) == 2 else f"{missing[0]} is not set"
        raise CliError(
            f"set BYBIT_API_KEY and BYBIT_API_SECRET ({unset})",
            "a read-only API key is enough; keys of testnet or demo trading need --testnet or --demo",
            EXIT_USAGE,
        )
    return key, secret


def _environment(stream: Any) -> str:
    config = stream.settings.config
    return "custom endpoints" if config.endpoints is not None else config.environment


def run_watch(args: Any) -> int:
    """Live public tickers: no keys, one public link."""
    symbols = [s.upper() for s in args.symbols]
    bad = [s for s in symbols if not _SYMBOL.match(s)]
    if bad:
        raise CliError(
            f"not a symbol: {', '.join(bad)}", "e.g. BTCUSDT ETHUSDT (linear), BTCUSD (--category inverse)"
        )
    topics = tuple(dict.fromkeys(f"tickers.{s}" for s in symbols))
    stream = open_stream("", "", categories=(args.category,), topics=topics, **endpoint_options(args))
    failed: set[str] = set()

    def check(event: Event) -> CliError | None:
        if isinstance(event, SubscriptionFailed) and event.topic in topics:
            failed.add(event.topic)
            if failed == set(topics):
                return CliError(
                    f"no such {args.category} symbol: {', '.join(symbols)}",
                    "check the symbol and --category (BTCUSDT is linear, BTCUSD inverse; or --category spot)",
                    EXIT_USAGE,
                )
        return None

    board = TickerBoard(f"bybit-hybrid watch: {args.category} tickers ({_environment(stream)})", 0.0, symbols)
    run = LiveRun(
        stream, board, json=args.json, tty=sys.stdout.isatty(), duration=args.duration,
        interval=args.interval, check=check,
    )  # fmt: skip
    return run.run()


def run_positions(args: Any) -> int:
    """The hybrid stream of a real account: positions priced at the live mark."""
    key, secret = keys_from_env()
    stream = open_stream(key, secret, categories=(), **endpoint_options(args))
    title = f"bybit-hybrid positions: {_environment(stream)}, key {Credentials(key, secret).masked_key}"
    board = PositionBoard(title, origin=0.0)
    run = LiveRun(
        stream, board, json=args.json, tty=sys.stdout.isatty(), duration=args.duration, interval=args.interval
    )
    return run.run()


class RecordBoard:
    """What `record` shows while it runs: how much is on file, the links, and the notable events."""

    def __init__(self, title: str, core: RecordingCore, origin: float) -> None:
        self.title, self.core, self.origin = title, core, origin
        self.downs: dict[Link, str] = {}
        self.log: deque[str] = deque(maxlen=8)

    def apply(self, event: Event) -> str | None:
        if isinstance(event, NOTABLE):
            line = event_line(event, self.origin)
            self.log.append(line)
            return line
        return None

    def note(self, now: float, text: str) -> str:
        self.log.append(text)
        return text

    def summary(self, now: float) -> list[str]:
        return []

    def lines(self, now: float, status: dict[Link, LinkStatus]) -> list[str]:
        counts = f"{self.core.records} records, {self.core.bytes} bytes received"
        return [f"{self.title}   t={now - self.origin:.1f}s   {counts}", "", *link_lines(status, self.downs),
                "", "RECENT", *self.log]  # fmt: skip


def run_record(args: Any) -> int:
    """Record the raw inbound bytes of a stream to `args.file` (format: `cli.record`)."""
    topics = tuple(args.topics)
    if not topics and not args.private:
        raise CliError(
            "nothing to record", "give topics (e.g. tickers.BTCUSDT orderbook.50.BTCUSDT) or --private"
        )
    key, secret = keys_from_env() if args.private else ("", "")
    categories = (args.category,) if topics else ()
    try:
        out = open(args.file, "w", encoding="utf-8")  # noqa: SIM115  (closed below, after the stream stops)
    except OSError as exc:
        raise CliError(f"cannot write {args.file}: {exc.strerror or exc}", "check the path") from None
    with out:
        stream = open_stream(
            key, secret, categories=categories, topics=topics,
            make_core=lambda config: RecordingCore(config, out), **endpoint_options(args),
        )  # fmt: skip
        core = stream.core
        assert isinstance(core, RecordingCore)
        board = RecordBoard(f"bybit-hybrid record: {args.file}", core, 0.0)
        run = LiveRun(
            stream, board, json=args.json, tty=sys.stdout.isatty(), duration=args.duration, interval=5.0
        )
        try:
            run.run()
        finally:
            core.end(time.monotonic())
    print(f"recorded {core.records} records ({core.bytes} bytes received) to {args.file}", file=sys.stderr)
    return EXIT_OK
