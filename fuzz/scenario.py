"""Steps of a fuzz scenario as data, so a run can be replayed exactly (the determinism check) and printed.

A `Step` is (name, args). `apply(sim, step)` performs it on a Simulation: trading on the venue (open, grow,
shrink, flip, close, hedge mode), moving marks, pins, faults, REST delays, outages, rollout mode switches
and the passage of time. Steps that
the venue itself refuses (an order Bybit would reject, a mode switch with a position open) are no-ops, like a
bot's rejected request; anything else that raises is a bug.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis.database import DirectoryBasedExampleDatabase

from bybit_hybrid_core import (
    Config,
    Credentials,
    Endpoints,
    HealthRules,
    LocalProtocolError,
    Mode,
    Rollout,
    Timings,
)
from bybit_hybrid_core.testing import DEFAULT_START_MS, OrderRejected, Simulation, Venue

Step = tuple[str, tuple[Any, ...]]

# Failing examples are saved here (gitignored) and replayed first on the next run.
FAILURES = DirectoryBasedExampleDatabase(str(Path(__file__).resolve().parent / "failures"))

CREDS = Credentials("test-key", "test-secret")
SYMBOLS: tuple[tuple[str, str], ...] = (("linear", "BTCUSDT"), ("linear", "ETHUSDT"), ("inverse", "BTCUSD"))
KINDS = ("private", "linear", "inverse", "public", "all")
# Every fault of FakeExchange (and the network's refused dials), by what it hits.
LINK_FAULTS = ("drop", "drop_abrupt", "half_open", "lose_pongs", "delay_pongs", "raw_bytes", "restart_drop",
               "fail_dials")  # fmt: skip
DATA_FAULTS = ("garbage", "poison", "truncated", "oversized", "duplicate", "reorder", "restart")
SERVICE_FAULTS = ("reject_auth", "reject_auth_forever", "fail_subscribe", "fail_subscribe_n", "clock_skew",
                  "rest_fail", "rest_error", "geo_block")  # fmt: skip
FAULT_NAMES = LINK_FAULTS + DATA_FAULTS + SERVICE_FAULTS
GARBAGE = ('{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","markPrice":"1e999999"}}',
           '{"op":"pong"', "[1,2,3]", '{"success":true,"op":"auth"}', "\ufffd\x00")  # fmt: skip
# Values that decode as JSON but no market can have (the never-frozen issue's poisonings): a bare number
# where Bybit sends a decimal string, a huge one, a negative mark, a negative size. None may reach a position,
# an event's mark or PnL. And a delta whose `cs` is far ahead of the real ones: it must not freeze the ticker.
POISON = (
    '{"topic":"tickers.BTCUSDT","type":"delta","ts":1767225600000,"cs":1,'
    '"data":{"symbol":"BTCUSDT","markPrice":1e300}}',
    '{"topic":"tickers.ETHUSDT","type":"delta","ts":1767225600000,"cs":1,'
    '"data":{"symbol":"ETHUSDT","markPrice":"-5"}}',
    '{"topic":"tickers.BTCUSD","type":"delta","ts":1767225600000,"cs":1,'
    '"data":{"symbol":"BTCUSD","markPrice":1e999}}',
    '{"topic":"position","id":"x","creationTime":1767225600000,"data":[{"category":"linear",'
    '"symbol":"BTCUSDT","side":"Buy","size":"-5","positionIdx":0,"entryPrice":"67000","seq":99999999999}]}',
    '{"topic":"tickers.BTCUSDT","type":"delta","ts":1767225600000,"cs":9000000000000000000,'
    '"data":{"symbol":"BTCUSDT","markPrice":"67000.1"}}',
)


def config(rollout: bool = False) -> Config:
    """Both categories of positions; a short ack timeout keeps healing quick. With `rollout`: the automatic
    rollback on, after 30 s with every link down, back after a minute healthy (test_fuzz_rollout.py)."""
    if not rollout:
        return Config(credentials=CREDS, endpoints=Endpoints.custom("ws://fake.bybit"), timings=Timings())
    return Config(
        credentials=CREDS,
        endpoints=Endpoints.custom("ws://fake.bybit"),
        health=HealthRules(links_down_critical=30.0),
        rollout=Rollout(auto_rollback=True, return_after=60.0),
    )


def new_sim(seed: int, latency: float, rollout: bool = False) -> Simulation:
    # The market steps every 0.5 s (Bybit: 0.1 s): fewer pushes per virtual second, same orderings.
    venue = Venue(seed, DEFAULT_START_MS, interval=0.5)
    return Simulation(config(rollout), seed=seed, latency=latency, venue=venue, publish_interval=0.5)


def apply(sim: Simulation, step: Step) -> None:
    """Perform one step."""
    name, args = step
    if name == "advance":
        sim.advance(args[0])
    elif name in ("order", "close", "flip", "hedge", "mark"):
        _trade(sim, name, *args)
    elif name == "track":
        sim.core.track(args[1], args[0])
    elif name == "untrack":
        sim.core.untrack(args[1], args[0])
    elif name == "rest_delay":
        sim.exchange.rest_delay(args[0])
    elif name == "fault":
        _fault(sim, *args)
    elif name == "mode":
        sim.core.set_mode(Mode(args[0]), args[1])
        sim.advance(0.0)  # its ModeChanged into `sim.events`
    elif name == "outage":  # `kind`'s links down, every upgrade refused, for `seconds`
        sim.exchange.geo_block()
        sim.exchange.drop_link(args[0], close_frame=False)
        sim.advance(args[1])
        sim.exchange.geo_block(False)
    else:
        raise ValueError(f"unknown step {name!r}")


def _trade(sim: Simulation, name: str, category: str, symbol: str, *args: Any) -> None:
    ex, venue = sim.exchange, sim.exchange.venue
    assert isinstance(venue, Venue)
    step = venue.instrument(category, symbol).qty_step
    try:
        if name == "order":
            side, lots, idx = args
            ex.place_order(symbol, side, step * lots, category, position_idx=idx)
        elif name == "close":
            ex.close_position(symbol, category, position_idx=args[0])
        elif name == "flip":
            held = ex.positions().get((category, symbol, 0))
            if held is not None:
                ex.place_order(symbol, "Sell" if held.side == "Buy" else "Buy", held.size * 2, category)
        elif name == "hedge":
            venue.set_hedge_mode(category, symbol, args[0])
        elif name == "mark":
            mark = ex.mark(symbol, category=category)
            tick = venue.instrument(category, symbol).tick
            ex.mark(symbol, (mark * (1 + Decimal(args[0]) / 100) / tick).to_integral_value() * tick, category)
    except (OrderRejected, LocalProtocolError):
        pass  # Bybit would refuse it too (wrong positionIdx for the mode, a switch with positions open)


def _fault(sim: Simulation, name: str, kind: str, n: int) -> None:
    ex = sim.exchange
    match name:
        case "drop" | "drop_abrupt":
            ex.drop_link(kind, close_frame=name == "drop")
        case "half_open":
            ex.half_open(kind)
        case "lose_pongs":
            ex.lose_pongs(kind, n)
        case "delay_pongs":
            ex.delay_pongs(kind, (0.5, 4.0, 15.0)[n % 3])
        case "reject_auth":
            ex.reject_auth(n)
        case "reject_auth_forever":
            ex.reject_auth(None)
        case "fail_subscribe":
            _, symbol = SYMBOLS[n % len(SYMBOLS)]
            ex.fail_subscribe(f"tickers.{symbol}", n=1)
        case "fail_subscribe_n":  # refuse this topic N times, then accept
            _, symbol = SYMBOLS[n % len(SYMBOLS)]
            ex.fail_subscribe(f"tickers.{symbol}", n=n + 1)
        case "poison":
            for text in POISON[n % len(POISON) :: 3]:
                ex.send_garbage(kind, text)
        case "garbage":
            ex.send_garbage(kind, GARBAGE[n % len(GARBAGE)])
        case "truncated":
            ex.send_garbage(
                kind, '{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTC'[: 10 * n]
            )
        case "oversized":
            ex.send_garbage(kind, '{"topic":"tickers.BTCUSDT","pad":"' + "x" * 300_000 + '"}')
        case "raw_bytes":
            ex.send_garbage(kind, (b"\x81\x7f\xff\xff", b"\x88", b"\xff\x00\x10")[n % 3], raw=True)
        case "duplicate":
            ex.duplicate(kind, n, replies=n % 2 == 0)
        case "reorder":
            ex.reorder(kind, n + 1)
        case "restart" | "restart_drop":
            ex.restart_service(drop_links=name == "restart_drop")
        case "clock_skew":
            ex.clock_skew((-3_000, 4_000, 12_000)[n % 3])
        case "rest_fail":
            ex.rest_fail(n, status=(502, 503, 200)[n % 3])
        case "rest_error":
            ex.rest_fail(n, ret_code=(10002, 10006, 10016)[n % 3])
        case "geo_block":
            ex.geo_block()
        case "fail_dials":
            sim.fail_dials(n)
        case _:
            raise ValueError(f"unknown fault {name!r}")
