"""The bot drop-in: handler(name, dict) calls a position manager reads without change, status, shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from bybit_hybrid import StartupFailed
from bybit_hybrid.bot import BybitHybridStream
from bybit_hybrid.server import ServedExchange

from adapter_helpers import no_leaks
from adapter_scenarios import FAST
from bybit_hybrid_core import (
    Config,
    Credentials,
    FallbackEnded,
    FallbackStarted,
    HealthRules,
    Link,
    LocalProtocolError,
    MarksCompared,
    Mode,
    ModeChanged,
    RollbackEnded,
    RolledBack,
    Rollout,
)
from bybit_hybrid_core._plane.rollout import in_share

Calls = list[tuple[str, dict[str, Any]]]
UPDATE_KEYS = {
    "symbol", "side", "size", "mark_price", "entry_price", "avg_price", "unrealised_pnl", "position_idx",
    "category", "mark_ts", "source",
}  # fmt: skip
PRIVATE_TOPICS = ("execution", "order", "position", "wallet")


class PositionManager:
    """What an existing bot's position manager does with the dicts: float arithmetic, no imports from us."""

    def __init__(self) -> None:
        self.positions: dict[tuple[str, int], dict[str, Any]] = {}
        self.trail_hits = 0

    def on_update(self, data: dict[str, Any]) -> None:
        pnl = (data["mark_price"] - data["entry_price"]) * data["size"] * (1 if data["side"] == "Buy" else -1)
        assert abs(pnl - data["unrealised_pnl"]) < 1e-6 * max(1.0, abs(pnl))
        if data["mark_price"] > data["entry_price"] * 1.0:  # a trailing stop would look at this
            self.trail_hits += 1
        self.positions[(data["symbol"], data["position_idx"])] = data

    def on_closed(self, data: dict[str, Any]) -> None:
        self.positions.pop((data["symbol"], data["position_idx"]), None)


async def wait_for(calls: Calls, predicate: Callable[[Calls], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate(calls):
            await asyncio.sleep(0.02)


def names(calls: Calls, name: str) -> list[dict[str, Any]]:
    return [data for n, data in calls if n == name]


def run(
    served: ServedExchange, body: Callable[[BybitHybridStream, Calls], Awaitable[None]], **kw: Any
) -> Calls:
    calls: Calls = []
    handler = kw.pop("event_handler", lambda name, data: calls.append((name, data)))

    async def main() -> None:
        stream = BybitHybridStream(
            served.api_key, served.api_secret, event_handler=handler, endpoints=served.endpoints,
            cafile=served.ca_file, timings=FAST, categories=("linear",), **kw,
        )  # fmt: skip
        await stream.start()
        try:
            await body(stream, calls)
        finally:
            await stream.stop()
        assert {t for t in asyncio.all_tasks() if t is not asyncio.current_task()} == set()

    with no_leaks():
        asyncio.run(main())
    return calls


def test_position_dicts_feed_an_existing_position_manager() -> None:
    manager = PositionManager()

    async def body(stream: BybitHybridStream, calls: Calls) -> None:
        await wait_for(
            calls, lambda c: any(d.get("topics") == PRIVATE_TOPICS for d in names(c, "stream.status"))
        )
        served.call(lambda ex: ex.open_position("BTCUSDT", "Buy", "0.5"))  # pushed on the private stream
        await wait_for(calls, lambda c: len({d["mark_price"] for d in names(c, "position.update")}) >= 3)
        served.call(lambda ex: ex.close_position("BTCUSDT"))
        await wait_for(calls, lambda c: bool(names(c, "position.closed")))
        status = stream.get_status()
        assert status["running"] and status["connected"] and status["authenticated"]
        assert "position" in status["links"]["private"]["subscriptions"]
        assert status["links"]["linear"]["last_message_age"] < 2.0
        assert status["links"]["linear"]["reconnects"] == 0

    with ServedExchange(tls=True) as served:
        calls = run(served, body)
    for name, data in calls:
        if name == "position.update":
            assert data.keys() >= UPDATE_KEYS
            assert isinstance(data["size"], float) and isinstance(data["mark_price"], float)
            assert data["source"] in ("websocket", "ticker", "rest")
            manager.on_update(data)
        elif name == "position.closed":
            assert data["size"] == 0.0 and data["last_size"] == 0.5
            manager.on_closed(data)
    assert manager.positions == {} and manager.trail_hits >= 0
    opened = names(calls, "position.opened")
    assert [(d["symbol"], d["side"], d["size"]) for d in opened] == [("BTCUSDT", "Buy", 0.5)]
    sources = {d["source"] for d in names(calls, "position.update")}
    assert {"websocket", "ticker"} <= sources
    events = [d["event"] for d in names(calls, "stream.status")]
    assert events.count("connected") == 2 and "authenticated" in events and "subscribed" in events


def test_reconnects_show_in_status_and_decimals_on_request() -> None:
    async def body(stream: BybitHybridStream, calls: Calls) -> None:
        served.call(lambda ex: ex.open_position("ETHUSDT", "Sell", "2"))
        await wait_for(calls, lambda c: any(d["source"] == "ticker" for d in names(c, "position.update")))
        served.drop_connections()
        await wait_for(
            calls, lambda c: [d["event"] for d in names(c, "stream.status")].count("authenticated") >= 2
        )
        await wait_for(calls, lambda c: stream.get_status()["connected"])
        assert stream.get_status()["reconnects"] >= 2

    with ServedExchange(tls=True) as served:
        calls = run(served, body, decimals=True)
    update = names(calls, "position.update")[-1]
    assert isinstance(update["mark_price"], Decimal) and update["side"] == "Sell"
    downs = [d for d in names(calls, "stream.status") if d["event"] == "disconnected"]
    assert {d["link"] for d in downs} == {"linear", "private"} and all("retry_in" in d for d in downs)


def test_handler_errors_are_logged_counted_and_never_fatal(caplog: pytest.LogCaptureFixture) -> None:
    seen: Calls = []

    async def handler(name: str, data: dict[str, Any]) -> None:  # async handlers are awaited
        seen.append((name, data))
        if name == "position.update":
            raise KeyError("the bot's bug")

    async def body(stream: BybitHybridStream, calls: Calls) -> None:
        served.call(lambda ex: ex.open_position("BTCUSDT", "Buy", "1"))
        await wait_for(seen, lambda c: len(names(c, "position.update")) >= 3)
        assert stream.handler_errors >= 3
        assert stream.get_status()["handler_errors"] == stream.handler_errors

    with ServedExchange(tls=True) as served, caplog.at_level(logging.ERROR):
        run(served, body, event_handler=handler)
    errors = [d for d in names(seen, "stream.status") if d["event"] == "handler_error"]
    assert errors and errors[0]["name"] == "position.update" and "the bot's bug" in errors[0]["error"]
    assert "event_handler raised on position.update" in caplog.text


def test_configuration_from_the_environment_and_no_secret_in_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "env-secret-value-123"
    monkeypatch.setenv("BYBIT_API_KEY", "env-key")
    monkeypatch.setenv("BYBIT_API_SECRET", secret)
    monkeypatch.setenv("BYBIT_TESTNET", "true")
    stream = BybitHybridStream(event_handler=print)
    config = stream.stream.settings.config
    assert config.credentials is not None and config.credentials.api_key == "env-key"
    assert config.urls.private_base == "wss://stream-testnet.bybit.com"
    assert secret not in repr(stream) + repr(stream.stream) + repr(stream.stream.settings) + repr(config)
    monkeypatch.setenv("BYBIT_TESTNET", "maybe")
    with pytest.raises(Exception, match="BYBIT_TESTNET"):
        BybitHybridStream()


def test_stop_without_start_and_restart() -> None:
    async def body(stream: BybitHybridStream, calls: Calls) -> None:
        await wait_for(calls, lambda c: stream.get_status()["authenticated"])
        await stream.stop()
        assert not stream.get_status()["running"]
        await stream.start()
        await wait_for(
            calls, lambda c: [d["event"] for d in names(c, "stream.status")].count("authenticated") >= 2
        )

    with ServedExchange(tls=True) as served:
        run(served, body)
    asyncio.run(BybitHybridStream("k", "s").stop())


def test_start_with_wait_returns_live_and_status_has_the_v3_fields_health_and_metrics() -> None:
    async def main(served: ServedExchange) -> dict[str, Any]:
        stream = BybitHybridStream(
            served.api_key, served.api_secret, event_handler=lambda n, d: None, endpoints=served.endpoints,
            cafile=served.ca_file, timings=FAST, categories=("linear",),
        )  # fmt: skip
        await stream.start(wait=10.0)  # a hang guard: it returns as soon as every link is live
        try:
            return stream.get_status()
        finally:
            await stream.stop()

    with ServedExchange(tls=True) as served, no_leaks():
        served.call(lambda ex: ex.open_position("BTCUSDT", "Buy", "0.5"))
        status = asyncio.run(main(served))
    json.dumps(status)  # plain data all the way down
    assert status["connected"] and status["authenticated"]
    assert all(link["state"] == "LIVE" for link in status["links"].values())
    assert status["subscriptions"] == sum(len(v["subscriptions"]) for v in status["links"].values())
    assert status["subscriptions"] >= len(PRIVATE_TOPICS)  # the position's ticker may still be on its way
    assert status["reconnectAttempts"] == status["reconnects"] == 0
    assert status["health"]["verdict"] in ("ok", "warning", "critical")
    assert isinstance(status["health"]["reasons"], list)
    metrics = status["metrics"]
    assert metrics.keys() >= {
        "events_per_second", "latency_ms", "clock_offset_ms", "open_positions", "positions_with_ticker",
        "links",
    }  # fmt: skip
    assert metrics["latency_ms"].keys() >= {"p50", "p95", "p99"}
    assert metrics["open_positions"] == 1
    assert set(metrics["links"]) == {"linear", "private"}
    assert all({"uptime", "messages"} <= v.keys() for v in metrics["links"].values())


def test_start_with_wait_raises_startup_failed_and_leaves_nothing_running() -> None:
    async def main(served: ServedExchange) -> tuple[StartupFailed, bool]:
        stream = BybitHybridStream(
            served.api_key, "wrong-secret", endpoints=served.endpoints, cafile=served.ca_file, timings=FAST,
            categories=("linear",),
        )  # fmt: skip
        with pytest.raises(StartupFailed) as caught:
            await stream.start(wait=10.0)
        assert {t for t in asyncio.all_tasks() if t is not asyncio.current_task()} == set()
        return caught.value, stream.get_status()["running"]

    with ServedExchange(tls=True) as served, no_leaks():
        error, running = asyncio.run(main(served))
    assert error.kind == "auth" and "refused the API key" in str(error) and not running


def test_health_changes_reach_the_handler_as_stream_health() -> None:
    async def body(stream: BybitHybridStream, calls: Calls) -> None:
        await wait_for(calls, lambda c: stream.get_status()["authenticated"])
        served.kill()  # every link down: past link_down_warning the verdict turns to warning
        await wait_for(calls, lambda c: any(d["verdict"] != "ok" for d in names(c, "stream.health")))
        served.revive()
        await wait_for(
            calls,
            lambda c: bool(names(c, "stream.health")) and names(c, "stream.health")[-1]["verdict"] == "ok",
        )

    with ServedExchange(tls=True) as served:
        config = Config(
            credentials=Credentials(served.api_key, served.api_secret), endpoints=served.endpoints,
            timings=FAST, categories=("linear",), health=HealthRules(link_down_warning=0.2),
        )  # fmt: skip
        calls = run_with_config(served, body, config)
    health = names(calls, "stream.health")
    bad = next(d for d in health if d["verdict"] != "ok")
    assert bad["reasons"] and {"rule", "level", "detail", "since"} <= bad["reasons"][0].keys()
    assert any(r["rule"] == "link_down_warning" for r in bad["reasons"])
    json.dumps(health)


def run_with_config(
    served: ServedExchange,
    body: Callable[[BybitHybridStream, Calls], Awaitable[None]],
    config: Config,
    **kw: Any,
) -> Calls:
    calls: Calls = []

    async def main() -> None:
        stream = BybitHybridStream(
            event_handler=lambda name, data: calls.append((name, data)), config=config,
            cafile=served.ca_file, **kw,
        )  # fmt: skip
        await stream.start()
        try:
            await body(stream, calls)
        finally:
            await stream.stop()

    with no_leaks():
        asyncio.run(main())
    return calls


# ------------------------------------------------------------------------------------------- the rollout

UPDATE_SHAPE = UPDATE_KEYS | {
    "avg_price", "cause", "mark_source", "pnl_pct", "mark_age", "stale", "leverage", "liq_price",
    "take_profit", "stop_loss", "trailing_stop", "seq", "updated_ms", "closed", "at", "timestamp",
}  # fmt: skip


def rollout_config(served: ServedExchange, health: HealthRules | None = None, **rollout: Any) -> Config:
    """The served exchange's config with quick REST polling (and the caller's health rules)."""
    return Config(
        credentials=Credentials(served.api_key, served.api_secret), endpoints=served.endpoints,
        timings=FAST, categories=("linear",), health=health or HealthRules(),
        rollout=Rollout(**{"poll_interval": 0.2} | rollout),
    )  # fmt: skip


def closes(calls: Calls) -> list[tuple[str, dict[str, Any]]]:
    """The handler calls a close made: the size-0 position.update and position.closed, in order."""
    return [(n, d) for n, d in calls if n == "position.closed" or (n == "position.update" and d["closed"])]


def test_the_mode_comes_from_hybrid_mode_and_bad_values_say_what_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def config(**kw: Any) -> Config:
        keys = () if "config" in kw else ("k", "s")
        return BybitHybridStream(*keys, **kw).stream.settings.config

    for name in ("HYBRID_MODE", "HYBRID_SHARE", "HYBRID_AUTO_ROLLBACK", "HYBRID_RETURN_AFTER"):
        monkeypatch.delenv(name, raising=False)
    unset = config()
    assert unset.mode is Mode.PRODUCTION and unset.rollout.auto_rollback  # the drop-in's defaults
    assert unset.rollout.return_after == Rollout().return_after
    monkeypatch.setenv("HYBRID_MODE", " Cutover ")
    monkeypatch.setenv("HYBRID_SHARE", "0.25")
    monkeypatch.setenv("HYBRID_AUTO_ROLLBACK", "false")
    monkeypatch.setenv("HYBRID_RETURN_AFTER", "manual")
    chosen = config()
    assert chosen.mode is Mode.CUTOVER and chosen.rollout.share == 0.25
    assert not chosen.rollout.auto_rollback and chosen.rollout.return_after is None
    won = config(mode="canary", share=1.0, auto_rollback=True, return_after=45)  # the arguments win
    assert won.mode is Mode.CANARY and won.rollout.share == 1.0
    assert won.rollout.auto_rollback and won.rollout.return_after == 45.0
    monkeypatch.setenv("HYBRID_RETURN_AFTER", "120")
    assert config().rollout.return_after == 120.0
    for mode in ("rest", "canary", "parallel", "cutover", "production"):
        monkeypatch.setenv("HYBRID_MODE", mode)
        assert config().mode.value == mode
    monkeypatch.setenv("HYBRID_MODE", "")  # empty is unset
    assert config().mode is Mode.PRODUCTION
    given = Config(credentials=Credentials("k", "s"), mode=Mode.PARALLEL, rollout=Rollout(return_after=9))
    from_config = config(config=given)  # a Config's own settings stand unless set here
    assert from_config.mode is Mode.PARALLEL and from_config.rollout.return_after == 120.0
    bad = [
        ("HYBRID_MODE", "live", "rest, canary, parallel, cutover, production"),
        ("HYBRID_SHARE", "half", "from 0 to 1"), ("HYBRID_SHARE", "1.5", "from 0 to 1"),
        ("HYBRID_SHARE", "nan", "from 0 to 1"), ("HYBRID_AUTO_ROLLBACK", "maybe", "true/false"),
        ("HYBRID_RETURN_AFTER", "-5", "'manual'"), ("HYBRID_RETURN_AFTER", "soon", "'manual'"),
    ]  # fmt: skip
    for name, value, advice in bad:
        with monkeypatch.context() as env:
            env.setenv(name, value)
            with pytest.raises(LocalProtocolError, match=name) as caught:
                config()
            assert advice in str(caught.value)
    with pytest.raises(LocalProtocolError, match="not a rollout mode"):
        config(mode="turbo")
    with pytest.raises(LocalProtocolError, match="share"):
        config(share=-0.1)
    monkeypatch.setenv("HYBRID_MODE", "canary")
    with pytest.raises(LocalProtocolError, match="api_key"):  # REST polling needs the keys
        BybitHybridStream()
    stream = BybitHybridStream("k", "s", mode="rest")
    stream.set_mode("cutover", share=0.5)  # before start: what the start uses
    assert stream.mode == "cutover" and stream.stream.settings.config.rollout.share == 0.5
    with pytest.raises(LocalProtocolError, match="not a rollout mode"):
        stream.set_mode("sideways")
    assert not stream.resume()


def test_a_close_is_also_a_position_update_of_size_zero_exactly_once() -> None:
    manager = PositionManager()  # listens to position.update only

    async def body(stream: BybitHybridStream, calls: Calls) -> None:
        served.call(lambda ex: ex.open_position("BTCUSDT", "Buy", "0.5"))
        await wait_for(calls, lambda c: any(d["source"] == "ticker" for d in names(c, "position.update")))
        served.call(lambda ex: ex.close_position("BTCUSDT"))
        await wait_for(calls, lambda c: bool(names(c, "position.closed")))
        served.call(lambda ex: ex.open_position("BTCUSDT", "Sell", "2"))
        await wait_for(calls, lambda c: len(names(c, "position.opened")) == 2)
        served.call(lambda ex: ex.close_position("BTCUSDT"))
        await wait_for(calls, lambda c: len(names(c, "position.closed")) == 2)
        await asyncio.sleep(0.3)  # nothing more comes for the closes

    with ServedExchange(tls=True) as served:
        calls = run(served, body)
    updates = names(calls, "position.update")
    assert all(d.keys() == UPDATE_SHAPE for d in updates)  # the close's too
    shown = closes(calls)
    assert [n for n, _ in shown] == ["position.update", "position.closed"] * 2  # the update first
    pairs = zip(shown[::2], shown[1::2], ("Buy", "Sell"), (0.5, 2.0), strict=True)
    for (_, update), (_, closed), side, size in pairs:
        assert update["closed"] and update["size"] == 0.0 and update["unrealised_pnl"] == 0.0
        assert (update["symbol"], update["side"], update["category"], update["position_idx"]) == (
            "BTCUSDT", side, "linear", 0,
        )  # fmt: skip
        assert update["avg_price"] == closed["avg_price"] > 0 and closed["last_size"] == size
        assert isinstance(update["mark_price"], float)  # the last mark it was priced at
        assert update["at"] == closed["at"]
    for data in updates:
        manager.on_update(data)  # float arithmetic works on the close too
    assert [p["size"] for p in manager.positions.values()] == [0.0]


def test_canary_delivers_rest_driven_positions_and_nothing_from_the_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HYBRID_MODE", "canary")

    async def body(stream: BybitHybridStream, calls: Calls) -> None:
        assert stream.mode == "canary"
        await wait_for(calls, lambda c: stream.get_status()["authenticated"])  # the stream runs beside
        served.call(lambda ex: ex.open_position("ETHUSDT", "Sell", "3"))
        await wait_for(calls, lambda c: len(names(c, "position.update")) >= 3)
        status = stream.get_status()
        served.call(lambda ex: ex.close_position("ETHUSDT"))
        await wait_for(calls, lambda c: bool(names(c, "position.closed")))
        json.dumps(status)
        rollout = status["rollout"]
        assert rollout["mode"] == "canary" and rollout["rest_polling"] and rollout["rest_requests"] >= 0
        assert rollout["rolled_back_for"] is None and rollout["rollback_reasons"] == []
        assert rollout["fallbacks"] == {"positions": False, "marks": []} and rollout["auto_rollback"]
        assert rollout["divergence"].keys() >= {"comparisons", "divergences", "max_pct"}
        assert status["metrics"]["links"]["private"]["messages"] > 0  # monitored, not delivered
        assert stream.stream.core.metrics().events.get("TickerUpdate", 0) == 0  # none reached the drop-in

    with ServedExchange(tls=True) as served:
        calls = run_with_config(served, body, rollout_config(served))
    updates = names(calls, "position.update")
    assert {(d["source"], d["mark_source"], d["cause"]) for d in updates} == {("rest", "rest", "snapshot")}
    assert [d["closed"] for d in updates].count(True) == 1 and updates[-1]["closed"]
    opened, closed = names(calls, "position.opened"), names(calls, "position.closed")
    assert [d["source"] for d in opened + closed] == ["rest", "rest"]
    assert {n for n, _ in calls} <= {"position.update", "position.opened", "position.closed",
                                     "stream.status", "stream.health"}  # fmt: skip


def last_update(calls: Calls, symbol: str) -> dict[str, Any]:
    return [d for d in names(calls, "position.update") if d["symbol"] == symbol][-1]


def test_a_mode_switch_at_run_time_hands_over_with_no_duplicate_open_and_no_lost_close() -> None:
    assert in_share("BTCUSDT", 0.3) and not in_share("ETHUSDT", 0.3)  # cutover at 0.3 splits them
    last = last_update

    async def body(stream: BybitHybridStream, calls: Calls) -> None:
        served.call(lambda ex: ex.open_position("BTCUSDT", "Buy", "1"))
        await wait_for(calls, lambda c: any(d["source"] == "ticker" for d in names(c, "position.update")))
        await asyncio.to_thread(stream.set_mode, "rest")  # from another thread: it waits for the loop
        await wait_for(calls, lambda c: stream.mode == "rest")  # handed over after a fresh REST poll
        await wait_for(calls, lambda c: last(c, "BTCUSDT")["source"] == "rest")
        served.call(lambda ex: ex.open_position("ETHUSDT", "Sell", "2"))  # opened while REST drives
        served.call(lambda ex: ex.close_position("BTCUSDT"))  # closed while REST drives
        await wait_for(calls, lambda c: bool(names(c, "position.closed")) and
                       any(d["symbol"] == "ETHUSDT" for d in names(c, "position.update")))  # fmt: skip
        served.call(lambda ex: ex.open_position("BTCUSDT", "Sell", "0.5"))
        await wait_for(calls, lambda c: len(names(c, "position.opened")) == 3)
        stream.set_mode("cutover", share=0.3)  # BTCUSDT goes to the stream, ETHUSDT stays on REST
        await wait_for(calls, lambda c: stream.mode == "cutover")
        await wait_for(calls, lambda c: last(c, "BTCUSDT")["source"] == "ticker")
        assert last(calls, "ETHUSDT")["source"] == "rest"
        rollout = stream.get_status()["rollout"]
        assert (rollout["mode"], rollout["share"], rollout["rest_polling"]) == ("cutover", 0.3, True)
        stream.set_mode("production")
        await wait_for(calls, lambda c: stream.mode == "production")
        await wait_for(calls, lambda c: last(c, "ETHUSDT")["source"] in ("ticker", "websocket"))
        served.call(lambda ex: (ex.close_position("ETHUSDT"), ex.close_position("BTCUSDT")))  # on the stream
        await wait_for(calls, lambda c: len(names(c, "position.closed")) == 3)
        await asyncio.sleep(0.5)  # REST would have polled more than once meanwhile: nothing is told twice

    with ServedExchange(tls=True) as served:
        calls = run_with_config(served, body, rollout_config(served))
    opened = [(d["symbol"], d["side"]) for d in names(calls, "position.opened")]
    assert opened == [("BTCUSDT", "Buy"), ("ETHUSDT", "Sell"), ("BTCUSDT", "Sell")]
    assert sorted(d["symbol"] for d in names(calls, "position.closed")) == ["BTCUSDT", "BTCUSDT", "ETHUSDT"]
    assert len(closes(calls)) == 6  # each close once as position.update (size 0), once as position.closed
    modes = [(d["mode"], d["previous"], d["share"]) for d in names(calls, "stream.mode")]
    assert modes == [("rest", "production", 1.0), ("cutover", "rest", 0.3), ("production", "cutover", 1.0)]
    by_symbol: dict[str, list[str]] = {}
    for name, data in calls:  # the handler's own view: updates only between an open and its close
        if name.startswith("position."):
            seen = by_symbol.setdefault(data["symbol"], [])
            if name != "position.update" or not seen or seen[-1] != "position.update":
                seen.append(name)
    assert by_symbol["ETHUSDT"] == ["position.opened", "position.update", "position.closed"]
    assert by_symbol["BTCUSDT"] == ["position.opened", "position.update", "position.closed"] * 2


def test_production_to_cutover_hands_the_symbols_outside_the_share_to_rest() -> None:
    async def body(stream: BybitHybridStream, calls: Calls) -> None:
        served.call(
            lambda ex: (ex.open_position("BTCUSDT", "Buy", "1"), ex.open_position("ETHUSDT", "Sell", "2"))
        )
        await wait_for(calls, lambda c: len(names(c, "position.opened")) == 2)
        stream.set_mode("cutover", share=0.3)
        await wait_for(calls, lambda c: stream.mode == "cutover")
        await wait_for(calls, lambda c: last_update(c, "ETHUSDT")["source"] == "rest")

    with ServedExchange(tls=True) as served:
        run_with_config(served, body, rollout_config(served))


def test_a_critical_verdict_rolls_back_to_rest_which_drives_within_30_s_and_resume_ends_it() -> None:
    health = HealthRules(auth_refusals_critical=1)  # one refused auth is critical: a quick trigger

    async def body(stream: BybitHybridStream, calls: Calls) -> None:
        served.call(lambda ex: ex.open_position("BTCUSDT", "Buy", "0.5"))
        await wait_for(calls, lambda c: any(d["source"] == "ticker" for d in names(c, "position.update")))
        served.call(lambda ex: (ex.reject_auth(None), ex.drop_link("private")))
        await wait_for(calls, lambda c: bool(names(c, "stream.rollback")))
        rolled_back_at = names(calls, "stream.rollback")[0]["at"]
        await wait_for(calls, lambda c: any(d["source"] == "rest" and d["at"] >= rolled_back_at
                                            for d in names(c, "position.update")), timeout=10)  # fmt: skip
        status = stream.get_status()["rollout"]
        assert status["rolled_back_for"] is not None and status["rollback_reasons"]
        served.call(lambda ex: ex.heal())
        await wait_for(calls, lambda c: stream.get_status()["health"]["verdict"] != "critical", timeout=10)
        assert await asyncio.to_thread(stream.resume)
        await wait_for(calls, lambda c: bool(names(c, "stream.rollback_ended")))
        assert not stream.resume()  # none in force any more
        await wait_for(calls, lambda c: names(c, "position.update")[-1]["source"] == "ticker", timeout=10)

    with ServedExchange(tls=True) as served:
        calls = run_with_config(served, body, rollout_config(served, health))
    rollback = names(calls, "stream.rollback")
    assert len(rollback) == 1 and rollback[0]["mode"] == "production" and rollback[0]["reasons"]
    critical = next(d for d in names(calls, "stream.health") if d["verdict"] == "critical")
    first_rest = next(d for d in names(calls, "position.update") if d["source"] == "rest"
                      and d["at"] >= rollback[0]["at"])  # fmt: skip
    assert first_rest["at"] - critical["since"] <= 30.0  # the core's clock, not the wall's
    ended = names(calls, "stream.rollback_ended")
    assert [d["how"] for d in ended] == ["by hand"] and ended[0]["rolled_back_for"] > 0
    assert [d["symbol"] for d in names(calls, "position.opened")] == ["BTCUSDT"]  # no repeat at hand-overs
    assert names(calls, "position.closed") == []
    json.dumps(calls)


def test_rollout_events_become_the_stream_events_the_docs_name() -> None:
    stream = BybitHybridStream("k", "s")
    link, at = Link.PRIVATE, 12.5
    events = [
        ModeChanged(link=link, at=at, mode="cutover", previous="parallel", share=0.5),
        RolledBack(link=link, at=at, reasons=("no event for 301 s",), mode="production"),
        RollbackEnded(link=link, at=at, how="healthy", rolled_back_for=300.0),
        FallbackStarted(link=link, at=at, what="marks", symbols=("BTCUSDT",), reason="stale 5 s"),
        FallbackEnded(link=link, at=at, what="marks", symbols=("BTCUSDT",)),
        MarksCompared(link=link, at=at, category="linear", symbol="BTCUSDT", stream_mark=Decimal("101"),
                      rest_mark=Decimal("100"), divergence_pct=Decimal("1.0000"), diverged=True),
        MarksCompared(link=link, at=at, category="linear", symbol="BTCUSDT", stream_mark=Decimal("100"),
                      rest_mark=Decimal("100"), divergence_pct=Decimal("0"), diverged=False),
    ]  # fmt: skip
    out = [item for event in events for item in stream._translate(event)]  # no comparison that agreed
    assert out == [
        ("stream.mode", {"mode": "cutover", "previous": "parallel", "share": 0.5, "at": at}),
        ("stream.rollback", {"event": "rolled_back", "reasons": ["no event for 301 s"], "mode": "production",
                             "at": at}),
        ("stream.rollback_ended", {"event": "rollback_ended", "how": "healthy", "rolled_back_for": 300.0,
                                   "at": at}),
        ("stream.fallback", {"event": "started", "what": "marks", "symbols": ["BTCUSDT"],
                             "reason": "stale 5 s", "at": at}),
        ("stream.fallback", {"event": "ended", "what": "marks", "symbols": ["BTCUSDT"], "reason": "",
                             "at": at}),
        ("stream.divergence", {"category": "linear", "symbol": "BTCUSDT", "stream_mark": 101.0,
                               "rest_mark": 100.0, "divergence_pct": 1.0, "threshold_pct": 1.0, "at": at}),
    ]  # fmt: skip


def test_the_positions_fallback_reaches_the_handler_as_stream_fallback() -> None:
    async def body(stream: BybitHybridStream, calls: Calls) -> None:
        served.call(lambda ex: ex.open_position("BTCUSDT", "Buy", "0.5"))
        await wait_for(calls, lambda c: any(d["source"] == "ticker" for d in names(c, "position.update")))
        served.call(lambda ex: (ex.reject_auth(None), ex.drop_link("private")))  # the private link stays down
        await wait_for(calls, lambda c: bool(names(c, "stream.fallback")))
        assert stream.get_status()["rollout"]["fallbacks"]["positions"]
        served.call(lambda ex: ex.heal())
        await wait_for(calls, lambda c: names(c, "stream.fallback")[-1]["event"] == "ended", timeout=10)

    with ServedExchange(tls=True) as served:
        config = rollout_config(served, positions_fallback_after=0.3, auto_rollback=False)
        calls = run_with_config(served, body, config, auto_rollback=False)
    fallback = names(calls, "stream.fallback")
    assert [(d["event"], d["what"]) for d in fallback] == [("started", "positions"), ("ended", "positions")]
    assert names(calls, "stream.rollback") == []  # turned off


def test_a_diverging_rest_mark_reaches_the_handler_and_the_status() -> None:
    async def body(stream: BybitHybridStream, calls: Calls) -> None:
        served.call(lambda ex: ex.open_position("BTCUSDT", "Buy", "0.5"))
        await wait_for(calls, lambda c: any(d["source"] == "ticker" for d in names(c, "position.update")))
        served.call(lambda ex: ex.rest_mark_divergence("BTCUSDT", 5))  # REST's mark 5 % off the stream's
        await wait_for(calls, lambda c: bool(names(c, "stream.divergence")), timeout=10)
        divergence = stream.get_status()["rollout"]["divergence"]
        assert divergence["divergences"] >= 1 and divergence["max_pct"] > 4.0
        assert divergence["by_symbol"]["linear:BTCUSDT"]["divergences"] >= 1

    with ServedExchange(tls=True) as served:
        config = rollout_config(served, compare_interval=0.2)
        calls = run_with_config(served, body, config, auto_rollback=False)
    seen = names(calls, "stream.divergence")[0]
    assert (seen["category"], seen["symbol"], seen["threshold_pct"]) == ("linear", "BTCUSDT", 1.0)
    assert 4.0 < seen["divergence_pct"] < 6.0 and seen["rest_mark"] > seen["stream_mark"]
    json.dumps(calls)


def test_rest_mode_polls_positions_with_no_websocket() -> None:
    async def body(stream: BybitHybridStream, calls: Calls) -> None:
        served.call(lambda ex: ex.open_position("SOLUSDT", "Buy", "4"))
        await wait_for(calls, lambda c: bool(names(c, "position.update")))
        served.call(lambda ex: ex.close_position("SOLUSDT"))
        await wait_for(calls, lambda c: bool(names(c, "position.closed")))
        status = stream.get_status()
        assert served.accepted == 0 and status["links"] == {} and status["rollout"]["rest_requests"] >= 0
        assert status["rollout"]["mode"] == "rest" and status["rollout"]["rest_polling"]

    with ServedExchange(tls=True) as served:
        calls = run_with_config(served, body, rollout_config(served), mode="rest")
    assert {d["source"] for d in names(calls, "position.update")} == {"rest"}
    assert [n for n, _ in closes(calls)] == ["position.update", "position.closed"]
    assert names(calls, "stream.status") == []  # no link to report on
