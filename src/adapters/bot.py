"""The drop-in for an existing asyncio bot: events become `event_handler(name, data)` calls with plain dicts.

    stream = BybitHybridStream(api_key, api_secret, event_handler=router.emit, testnet=False)
    await stream.start(wait=30)   # or start() to return at once
    stream.get_status()   # connected / authenticated / subscriptions / reconnects / health / metrics
    await stream.stop()

Names: "position.update", "position.opened", "position.closed", "stream.status", "stream.health". The dict
format is in docs/bot.md. Numbers are floats by default, because an existing position manager does float
arithmetic (Decimal + float raises); pass `decimals=True` for `Decimal`. Built on the stdlib-asyncio adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from bybit_hybrid_core import (
    Authenticated,
    AuthFailed,
    Event,
    HandshakeRefused,
    Health,
    HealthChanged,
    Link,
    LinkDown,
    LinkUp,
    Metrics,
    Position,
    PositionClosed,
    PositionOpened,
    PositionUpdate,
    Subscribed,
    SubscriptionFailed,
)

from ._net import describe
from .asyncio import HybridStream

__all__ = ["BybitHybridStream", "EventHandler", "health_dict", "metrics_dict"]

log = logging.getLogger("bybit_hybrid.bot")
EventHandler = Callable[[str, dict[str, Any]], Any]  # may return an awaitable
SOURCES = {"position": "websocket", "mark": "ticker", "snapshot": "rest"}
_STATUS: dict[type[Event], str] = {
    LinkUp: "connected", LinkDown: "disconnected", Authenticated: "authenticated",
    AuthFailed: "auth_failed", HandshakeRefused: "handshake_refused", Subscribed: "subscribed",
    SubscriptionFailed: "subscription_failed",
}  # fmt: skip


class BybitHybridStream:
    """Live positions for a bot, priced at the mark every ~100 ms. See the module docstring and docs/bot.md.

    Args:
        api_key, api_secret: else `BYBIT_API_KEY` / `BYBIT_API_SECRET`.
        event_handler: `handler(name, data)`, plain or async; its exceptions are logged, never fatal.
        testnet, demo: else `BYBIT_TESTNET` / `BYBIT_DEMO`.
        decimals: numbers as `Decimal` instead of float.
        **options: passed to the adapter (`categories`, `endpoints`, `cafile`, `timings`, ...).
    """

    def __init__(
        self, api_key: str | None = None, api_secret: str | None = None,
        event_handler: EventHandler | None = None, testnet: bool | None = None, *,
        demo: bool | None = None, decimals: bool = False, **options: Any,
    ) -> None:  # fmt: skip
        self._args: dict[str, Any] = dict(api_key=api_key, api_secret=api_secret, testnet=testnet, demo=demo)
        self._options = options
        self.stream = self._make()  # checks the arguments now; a fresh one on every start()
        self._handler = event_handler
        self._decimals = decimals
        self._pump: asyncio.Task[None] | None = None
        self.handler_errors = 0

    def _make(self) -> HybridStream:
        return HybridStream(**self._args, **self._options)

    def _number(self, value: Decimal) -> Any:
        return value if self._decimals else float(value)

    def _opt(self, value: Decimal | None) -> Any:
        return None if value is None else self._number(value)

    def __repr__(self) -> str:
        return f"<BybitHybridStream {'running' if self._pump else 'stopped'} {self.stream!r}>"

    async def start(self, wait: float | None = None) -> None:
        """Connect and start calling the handler; progress comes as "stream.status" events.

        Args:
            wait: None returns at once. A number of seconds waits until the stream is live (every link LIVE,
                positions synced; `HybridStream.wait_live`), the handler being called meanwhile.

        Raises:
            StartupFailed: (with `wait`) the stream was not live within `wait` seconds, or will not be
                (connection refused, geo-block, refused auth, ...: the message says which). The stream is
                stopped before it raises, so nothing is left running.
        """
        if self._pump is not None:
            return
        if self.stream.started:  # a stream runs once; a restart gets a fresh one
            self.stream = self._make()
        await self.stream.__aenter__()
        self._pump = asyncio.create_task(self._deliver(), name="bybit-hybrid-bot")
        if wait is None:
            return
        try:
            await self.stream.wait_live(wait)
        except BaseException:  # a failed start leaves nothing running (the caller will not stop() it)
            await self.stop()
            raise

    async def stop(self) -> None:
        """Close every connection and task. The handler is not called afterwards."""
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            await self.stream.__aexit__(None, None, None)

    def get_status(self) -> dict[str, Any]:
        """The stream at a glance; docs/bot.md has the shape.

        Top level: `running`, `connected` (every link), `authenticated`, `subscriptions` (confirmed topics,
        all links), `reconnects` and `reconnectAttempts` (the same total; the V3 client's name),
        `pending_events`, `handler_errors`, `health` (`core.health()`), `metrics` (`core.metrics()`, summed
        up) and `links` (per link: state, connected, authenticated, subscriptions, ..., last message age).
        """
        now = asyncio.get_running_loop().time() if self._pump else None
        core = self.stream.core
        links: dict[str, Any] = {}
        for link, status in core.status().items():
            seen = self.stream.links[link].last_receive
            links[link.value] = {
                "state": status.state, "connected": status.connected, "authenticated": status.authenticated,
                "subscriptions": list(status.subscriptions), "failed": dict(status.failed),
                "retrying": {topic: round(wait, 3) for topic, wait in status.retrying},
                "reconnects": status.reconnects, "last_pong_rtt": status.last_pong_rtt,
                "last_message_age": None if now is None or seen is None else round(now - seen, 3),
            }  # fmt: skip
        private = links.get(Link.PRIVATE.value)
        reconnects = sum(v["reconnects"] for v in links.values())
        return {
            "running": self._pump is not None,
            "connected": bool(links) and all(v["connected"] for v in links.values()),
            "authenticated": bool(private and private["authenticated"]),
            "subscriptions": sum(len(v["subscriptions"]) for v in links.values()),
            "reconnects": reconnects, "reconnectAttempts": reconnects,
            "pending_events": self.stream.pending, "handler_errors": self.handler_errors,
            "health": health_dict(core.health()), "metrics": metrics_dict(core.metrics()), "links": links,
        }  # fmt: skip

    # -------------------------------------------------------------------------------------- translation

    async def _deliver(self) -> None:
        while batch := await self.stream.next_batch():
            for event in batch:
                translated = self._translate(event)
                if translated is not None:
                    await self._call(*translated)

    async def _call(self, name: str, data: dict[str, Any]) -> None:
        if self._handler is None:
            return
        try:
            result = self._handler(name, data)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # the bot's bug must not stop its position feed
            self.handler_errors += 1
            log.exception("event_handler raised on %s; the stream goes on", name)
            if name != "stream.status":  # reported once, never a loop of reports
                await self._call(
                    "stream.status", {"event": "handler_error", "name": name, "error": describe(exc)}
                )

    def _translate(self, event: Event) -> tuple[str, dict[str, Any]] | None:
        match event:
            case HealthChanged(health=health):
                return "stream.health", health_dict(health)
            case PositionUpdate():
                return "position.update", self._position_update(event)
            case PositionOpened(position=position, cause=cause):
                return "position.opened", self._position(position, SOURCES[cause])
            case PositionClosed(position=position, cause=cause):
                data = self._position(position, SOURCES[cause])
                return "position.closed", data | {"size": self._number(Decimal(0)), "last_size": data["size"]}
        kind = _STATUS.get(type(event))
        if kind is None:
            return None
        data = {"event": kind, "link": event.link.value, "at": event.at}
        for field in ("reason", "retry_in", "hint", "status", "topics", "topic"):
            if hasattr(event, field):
                data[field] = getattr(event, field)
        return "stream.status", data

    def _position(self, position: Position, source: str) -> dict[str, Any]:
        num, opt = self._number, self._opt
        return {
            "symbol": position.symbol, "side": position.side, "size": num(position.size),
            "entry_price": num(position.avg_price), "avg_price": num(position.avg_price),
            "position_idx": position.position_idx, "category": position.category, "source": source,
            "leverage": opt(position.leverage), "liq_price": opt(position.liq_price),
            "take_profit": opt(position.take_profit), "stop_loss": opt(position.stop_loss),
            "trailing_stop": opt(position.trailing_stop), "seq": position.seq,
            "updated_ms": position.updated_ms, "timestamp": time.time(),
        }  # fmt: skip

    def _position_update(self, e: PositionUpdate) -> dict[str, Any]:
        opt = self._opt
        return {
            "symbol": e.symbol, "side": e.side, "size": self._number(e.size), "mark_price": opt(e.mark_price),
            "entry_price": self._number(e.avg_price), "avg_price": self._number(e.avg_price),
            "unrealised_pnl": opt(e.unrealised_pnl), "position_idx": e.position_idx, "category": e.category,
            "mark_ts": e.mark_ts, "source": SOURCES[e.cause], "cause": e.cause, "pnl_pct": opt(e.pnl_pct),
            "mark_age": e.mark_age, "stale": e.stale, "leverage": opt(e.leverage),
            "liq_price": opt(e.liq_price), "take_profit": opt(e.take_profit), "stop_loss": opt(e.stop_loss),
            "trailing_stop": opt(e.trailing_stop), "seq": e.seq, "updated_ms": e.updated_ms,
            "timestamp": time.time(),
        }  # fmt: skip


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def health_dict(health: Health) -> dict[str, Any]:
    """`core.health()` as plain data: verdict ("ok", "warning", "critical"), since (the stream's monotonic
    clock, s) and reasons (rule, level, detail, since), for `get_status()["health"]` and "stream.health"."""
    reasons = [
        {"rule": r.rule, "level": r.level, "detail": r.detail, "since": r.since} for r in health.reasons
    ]
    return {"verdict": health.verdict, "reasons": reasons, "since": health.since}


def metrics_dict(metrics: Metrics) -> dict[str, Any]:
    """A plain-data summary of `core.metrics()` for `get_status()["metrics"]` (docs/bot.md has the keys)."""
    latency = metrics.latency
    return {
        "events_per_second": round(metrics.events_per_second, 3),
        "latency_ms": {"p50": latency.p50_ms, "p95": latency.p95_ms, "p99": latency.p99_ms,
                       "samples": latency.count},
        "clock_offset_ms": metrics.clock_offset_ms,
        "open_positions": metrics.open_positions, "positions_with_ticker": metrics.positions_with_ticker,
        "problems": metrics.problems, "subscription_failures_1h": metrics.subscription_failures_1h,
        "links": {
            m.link.value: {
                "state": m.state, "uptime": round(m.uptime, 3), "messages": m.messages,
                "reconnects": m.reconnects, "ping_rtt_ms": _ms(m.ping_rtt),
            }
            for m in metrics.links
        },
    }  # fmt: skip
