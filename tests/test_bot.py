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
from bybit_hybrid_core import Config, Credentials, HealthRules

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
    served: ServedExchange, body: Callable[[BybitHybridStream, Calls], Awaitable[None]], config: Config
) -> Calls:
    calls: Calls = []

    async def main() -> None:
        stream = BybitHybridStream(
            event_handler=lambda name, data: calls.append((name, data)), config=config, cafile=served.ca_file
        )
        await stream.start()
        try:
            await body(stream, calls)
        finally:
            await stream.stop()

    with no_leaks():
        asyncio.run(main())
    return calls
