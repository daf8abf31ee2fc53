"""What the CLI shows: one-line event descriptions, NDJSON, and the live boards (positions, tickers, links).

The boards only keep what the events said and render plain lines; `Screen` redraws them in place with ANSI
escapes on a terminal (no curses) and is not used when stdout is not a TTY (the caller prints lines).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from decimal import Decimal
from typing import IO, Any

import msgspec

from bybit_hybrid_core import (
    AuthFailed,
    Event,
    ExecutionUpdate,
    HandshakeRefused,
    Link,
    LinkConnected,
    LinkDown,
    LinkStatus,
    LinkUp,
    OrderUpdate,
    Position,
    PositionClosed,
    PositionOpened,
    PositionsSynced,
    PositionUpdate,
    ProtocolProblem,
    SnapshotFailed,
    Subscribed,
    SubscriptionFailed,
    TickerUpdate,
    Unsubscribed,
)

__all__ = ["NOTABLE", "JsonLines", "PositionBoard", "Screen", "TickerBoard", "describe", "event_line", "num"]

# Events worth a line in the log (market data and per-fill account rows are not: they come by the dozen).
NOTABLE = (
    LinkConnected, LinkUp, LinkDown, HandshakeRefused, AuthFailed, Subscribed, Unsubscribed,
    SubscriptionFailed, ProtocolProblem, PositionOpened, PositionClosed, PositionsSynced, SnapshotFailed,
)  # fmt: skip


def num(value: Any, places: int | None = None) -> str:
    """A Decimal for a table: `places` decimals when given, else as Bybit wrote it; '-' for none."""
    if value is None or not isinstance(value, Decimal | int | float):
        return "-"
    if places is not None:
        return f"{Decimal(value):.{places}f}"
    return str(value)


def _pnl_places(category: str) -> int:
    return 8 if category == "inverse" else 4  # inverse PnL is in the base coin (BTC), linear in USDT/USDC


def _key(category: str, symbol: str, idx: int) -> str:
    return f"{category}/{symbol}" + (f"/{idx}" if idx else "")


def _position(p: Position) -> str:
    return f"{_key(p.category, p.symbol, p.position_idx)} {p.side} {p.size} @ {p.avg_price}"


def describe(event: Event) -> str:
    """What `event` says, in one short line (no secrets: events never carry any)."""
    match event:
        case PositionUpdate():
            stale = ", stale" if event.stale else ""
            return (
                f"{_key(event.category, event.symbol, event.position_idx)} {event.side} {event.size} "
                f"entry {event.avg_price} mark {num(event.mark_price)} "
                f"pnl {num(event.unrealised_pnl, _pnl_places(event.category))} ({event.cause}{stale})"
            )
        case PositionOpened(position=p, cause=cause) | PositionClosed(position=p, cause=cause):
            return f"{_position(p)} ({cause})"
        case TickerUpdate(ticker=t):
            kind = "snapshot" if event.snapshot else "delta"
            return (
                f"{event.category}/{event.symbol} last {num(t.last_price)} mark {num(t.mark_price)} ({kind})"
            )
        case LinkConnected(url=url):
            return url
        case LinkDown(reason=reason, retry_in=retry):
            return f"{reason}; " + ("no redial" if retry is None else f"redial in {retry:.1f} s")
        case HandshakeRefused(status=status, hint=hint):
            return f"HTTP {status}: {hint}"
        case AuthFailed(reason=reason, retry_in=retry):
            return f"{reason}; retry in {retry:.0f} s"
        case Subscribed(topics=topics) | Unsubscribed(topics=topics):
            return ", ".join(topics)
        case SubscriptionFailed(topic=topic, reason=reason):
            return f"{topic}: {reason}"
        case ProtocolProblem(detail=detail):
            return detail
        case PositionsSynced(category=category, open_positions=n):
            return f"{category}: {n} open (REST snapshot reconciled)"
        case SnapshotFailed(category=category, reason=reason, retry_in=retry):
            return f"{category}: {reason}; retry in {retry:.1f} s"
        case OrderUpdate(order=o):
            return f"{o.symbol} {o.side} {num(o.qty)} {o.order_type} {o.order_status}"
        case ExecutionUpdate(execution=x):
            return f"{x.symbol} {x.side} {x.exec_qty} @ {x.exec_price}"
    return ""


def event_line(event: Event, origin: float = 0.0) -> str:
    """`   1.234 linear   LinkUp             <describe>`: time since `origin`, link, type, description."""
    line = f"{event.at - origin:8.3f} {event.link.value:<8} {type(event).__name__:<19} {describe(event)}"
    return line.rstrip()


class JsonLines:
    """NDJSON: one `msgspec.json.encode` object per line (events are tagged: `{"type": ...}`), flushed."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out

    def write(self, obj: Any) -> None:
        self._out.write(msgspec.json.encode(obj) + b"\n")
        self._out.flush()


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}s"


def link_lines(status: Mapping[Link, LinkStatus], downs: Mapping[Link, str]) -> list[str]:
    """The health table: one row per link the core has."""
    rows = [
        f"{'LINK':<8} {'HEALTH':<11} {'UP FOR':>7} {'RECONN':>6} {'MSGS':>7} {'LAST':>6} {'RTT':>7}  TOPICS"
    ]
    for link, s in sorted(status.items()):
        health = "ok" if s.state == "LIVE" else s.state.lower()
        if s.state == "LIVE" and s.last_message_age is not None and s.last_message_age > 25:
            health = "quiet"  # a ping every 20 s answers within a second on a healthy link
        rtt = "-" if s.last_pong_rtt is None else f"{s.last_pong_rtt * 1000:.0f}ms"
        row = (
            f"{link.value:<8} {health:<11} {_age(s.live_for):>7} {s.reconnects:>6} {s.messages:>7} "
            f"{_age(s.last_message_age):>6} {rtt:>7}  {len(s.subscriptions)}"
        )
        if s.state != "LIVE" and link in downs:
            row += f"  last down: {downs[link][:60]}"
        rows.append(row)
    return rows


class PositionBoard:
    """Open positions priced at the live mark, the links' health and the latest notable events."""

    def __init__(self, title: str, origin: float, log_lines: int = 8) -> None:
        self.title = title
        self.origin = origin
        self.positions: dict[tuple[str, str, int], PositionUpdate] = {}
        self.downs: dict[Link, str] = {}
        self.log: deque[str] = deque(maxlen=log_lines)

    def apply(self, event: Event) -> str | None:
        """Take `event` in; returns its log line when it is notable."""
        match event:
            case PositionUpdate():
                self.positions[event.key] = event
            case PositionClosed(position=p):
                self.positions.pop(p.key, None)
            case LinkDown(link=link, reason=reason):
                self.downs[link] = reason
        if isinstance(event, NOTABLE):
            line = event_line(event, self.origin)
            self.log.append(line)
            return line
        return None

    def note(self, now: float, text: str) -> str:
        line = f"{now - self.origin:8.3f} {'':<8} {'':<19} {text}"
        self.log.append(line)
        return line

    def position_lines(self, now: float) -> list[str]:
        rows = [
            f"{'POSITION':<22} {'SIDE':<4} {'SIZE':>9} {'ENTRY':>11} {'MARK':>11} {'PNL@MARK':>15} {'AGE':>6}"
        ]
        for key in sorted(self.positions):
            e = self.positions[key]
            age = None if e.mark_age is None else e.mark_age + max(0.0, now - e.at)
            flag = "  STALE" if e.stale else ""
            rows.append(
                f"{_key(*key):<22} {e.side:<4} {num(e.size):>9} {num(e.avg_price):>11} "
                f"{num(e.mark_price):>11} {num(e.unrealised_pnl, _pnl_places(e.category)):>15} "
                f"{_age(age):>6}{flag}"
            )
        if not self.positions:
            rows.append("(no open positions)")
        return rows

    def summary(self, now: float) -> list[str]:
        """Without a terminal: each open position on a line of the log."""
        if not self.positions:
            return []
        return [
            f"{now - self.origin:8.3f} {'':<8} {'position':<19} {row}" for row in self.position_lines(now)[1:]
        ]

    def lines(self, now: float, status: Mapping[Link, LinkStatus]) -> list[str]:
        return [
            f"{self.title}   t={now - self.origin:.1f}s   (Ctrl-C to stop)",
            "",
            *self.position_lines(now),
            "",
            *link_lines(status, self.downs),
            "",
            "RECENT",
            *self.log,
        ]


class TickerBoard:
    """Live tickers (the merged snapshot + deltas) with their age, the links and the latest notable events."""

    def __init__(self, title: str, origin: float, symbols: list[str], log_lines: int = 6) -> None:
        self.title = title
        self.origin = origin
        self.tickers: dict[str, TickerUpdate] = {}
        self.seen: dict[str, float] = {}
        self.order = list(symbols)
        self.downs: dict[Link, str] = {}
        self.log: deque[str] = deque(maxlen=log_lines)

    def apply(self, event: Event) -> str | None:
        match event:
            case TickerUpdate(symbol=symbol):
                self.tickers[symbol] = event
                self.seen[symbol] = event.at
            case LinkDown(link=link, reason=reason):
                self.downs[link] = reason
        if isinstance(event, NOTABLE):
            line = event_line(event, self.origin)
            self.log.append(line)
            return line
        return None

    def ticker_line(self, symbol: str, now: float) -> str:
        e = self.tickers.get(symbol)
        if e is None:
            return f"{symbol:<14} (waiting for the first ticker)"
        t = e.ticker
        change = t.price24h_pcnt
        pct = f"{change * 100:+.2f}%" if isinstance(change, Decimal) else "-"
        return (
            f"{symbol:<14} {num(t.last_price):>12} {num(t.mark_price):>12} {num(t.index_price):>12} "
            f"{num(t.bid1_price):>12} {num(t.ask1_price):>12} {pct:>8} {num(t.funding_rate):>10} "
            f"{_age(now - self.seen[symbol]):>6}"
        )

    def note(self, now: float, text: str) -> str:
        line = f"{now - self.origin:8.3f} {'':<8} {'':<19} {text}"
        self.log.append(line)
        return line

    def summary(self, now: float) -> list[str]:
        """Without a terminal: each ticker seen so far on a line of the log."""
        return [
            f"{now - self.origin:8.3f} {'':<8} {'ticker':<19} {self.ticker_line(symbol, now)}"
            for symbol in self.order
            if symbol in self.tickers
        ]

    def lines(self, now: float, status: Mapping[Link, LinkStatus]) -> list[str]:
        head = (
            f"{'SYMBOL':<14} {'LAST':>12} {'MARK':>12} {'INDEX':>12} {'BID':>12} {'ASK':>12} {'24H':>8} "
            f"{'FUNDING':>10} {'AGE':>6}"
        )
        return [
            f"{self.title}   t={now - self.origin:.1f}s   (Ctrl-C to stop)",
            "",
            head,
            *(self.ticker_line(symbol, now) for symbol in self.order),
            "",
            *link_lines(status, self.downs),
            "",
            "RECENT",
            *self.log,
        ]


class Screen:
    """Redraws a block of lines in place on a terminal: home, each line cleared to its end, rest cleared."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._out.write("\x1b[?25l\x1b[2J")  # hide the cursor, clear once

    def draw(self, lines: list[str]) -> None:
        self._out.write("\x1b[H" + "".join(f"{line}\x1b[K\n" for line in lines) + "\x1b[J")
        self._out.flush()

    def close(self) -> None:
        self._out.write("\x1b[?25h")  # the cursor back; the last frame stays on screen
        self._out.flush()
