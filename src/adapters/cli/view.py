"""What the CLI shows: one-line event descriptions, NDJSON, and the live boards (positions, tickers, links).

The boards keep what the events said. Without a terminal they give plain lines (the caller prints them).
On a terminal `LiveView` draws them with rich (`Live` + `Table`), fitted to the terminal (80x24 and up:
columns shrink, symbols truncate, rows beyond the screen become '+N more'), side and PnL in colour.
When a run ends, `final_lines` is its one-screen summary.

rich is imported here only, and only inside the functions that draw on a terminal: importing
`bybit_hybrid`, `bybit_hybrid_core` or even this module does not load it (tests/test_cli_view.py checks).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any, Protocol

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

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live
    from rich.table import Table
    from rich.text import Text

__all__ = [
    "NOTABLE", "JsonLines", "LiveView", "PositionBoard", "Screen", "TickerBoard", "describe", "event_line",
    "num", "pnl_currency",
]  # fmt: skip

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


def pnl_currency(category: str, symbol: str) -> str:
    """The coin a position's PnL is in: the settle coin for linear (USDT, or USDC for `...USDC`/`...PERP`
    and dated USDC futures), the base coin for inverse (BTC for BTCUSD and BTCUSDH25)."""
    if category == "inverse":
        base = symbol.split("USD", 1)[0]
        return base or symbol
    if symbol.endswith("USDT"):
        return "USDT"
    if symbol.endswith(("USDC", "PERP")) or "-" in symbol:
        return "USDC"
    return "USDT" if category == "linear" else "USDC"  # options settle in USDC


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


PROBLEMS = (LinkDown, HandshakeRefused, AuthFailed, SubscriptionFailed, ProtocolProblem, SnapshotFailed)


class _Tally:
    """What a run went through, for its summary: how many updates, which problems, the last of them."""

    def __init__(self) -> None:
        self.updates = 0
        self.stale = 0
        self.problems: Counter[str] = Counter()
        self.recent: deque[str] = deque(maxlen=3)

    def take(self, event: Event, origin: float) -> None:
        if isinstance(event, PositionUpdate | TickerUpdate):
            self.updates += 1
            if isinstance(event, PositionUpdate) and event.stale:
                self.stale += 1
        elif isinstance(event, PROBLEMS):
            self.problems[type(event).__name__] += 1
            self.recent.append(event_line(event, origin))

    def lines(self) -> list[str]:
        if not self.problems and not self.stale:
            return ["problems: none"]
        counts = [f"{n} {name}" for name, n in sorted(self.problems.items())]
        if self.stale:
            counts.append(f"{self.stale} updates at a stale mark")
        return ["problems: " + ", ".join(counts), *(f"  {line.strip()}" for line in self.recent)]


def _reconnects(status: Mapping[Link, LinkStatus]) -> str:
    total = sum(s.reconnects for s in status.values())
    each = ", ".join(f"{link.value} {s.reconnects}" for link, s in sorted(status.items()) if s.reconnects)
    return f"{total} reconnects" + (f" ({each})" if each else "")


SUMMARY_ROWS = 14  # positions or tickers listed in the summary; with its other lines it fits 24 rows


class PositionBoard:
    """Open positions priced at the live mark, the links' health and the latest notable events."""

    def __init__(self, title: str, origin: float, log_lines: int = 8) -> None:
        self.title = title
        self.origin = origin
        self.positions: dict[tuple[str, str, int], PositionUpdate] = {}
        self.last: dict[tuple[str, str, int], PositionUpdate] = {}  # every position seen, closed ones too
        self.downs: dict[Link, str] = {}
        self.log: deque[str] = deque(maxlen=log_lines)
        self.tally = _Tally()

    def apply(self, event: Event) -> str | None:
        """Take `event` in; returns its log line when it is notable."""
        self.tally.take(event, self.origin)
        match event:
            case PositionUpdate():
                self.positions[event.key] = event
                self.last[event.key] = event
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

    def final_lines(self, now: float, status: Mapping[Link, LinkStatus]) -> list[str]:
        """The one-screen summary when the run ends: counts, each position's last mark and PnL, problems."""
        lines = [
            f"ended after {now - self.origin:.1f} s: {self.title}",
            f"positions seen {len(self.last)}, open at the end {len(self.positions)}; "
            f"{self.tally.updates} updates; {_reconnects(status)}",
        ]
        if self.last:
            lines.append("last marks:")
        keys = sorted(self.last)
        width = min(22, max((len(_key(*key)) for key in keys), default=0))
        for key in keys[:SUMMARY_ROWS]:
            e = self.last[key]
            pnl = num(e.unrealised_pnl, _pnl_places(e.category))
            state = "open" if key in self.positions else "closed"
            lines.append(
                f"  {_key(*key):<{width}} {e.side:<4} {num(e.size):>7} @ {num(e.avg_price)} "
                f"mark {num(e.mark_price)} pnl {pnl} {pnl_currency(e.category, e.symbol)} {state}"
            )
        if len(keys) > SUMMARY_ROWS:
            lines.append(f"  +{len(keys) - SUMMARY_ROWS} more")
        return [*lines, *self.tally.lines()]

    def render(self, now: float, status: Mapping[Link, LinkStatus], height: int = 24) -> RenderableType:
        """The terminal view (rich): header, positions, links, recent events, in `height` rows at most."""
        from rich.console import Group
        from rich.text import Text

        table = _table(
            ("POSITION", "left"), ("SIDE", "left"), ("SIZE", "right"), ("AVG", "right"), ("MARK", "right"),
            ("PNL", "right"), ("PNL%", "right"), ("AGE", "right"), ("", "left"),
        )  # fmt: skip
        links = _links_table(status, self.downs)
        rows, recent = _budget(height, len(self.positions), len(status), len(self.log))
        keys = sorted(self.positions)
        shown = keys if len(keys) <= rows else keys[: rows - 1]
        for key in shown:
            e = self.positions[key]
            age = None if e.mark_age is None else e.mark_age + max(0.0, now - e.at)
            pct = f"{e.pnl_pct:+.2f}%" if isinstance(e.pnl_pct, Decimal) else "-"
            pnl = num(e.unrealised_pnl, _pnl_places(e.category))
            table.add_row(
                _cut(_key(*key)), Text(e.side, style="green" if e.side == "Buy" else "red"), num(e.size),
                num(e.avg_price), num(e.mark_price),
                Text(f"{pnl} {pnl_currency(e.category, e.symbol)}", style=_sign_style(e.unrealised_pnl)),
                Text(pct, style=_sign_style(e.pnl_pct)), _age(age),
                Text("STALE", style="bold yellow") if e.stale else "",
            )  # fmt: skip
        if len(shown) < len(keys):
            table.add_row(Text(f"+{len(keys) - len(shown)} more", style="dim"))
        if not keys:
            table.add_row(Text("(no open positions)", style="dim"))
        return Group(_header(self.title, now - self.origin), table, Text(), links, *_recent(self.log, recent))

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
        self.tally = _Tally()

    def apply(self, event: Event) -> str | None:
        self.tally.take(event, self.origin)
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

    def final_lines(self, now: float, status: Mapping[Link, LinkStatus]) -> list[str]:
        """The one-screen summary when the run ends: counts, each symbol's last prices, problems."""
        seen = [symbol for symbol in self.order if symbol in self.tickers]
        lines = [
            f"ended after {now - self.origin:.1f} s: {self.title}",
            f"tickers seen {len(seen)} of {len(self.order)}; {self.tally.updates} updates; "
            f"{_reconnects(status)}",
        ]
        if seen:
            lines.append("last prices:")
        for symbol in seen[:SUMMARY_ROWS]:
            t = self.tickers[symbol].ticker
            lines.append(f"  {symbol:<14} last {num(t.last_price)} mark {num(t.mark_price)}")
        if len(seen) > SUMMARY_ROWS:
            lines.append(f"  +{len(seen) - SUMMARY_ROWS} more")
        return [*lines, *self.tally.lines()]

    def render(self, now: float, status: Mapping[Link, LinkStatus], height: int = 24) -> RenderableType:
        """The terminal view (rich): header, tickers, links, recent events, in `height` rows at most."""
        from rich.console import Group
        from rich.text import Text

        table = _table(
            ("SYMBOL", "left"), ("LAST", "right"), ("MARK", "right"), ("BID", "right"), ("ASK", "right"),
            ("24H", "right"), ("FUNDING", "right"), ("AGE", "right"),
        )  # fmt: skip
        links = _links_table(status, self.downs)
        rows, recent = _budget(height, len(self.order), len(status), len(self.log))
        shown = self.order if len(self.order) <= rows else self.order[: rows - 1]
        for symbol in shown:
            e = self.tickers.get(symbol)
            if e is None:
                table.add_row(_cut(symbol), Text("waiting", style="dim"))
                continue
            t = e.ticker
            change = t.price24h_pcnt
            pct = f"{change * 100:+.2f}%" if isinstance(change, Decimal) else "-"
            table.add_row(
                _cut(symbol), num(t.last_price), num(t.mark_price), num(t.bid1_price), num(t.ask1_price),
                Text(pct, style=_sign_style(change)), num(t.funding_rate), _age(now - self.seen[symbol]),
            )  # fmt: skip
        if len(shown) < len(self.order):
            table.add_row(Text(f"+{len(self.order) - len(shown)} more", style="dim"))
        return Group(_header(self.title, now - self.origin), table, Text(), links, *_recent(self.log, recent))

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


# ------------------------------------------------------------------------------- the terminal view (rich)


def _sign_style(value: Any) -> str:
    if not isinstance(value, Decimal | int | float) or value == 0:
        return ""
    return "green" if value > 0 else "red"


def _cut(text: str) -> Text:
    """A cell that stays on one line and ends in '…' when its column is narrower than it."""
    from rich.text import Text

    return Text(text, no_wrap=True, overflow="ellipsis")


def _table(*columns: tuple[str, str]) -> Table:
    """A borderless table whose first column shrinks (and truncates with '…') so that the rest fits."""
    from rich.table import Table

    table = Table(box=None, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False, header_style="bold")
    for i, (name, justify) in enumerate(columns):
        table.add_column(
            name,
            justify="right" if justify == "right" else "left",
            no_wrap=i > 0,
            overflow="ellipsis",
            min_width=6 if i == 0 else None,
        )
    return table


def _header(title: str, elapsed: float) -> Table:
    """The first line: the title (truncated to fit) and, on the right, the time and how to stop."""
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(expand=True)
    grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    grid.add_column(justify="right", no_wrap=True)
    grid.add_row(Text(title, style="bold"), Text(f" t={elapsed:.1f}s  Ctrl-C stops", style="dim"))
    return grid


def _links_table(status: Mapping[Link, LinkStatus], downs: Mapping[Link, str]) -> Table:
    from rich.text import Text

    columns = [("LINK", "left"), ("STATE", "left"), ("LIVE FOR", "right"), ("RECONN", "right")]
    columns += [("MSGS", "right"), ("LAST", "right"), ("RTT", "right"), ("TOPICS", "right")]
    shows_down = any(s.state != "LIVE" and link in downs for link, s in status.items())
    if shows_down:
        columns.append(("LAST DOWN", "left"))
    table = _table(*columns)
    table.columns[-1].no_wrap = False  # the reason is what shrinks here (its cell stays on one line)
    for link, s in sorted(status.items()):
        health = "ok" if s.state == "LIVE" else s.state.lower()
        if s.state == "LIVE" and s.last_message_age is not None and s.last_message_age > 25:
            health = "quiet"
        style = {"ok": "green", "quiet": "yellow"}.get(health, "red")
        rtt = "-" if s.last_pong_rtt is None else f"{s.last_pong_rtt * 1000:.0f}ms"
        row: list[Any] = [link.value, Text(health, style=style), _age(s.live_for), str(s.reconnects)]
        row += [str(s.messages), _age(s.last_message_age), rtt, str(len(s.subscriptions))]
        if shows_down:
            row.append(_cut(downs[link] if s.state != "LIVE" and link in downs else ""))
        table.add_row(*row)
    if not status:
        table.add_row(Text("(no links yet)", style="dim"))
    return table


def _budget(height: int, items: int, links: int, log: int) -> tuple[int, int]:
    """(table rows, recent lines) that fit `height` rows: the header, the table's head and rows, a blank,
    the links' head and rows, and when room is left a blank, 'RECENT' and the latest events. One row is
    left free so that the terminal never scrolls."""
    left = height - 1 - (1 + 1 + 1 + 1 + max(1, links))
    wanted_recent = min(log, 3)
    rows = max(1, min(max(1, items), left - (wanted_recent + 2 if wanted_recent else 0)))
    spare = left - rows - 2  # what is left for the log after its blank and its title
    return rows, max(0, min(log, spare))


def _recent(log: deque[str], lines: int) -> list[RenderableType]:
    from rich.text import Text

    if lines <= 0:
        return []
    out: list[RenderableType] = [Text(), Text("RECENT", style="bold")]
    for line in list(log)[-lines:]:
        style = "red" if any(word in line for word in ("LinkDown", "Failed", "Refused", "Problem")) else ""
        style = style or ("cyan" if "demo:" in line else "")
        out.append(Text(line, style=style, no_wrap=True, overflow="ellipsis"))
    return out


class Renders(Protocol):
    """A board that draws itself with rich; others are drawn from their plain `lines`."""

    def render(self, now: float, status: Mapping[Link, LinkStatus], height: int) -> RenderableType: ...


def render_board(
    board: Any, now: float, status: Mapping[Link, LinkStatus], height: int = 24
) -> RenderableType:
    """What `LiveView` draws for `board`: its `render`, or its plain `lines` cut to the screen."""
    render = getattr(board, "render", None)
    if callable(render):
        return render(now, status, height)  # type: ignore[no-any-return]
    from rich.console import Group
    from rich.text import Text

    lines = board.lines(now, dict(status))[: max(1, height - 1)]
    return Group(*(Text(line, no_wrap=True, overflow="ellipsis") for line in lines))


class LiveView:
    """The board drawn in place on a terminal by rich's `Live`, refreshed by `draw`; `close` stops it (the
    last frame stays) and `print_lines` then writes the summary under it, each line cut to the width."""

    def __init__(self, out: IO[str]) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console: Console = Console(file=out, highlight=False)
        self._live: Live = Live(
            console=self.console, auto_refresh=False, redirect_stdout=False, redirect_stderr=False,
            vertical_overflow="crop",
        )  # fmt: skip
        self._live.start()

    def draw(self, board: Any, now: float, status: Mapping[Link, LinkStatus]) -> None:
        self._live.update(render_board(board, now, status, self.console.size.height), refresh=True)

    def close(self) -> None:
        self._live.stop()

    def print_lines(self, lines: list[str]) -> None:
        from rich.text import Text

        for i, line in enumerate(lines):
            text = Text(line, style="bold" if i == 0 else "")
            self.console.print(
                text, no_wrap=True, overflow="ellipsis", crop=True
            )  # print joins Texts: say it here


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
