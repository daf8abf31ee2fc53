"""`bybit-hybrid demo`: the FakeExchange on loopback, a hybrid stream against it, and a scripted session.

The script opens and closes positions (one-way and hedge, linear and inverse), moves a mark and injects
faults (dropped links, a half-open link, a service restart) so reconnects and resyncs show up in the view.
It repeats every `CYCLE` seconds until `--duration` or Ctrl-C.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from bybit_hybrid_core import Timings

from ..server import ServedExchange
from .live import LiveRun, open_stream
from .sim import serve, serve_metrics
from .view import PositionBoard

__all__ = ["CYCLE", "DEMO_TIMINGS", "SCRIPT", "run_demo"]

# Short timers so that every recovery fits in a few seconds of demo: a half-open link is found within
# ping_interval + pong_timeout, a closed symbol's ticker is released after the grace, marks go stale fast.
DEMO_TIMINGS = Timings(
    ping_interval=2.0, pong_timeout=1.0, backoff_cap=3.0, ticker_release_grace=3.0, stale_mark_after=2.0
)

Step = Callable[[Any], object]


def _hedge_eth(ex: Any) -> None:
    ex.venue.set_hedge_mode("linear", "ETHUSDT")
    ex.open_position("ETHUSDT", "Buy", "2", position_idx=1)
    ex.open_position("ETHUSDT", "Sell", "1", position_idx=2)


def _mark_up(ex: Any) -> None:
    mark = ex.mark("BTCUSDT")
    ex.mark("BTCUSDT", (mark * Decimal("1.01")).quantize(Decimal("0.1")))


def _close_all(ex: Any) -> None:
    for category, symbol, idx in sorted(ex.positions()):
        ex.close_position(symbol, category=category, position_idx=idx)


SCRIPT: tuple[tuple[float, str, Step], ...] = (
    (0.3, "open linear BTCUSDT Buy 0.5 (one-way)", lambda ex: ex.open_position("BTCUSDT", "Buy", "0.5")),
    (0.6, "hedge mode on ETHUSDT: open Buy 2 (idx 1) and Sell 1 (idx 2)", _hedge_eth),
    (0.9, "open inverse BTCUSD Sell 1000",
     lambda ex: ex.open_position("BTCUSD", "Sell", "1000", category="inverse")),
    (2.0, "fault: the linear link drops (no close frame)",
     lambda ex: ex.drop_link("linear", close_frame=False)),
    (3.0, "fault: the private link drops (re-auth, REST resync)", lambda ex: ex.drop_link("private")),
    (4.0, "close ETHUSDT Sell leg (idx 2)", lambda ex: ex.close_position("ETHUSDT", position_idx=2)),
    (5.5, "open linear SOLUSDT Sell 20", lambda ex: ex.open_position("SOLUSDT", "Sell", "20")),
    (7.0, "fault: the inverse link goes half-open (found by its silence within 5 s)",
     lambda ex: ex.half_open("inverse")),
    (9.0, "BTCUSDT mark +1%", _mark_up),
    (11.0, "fault: service restart, every link cut", lambda ex: ex.restart_service(drop_links=True)),
    (13.5, "close every position", _close_all),
)  # fmt: skip
CYCLE = 16.0


class _Script:
    """Runs the steps due by the monotonic clock on the exchange's thread, reporting each one."""

    def __init__(self, served: ServedExchange, run: LiveRun) -> None:
        self.served, self.run = served, run
        self.done = 0  # steps run so far, over every cycle

    def __call__(self, now: float) -> None:
        while True:
            cycle, index = divmod(self.done, len(SCRIPT))
            at, label, step = SCRIPT[index]
            if now < self.run.started + cycle * CYCLE + at:
                return
            self.done += 1
            now = time.monotonic()
            try:
                self.served.call(step)
            except Exception as exc:  # the demo goes on; say what did not work
                self.run.note(f"demo: {label}: failed: {type(exc).__name__}: {exc}", now)
            else:
                self.run.note(f"demo: {label}", now)


def run_demo(args: Any) -> int:
    """The `demo` command (see `cli.py` for its arguments)."""
    served = serve(args.tls, seed=args.seed)
    stop_metrics: Callable[[], None] | None = None
    try:
        stream = open_stream(
            served.api_key,
            served.api_secret,
            endpoints=served.endpoints,
            cafile=served.ca_file,
            categories=("linear", "inverse"),
            timings=DEMO_TIMINGS,
            seed=args.seed,
        )
        title = f"bybit-hybrid demo: FakeExchange at {served.ws_url} (seed {args.seed})"
        if getattr(args, "metrics_port", None) is not None:
            url, stop_metrics = serve_metrics(args.metrics_port, stream)
            # stderr, like the demo's other notes: stdout stays the view or clean NDJSON
            print(f"metrics: {url}", file=sys.stderr, flush=True)
            title += f", metrics at {url}"
        run = LiveRun(
            stream, PositionBoard(title, origin=0.0), json=args.json, tty=sys.stdout.isatty(),
            duration=args.duration, interval=args.interval,
        )  # fmt: skip
        run.on_tick = _Script(served, run)
        return run.run()
    finally:
        if stop_metrics is not None:
            stop_metrics()
        served.stop()
