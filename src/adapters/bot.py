"""The drop-in for an existing asyncio bot: events become `event_handler(name, data)` calls with plain dicts.

    stream = BybitHybridStream(api_key, api_secret, event_handler=router.emit, testnet=False)
    await stream.start(wait=30)   # or start() to return at once
    stream.get_status()   # connected / authenticated / subscriptions / health / metrics / rollout
    stream.set_mode("cutover", share=0.5)   # the rollout plan's steps, at run time; stream.resume()
    await stream.stop()

Names: "position.update", "position.opened", "position.closed", "stream.status", "stream.health",
"stream.mode", "stream.rollback", "stream.rollback_ended", "stream.fallback", "stream.divergence". The dict
format is in docs/bot.md. Numbers are floats by default, because an existing position manager does float
arithmetic (Decimal + float raises); pass `decimals=True` for `Decimal`. A close is also a "position.update"
with size 0 and `closed: True` (just before "position.closed"), for a manager that listens to updates only.
The rollout mode comes from `mode=` or `HYBRID_MODE` (`rollout_config`). Built on the stdlib-asyncio adapter.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import inspect
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Literal, TypeVar

from bybit_hybrid_core import (
    Authenticated,
    AuthFailed,
    Config,
    Event,
    FallbackEnded,
    FallbackStarted,
    HandshakeRefused,
    Health,
    HealthChanged,
    HybridCore,
    Link,
    LinkDown,
    LinkUp,
    LocalProtocolError,
    MarksCompared,
    Metrics,
    Mode,
    ModeChanged,
    Position,
    PositionClosed,
    PositionKey,
    PositionOpened,
    PositionUpdate,
    RollbackEnded,
    RolledBack,
    Subscribed,
    SubscriptionFailed,
)

from ._net import describe
from .asyncio import HybridStream
from .config import settings

__all__ = [
    "BybitHybridStream",
    "EventHandler",
    "health_dict",
    "metrics_dict",
    "rollout_config",
    "rollout_dict",
]

log = logging.getLogger("bybit_hybrid.bot")
T = TypeVar("T")
EventHandler = Callable[[str, dict[str, Any]], Any]  # may return an awaitable
Translated = list[tuple[str, dict[str, Any]]]
SOURCES = {"position": "websocket", "mark": "ticker", "snapshot": "rest"}
_STATUS: dict[type[Event], str] = {
    LinkUp: "connected", LinkDown: "disconnected", Authenticated: "authenticated",
    AuthFailed: "auth_failed", HandshakeRefused: "handshake_refused", Subscribed: "subscribed",
    SubscriptionFailed: "subscription_failed",
}  # fmt: skip
_MODES = ", ".join(m.value for m in Mode)
_TRUE, _FALSE = frozenset({"1", "true", "yes", "on"}), frozenset({"0", "false", "no", "off"})
_SETTINGS_ARGS = frozenset(inspect.signature(settings).parameters)
ReturnAfter = float | Literal["manual"]


class BybitHybridStream:
    """Live positions for a bot, priced at the mark every ~100 ms. See the module docstring and docs/bot.md.

    Args:
        api_key, api_secret: else `BYBIT_API_KEY` / `BYBIT_API_SECRET`.
        event_handler: `handler(name, data)`, plain or async; its exceptions are logged, never fatal.
        testnet, demo: else `BYBIT_TESTNET` / `BYBIT_DEMO`.
        decimals: numbers as `Decimal` instead of float.
        mode, share, auto_rollback, return_after: the rollout (docs/bot.md, "Migrating from REST polling"),
            else `HYBRID_MODE`, `HYBRID_SHARE`, `HYBRID_AUTO_ROLLBACK`, `HYBRID_RETURN_AFTER`; see
            `rollout_config`. Unset: production, with the automatic rollback on.
        **options: passed to the adapter (`categories`, `endpoints`, `cafile`, `timings`, `config`, ...).

    Raises:
        LocalProtocolError: a bad argument or environment variable (the message says what to set).
    """

    def __init__(
        self, api_key: str | None = None, api_secret: str | None = None,
        event_handler: EventHandler | None = None, testnet: bool | None = None, *,
        demo: bool | None = None, decimals: bool = False, mode: Mode | str | None = None,
        share: float | None = None, auto_rollback: bool | None = None,
        return_after: ReturnAfter | None = None, **options: Any,
    ) -> None:  # fmt: skip
        base = settings(api_key, api_secret, testnet=testnet, demo=demo, **options)
        self._config = rollout_config(
            base.config, mode=mode, share=share, auto_rollback=auto_rollback, return_after=return_after
        )
        self._transport = {
            f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.name in _SETTINGS_ARGS
        }
        self._transport.pop("config", None)
        self.stream = self._make()  # a fresh one on every start()
        self._handler = event_handler
        self._decimals = decimals
        self._pump: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_marks: dict[PositionKey, PositionUpdate] = {}  # for the close's position.update
        self.handler_errors = 0

    def _make(self) -> HybridStream:
        return HybridStream(config=self._config, **self._transport)

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
        self._loop = asyncio.get_running_loop()
        self._last_marks.clear()
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

    # -------------------------------------------------------------------------------------------- rollout

    @property
    def mode(self) -> str:
        """The rollout mode now: what drives positions ("rest", "canary", ..., "production")."""
        return (self.stream.core.mode if self._pump else self._config.mode).value

    def set_mode(self, mode: Mode | str, share: float | None = None) -> None:
        """Switch the rollout mode at run time: one call, no position lost or repeated (the core hands
        over once the new driver is ready; a "stream.mode" event says so). Before `start()` or after
        `stop()` it sets the mode the next start uses; a restart keeps the mode chosen here.

        Safe from any thread: off the stream's event loop it waits until the loop has done it.

        Args:
            mode: "rest", "canary", "parallel", "cutover" or "production".
            share: in cutover, the share of symbols on the stream (0..1; default: the one configured).

        Raises:
            LocalProtocolError: an unknown mode or a share outside 0..1 (nothing changed).
        """
        chosen = _mode(mode, f"mode={mode!r}")
        if share is not None:
            share = _share(share, f"share={share!r}")
        if self._pump is not None:
            self._on_loop(lambda core: core.set_mode(chosen, share))
        rollout = self._config.rollout
        if share is not None:
            rollout = dataclasses.replace(rollout, share=share)
        self._config = dataclasses.replace(self._config, mode=chosen, rollout=rollout)
        if self._pump is None and not self.stream.started:
            self.stream = self._make()

    def resume(self) -> bool:
        """End a rollback by hand: the stream drives again once its book is current ("stream.rollback_ended").
        Returns False when no rollback is in force (or the stream is not running). Safe from any thread."""
        if self._pump is None:
            return False
        return self._on_loop(lambda core: core.resume())

    def _on_loop(self, fn: Callable[[HybridCore], T]) -> T:
        """Run `fn(core)` on the stream's loop (now, if this is it) and wake the loop; its result or error."""
        loop = self._loop
        assert loop is not None

        def command() -> T:
            result: list[T] = []
            self.stream._command(lambda core: result.append(fn(core)))
            return result[0]

        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is loop:
                return command()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(command())
            except BaseException as exc:  # the caller's thread raises it
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result()

    # --------------------------------------------------------------------------------------------- status

    def get_status(self) -> dict[str, Any]:
        """The stream at a glance; docs/bot.md has the shape.

        Top level: `running`, `connected` (every link), `authenticated`, `subscriptions` (confirmed topics,
        all links), `reconnects` and `reconnectAttempts` (the same total; the V3 client's name),
        `pending_events`, `handler_errors`, `health` (`core.health()`), `metrics` (`core.metrics()`, summed
        up), `rollout` (mode, share, rollback, REST fallbacks, divergence; `rollout_dict`) and `links` (per
        link: state, connected, authenticated, subscriptions, ..., last message age).
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
        metrics = core.metrics()
        return {
            "running": self._pump is not None,
            "connected": bool(links) and all(v["connected"] for v in links.values()),
            "authenticated": bool(private and private["authenticated"]),
            "subscriptions": sum(len(v["subscriptions"]) for v in links.values()),
            "reconnects": reconnects, "reconnectAttempts": reconnects,
            "pending_events": self.stream.pending, "handler_errors": self.handler_errors,
            "health": health_dict(core.health()), "metrics": metrics_dict(metrics),
            "rollout": rollout_dict(metrics, self._config, self._number), "links": links,
        }  # fmt: skip

    # -------------------------------------------------------------------------------------- translation

    async def _deliver(self) -> None:
        while batch := await self.stream.next_batch():
            for event in batch:
                for name, data in self._translate(event):
                    await self._call(name, data)

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

    def _translate(self, event: Event) -> Translated:
        num, at = self._number, event.at
        match event:
            case HealthChanged(health=health):
                return [("stream.health", health_dict(health))]
            case PositionUpdate():
                self._last_marks[event.key] = event
                return [("position.update", self._position_update(event))]
            case PositionOpened(position=position, cause=cause):
                return [("position.opened", self._position(position, SOURCES[cause], at))]
            case PositionClosed(position=position, cause=cause):
                data = self._position(position, SOURCES[cause], at)
                closed = data | {"size": num(Decimal(0)), "last_size": data["size"]}
                # update first: a manager listening to both ends with the position removed, not re-added
                return [("position.update", self._closed_update(event)), ("position.closed", closed)]
            case ModeChanged(mode=mode, previous=previous, share=share):
                return [("stream.mode", {"mode": mode, "previous": previous, "share": share, "at": at})]
            case RolledBack(reasons=reasons, mode=mode):
                data = {"event": "rolled_back", "reasons": list(reasons), "mode": mode, "at": at}
                return [("stream.rollback", data)]
            case RollbackEnded(how=how, rolled_back_for=rolled_back_for):
                data = {"event": "rollback_ended", "how": how, "rolled_back_for": rolled_back_for, "at": at}
                return [("stream.rollback_ended", data)]
            case FallbackStarted(what=what, symbols=symbols) | FallbackEnded(what=what, symbols=symbols):
                started = isinstance(event, FallbackStarted)
                data = {"event": "started" if started else "ended", "what": what, "symbols": list(symbols),
                        "reason": getattr(event, "reason", ""), "at": at}  # fmt: skip
                return [("stream.fallback", data)]
            case MarksCompared(diverged=True):
                return [("stream.divergence", self._divergence(event))]
        kind = _STATUS.get(type(event))
        if kind is None:
            return []
        data = {"event": kind, "link": event.link.value, "at": at}
        for field in ("reason", "retry_in", "hint", "status", "topics", "topic"):
            if hasattr(event, field):
                data[field] = getattr(event, field)
        return [("stream.status", data)]

    def _position(self, position: Position, source: str, at: float) -> dict[str, Any]:
        num, opt = self._number, self._opt
        return {
            "symbol": position.symbol, "side": position.side, "size": num(position.size),
            "entry_price": num(position.avg_price), "avg_price": num(position.avg_price),
            "position_idx": position.position_idx, "category": position.category, "source": source,
            "leverage": opt(position.leverage), "liq_price": opt(position.liq_price),
            "take_profit": opt(position.take_profit), "stop_loss": opt(position.stop_loss),
            "trailing_stop": opt(position.trailing_stop), "seq": position.seq,
            "updated_ms": position.updated_ms, "at": at, "timestamp": time.time(),
        }  # fmt: skip

    def _position_update(self, e: PositionUpdate) -> dict[str, Any]:
        opt = self._opt
        source = "rest" if e.source == "rest" else SOURCES[e.cause]  # REST stated it, or priced it
        return {
            "symbol": e.symbol, "side": e.side, "size": self._number(e.size), "mark_price": opt(e.mark_price),
            "entry_price": self._number(e.avg_price), "avg_price": self._number(e.avg_price),
            "unrealised_pnl": opt(e.unrealised_pnl), "position_idx": e.position_idx, "category": e.category,
            "mark_ts": e.mark_ts, "source": source, "cause": e.cause, "mark_source": e.source,
            "pnl_pct": opt(e.pnl_pct), "mark_age": e.mark_age, "stale": e.stale, "leverage": opt(e.leverage),
            "liq_price": opt(e.liq_price), "take_profit": opt(e.take_profit), "stop_loss": opt(e.stop_loss),
            "trailing_stop": opt(e.trailing_stop), "seq": e.seq, "updated_ms": e.updated_ms,
            "closed": False, "at": e.at, "timestamp": time.time(),
        }  # fmt: skip

    def _closed_update(self, e: PositionClosed) -> dict[str, Any]:
        """The close as a position.update: size 0, PnL 0, the last entry price and mark, `closed: True`."""
        p, zero = e.position, self._number(Decimal(0))
        last = self._last_marks.pop(p.key, None)
        return self._position(p, SOURCES[e.cause], e.at) | {
            "size": zero, "mark_price": None if last is None else self._opt(last.mark_price),
            "unrealised_pnl": zero, "mark_ts": None if last is None else last.mark_ts, "cause": e.cause,
            "mark_source": None if last is None else last.source, "pnl_pct": zero, "mark_age": None,
            "stale": False, "seq": e.seq, "closed": True,
        }  # fmt: skip

    def _divergence(self, e: MarksCompared) -> dict[str, Any]:
        num = self._number
        return {
            "category": e.category, "symbol": e.symbol, "stream_mark": num(e.stream_mark),
            "rest_mark": num(e.rest_mark), "divergence_pct": num(e.divergence_pct),
            "threshold_pct": num(self._config.rollout.divergence_pct), "at": e.at,
        }  # fmt: skip


# ------------------------------------------------------------------------------------------ the rollout


def rollout_config(
    config: Config, *, mode: Mode | str | None = None, share: float | None = None,
    auto_rollback: bool | None = None, return_after: ReturnAfter | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:  # fmt: skip
    """`config` with the drop-in's rollout settings, each from its argument, else the environment, else
    `config`'s own (for `auto_rollback`: on, the drop-in's default):

    * `HYBRID_MODE`: rest, canary, parallel, cutover or production (unset: the config's, production);
    * `HYBRID_SHARE`: cutover's share of symbols on the stream, 0..1;
    * `HYBRID_AUTO_ROLLBACK`: 1/true/yes/on or 0/false/no/off (unset: on);
    * `HYBRID_RETURN_AFTER`: seconds healthy before a rollback ends by itself, or "manual" (`resume()`).

    Raises:
        LocalProtocolError: a value that is none of these; the message names the variable and what to set.
    """
    env = os.environ if environ is None else environ

    def given(name: str) -> str | None:
        text = env.get(name, "").strip()
        return text or None

    chosen = config.mode
    if mode is not None:
        chosen = _mode(mode, f"mode={mode!r}")
    elif (text := given("HYBRID_MODE")) is not None:
        chosen = _mode(text.lower(), f"HYBRID_MODE={text!r}")
    rollout = config.rollout
    if share is None and (text := given("HYBRID_SHARE")) is not None:
        share = _share(text, f"HYBRID_SHARE={text!r}")
    if share is not None:
        rollout = dataclasses.replace(rollout, share=_share(share, f"share={share!r}"))
    if auto_rollback is None:
        auto_rollback = _flag(given("HYBRID_AUTO_ROLLBACK"))
    rollout = dataclasses.replace(rollout, auto_rollback=auto_rollback)
    if return_after is None and (text := given("HYBRID_RETURN_AFTER")) is not None:
        rollout = dataclasses.replace(rollout, return_after=_return_after(text, "HYBRID_RETURN_AFTER"))
    elif return_after is not None:
        rollout = dataclasses.replace(rollout, return_after=_return_after(return_after, "return_after"))
    if chosen is not Mode.PRODUCTION and config.credentials is None:
        raise LocalProtocolError(
            f"mode {chosen.value!r} polls positions over REST: give api_key and api_secret (or "
            "BYBIT_API_KEY / BYBIT_API_SECRET), or unset HYBRID_MODE for production"
        )
    return dataclasses.replace(config, mode=chosen, rollout=rollout)


def _mode(value: Mode | str, what: str) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        raise LocalProtocolError(
            f"{what} is not a rollout mode: use one of {_MODES} (unset HYBRID_MODE means production)"
        ) from None


def _share(value: float | str, what: str) -> float:
    try:
        share = float(value)
    except (TypeError, ValueError):
        share = math.nan
    if not 0.0 <= share <= 1.0:  # NaN fails too
        raise LocalProtocolError(
            f"{what} is not a share of symbols: give a number from 0 to 1 (0.25: a quarter of the symbols "
            "on the stream in cutover)"
        )
    return share


def _flag(text: str | None) -> bool:
    if text is None or text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise LocalProtocolError(
        f"HYBRID_AUTO_ROLLBACK={text!r} is not a boolean: use 1/0, true/false, yes/no or on/off (unset: on)"
    )


def _return_after(value: ReturnAfter | str, what: str) -> float | None:
    if isinstance(value, str) and value.strip().lower() == "manual":
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not 0.0 < seconds < math.inf:
        raise LocalProtocolError(
            f"{what}={value!r} is neither seconds nor 'manual': give a positive number of seconds healthy "
            "before a rollback ends by itself, or 'manual' to end it only with resume()"
        )
    return seconds


# ---------------------------------------------------------------------------------------- plain data


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


def rollout_dict(
    metrics: Metrics, config: Config, number: Callable[[Decimal], Any] = float
) -> dict[str, Any]:
    """`get_status()["rollout"]`: the mode and share now, the rollback in force (`rolled_back_for` s, its
    reasons; None and []), the REST fallbacks in force, REST requests made, and the divergence summary."""
    status, div = metrics.rollout, metrics.divergence
    by_symbol = {
        key: {"comparisons": s.comparisons, "divergences": s.divergences, "max_pct": number(s.max_pct),
              "last_pct": number(s.last_pct)}
        for key, s in div.by_symbol.items()
    }  # fmt: skip
    divergence = {
        "comparisons": div.comparisons, "divergences": div.divergences, "max_pct": number(div.max_pct),
        "threshold_pct": number(div.threshold_pct), "by_symbol": by_symbol,
    }  # fmt: skip
    rollout = config.rollout
    data: dict[str, Any] = {
        "mode": config.mode.value, "share": rollout.share, "rest_polling": False, "rolled_back_for": None,
        "rollback_reasons": [], "fallbacks": {"positions": False, "marks": []}, "rest_requests": 0,
        "auto_rollback": rollout.auto_rollback, "return_after": rollout.return_after,
        "divergence": divergence,
    }  # fmt: skip
    if status is not None:
        data |= {
            "mode": status.mode, "share": status.share, "rest_polling": status.rest_polling,
            "rolled_back_for": status.rolled_back_for, "rollback_reasons": list(status.rollback_reasons),
            "fallbacks": {"positions": status.positions_fallback, "marks": list(status.marks_fallback)},
            "rest_requests": status.rest_requests,
        }  # fmt: skip
    return data
