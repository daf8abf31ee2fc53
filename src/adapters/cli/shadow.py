"""`bybit-hybrid shadow`: the stream beside REST polling, every REST mark compared with the stream's.

The core runs in `parallel` (or the mode `HYBRID_MODE` names: parallel, cutover or production) and says each
comparison as a `MarksCompared` event: the board keeps, per symbol, the last stream and REST marks, the last
divergence, how many comparisons and divergences (over `--threshold`, the core's `Rollout.divergence_pct`)
and the largest divergence seen. The run ends with a one-screen summary and its verdict as the exit code:
0 no divergence, 1 a divergence, 5 nothing was compared. `--sim` runs the served FakeExchange on loopback
with open positions; `--diverge SYMBOL:PCT` makes its REST mark of SYMBOL differ by PCT %.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from bybit_hybrid_core import (
    Config,
    Credentials,
    Event,
    FallbackEnded,
    FallbackStarted,
    Link,
    LinkDown,
    LinkStatus,
    LocalProtocolError,
    MarksCompared,
    Mode,
    ModeChanged,
    RollbackEnded,
    RolledBack,
    Rollout,
)

from .errors import EXIT_DIVERGED, EXIT_NOTHING_COMPARED, EXIT_USAGE, CliError
from .live import LiveRun, endpoint_options, open_stream
from .view import (
    NOTABLE,
    SUMMARY_ROWS,
    _budget,
    _cut,
    _header,
    _links_table,
    _recent,
    _reconnects,
    event_line,
)

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ..server import ServedExchange

__all__ = [
    "ShadowBoard",
    "parse_diverge",
    "run_shadow",
    "shadow_mode",
]

# The modes that compare REST marks with the stream's (rest has no stream, canary compares nothing).
_COMPARING = (Mode.PARALLEL, Mode.CUTOVER, Mode.PRODUCTION)
# What --sim opens: linear one-way and hedge, inverse, so the comparison covers both categories.
_SIM_POSITIONS: tuple[tuple[str, str, str, str], ...] = (
    ("BTCUSDT", "Buy", "0.5", "linear"),
    ("ETHUSDT", "Sell", "2", "linear"),
    ("BTCUSD", "Sell", "1000", "inverse"),
)
_ROLLOUT = (FallbackStarted, FallbackEnded, RolledBack, RollbackEnded, ModeChanged)


def shadow_mode(environ: Mapping[str, str] | None = None) -> tuple[Mode, float]:
    """The mode and cutover share: `HYBRID_MODE` (parallel, cutover, production; unset: parallel) and
    `HYBRID_SHARE` (0..1, cutover only; unset: 1)."""
    env = os.environ if environ is None else environ
    text = env.get("HYBRID_MODE", "").strip().lower()
    names = ", ".join(m.value for m in _COMPARING)
    try:
        mode = Mode(text) if text else Mode.PARALLEL
    except ValueError:
        raise CliError(f"HYBRID_MODE={text!r} is not a rollout mode", f"use one of {names}") from None
    if mode not in _COMPARING:
        raise CliError(
            f"HYBRID_MODE={text} compares nothing: shadow runs in {names}", "unset HYBRID_MODE for parallel"
        )
    share_text = env.get("HYBRID_SHARE", "").strip()
    try:
        share = float(share_text) if share_text else 1.0
    except ValueError:
        share = -1.0
    if not 0.0 <= share <= 1.0:
        raise CliError(f"HYBRID_SHARE={share_text!r} is not a share of symbols", "give a number from 0 to 1")
    return mode, share


def parse_diverge(specs: list[str]) -> list[tuple[str, Decimal]]:
    """`--diverge SYMBOL:PCT` values as (symbol, percent)."""
    out: list[tuple[str, Decimal]] = []
    for spec in specs:
        symbol, sep, pct = spec.partition(":")
        try:
            value = Decimal(pct)
        except InvalidOperation:
            value = Decimal("NaN")
        if not sep or not symbol or not value.is_finite() or value <= -100 or value == 0:
            raise CliError(f"--diverge takes SYMBOL:PCT, got {spec!r}", "e.g. --diverge BTCUSDT:5 (5 % off)")
        out.append((symbol.upper(), value))
    return out


def _pct(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:.3f}%"


@dataclasses.dataclass
class _Row:
    category: str
    symbol: str
    stream_mark: Decimal
    rest_mark: Decimal
    last_pct: Decimal
    comparisons: int = 0
    divergences: int = 0
    max_pct: Decimal = Decimal(0)


class ShadowBoard:
    """Each symbol's comparisons of REST marks with the stream's, the links, and the rollout's events.

    `observe` takes every event (the run's `check`, so --json runs count too); `apply` only logs."""

    def __init__(self, title: str, origin: float, threshold: Decimal, log_lines: int = 6) -> None:
        self.title, self.origin, self.threshold = title, origin, threshold
        self.rows: dict[str, _Row] = {}
        self.downs: dict[Link, str] = {}
        self.log: deque[str] = deque(maxlen=log_lines)

    @property
    def comparisons(self) -> int:
        return sum(r.comparisons for r in self.rows.values())

    @property
    def divergences(self) -> int:
        return sum(r.divergences for r in self.rows.values())

    def verdict(self) -> int:
        """The exit code this run has earned so far."""
        if self.divergences:
            return EXIT_DIVERGED
        return 0 if self.comparisons else EXIT_NOTHING_COMPARED

    def observe(self, event: Event) -> None:
        if isinstance(event, MarksCompared):
            key = f"{event.category}:{event.symbol}"
            row = self.rows.get(key)
            if row is None:
                row = self.rows[key] = _Row(event.category, event.symbol, event.stream_mark, event.rest_mark,
                                            event.divergence_pct)  # fmt: skip
            row.stream_mark, row.rest_mark = event.stream_mark, event.rest_mark
            row.last_pct = event.divergence_pct
            row.comparisons += 1
            row.divergences += 1 if event.diverged else 0
            row.max_pct = max(row.max_pct, event.divergence_pct)
        elif isinstance(event, LinkDown):
            self.downs[event.link] = event.reason

    def apply(self, event: Event) -> str | None:
        if isinstance(event, MarksCompared) and event.diverged:
            pct = _pct(event.divergence_pct)
            text = f"{event.symbol} {pct} off: {event.stream_mark} vs REST {event.rest_mark}"
            line = self._line(event.at, "MarksCompared", text)
        elif isinstance(event, _ROLLOUT):
            line = self._line(event.at, type(event).__name__, _rollout_text(event))
        elif isinstance(event, NOTABLE):
            line = event_line(event, self.origin)
        else:
            return None
        self.log.append(line)
        return line

    def _line(self, at: float, kind: str, text: str) -> str:
        return f"{at - self.origin:8.3f} {'':<8} {kind:<19} {text}"

    def note(self, now: float, text: str) -> str:
        line = self._line(now, "", text)
        self.log.append(line)
        return line

    def _table_lines(self) -> list[str]:
        rows = [f"{'SYMBOL':<20} {'STREAM':>12} {'REST':>12} {'DIV%':>9} {'CMP':>5} {'DIV':>4} {'MAX%':>9}"]
        for key in sorted(self.rows):
            r = self.rows[key]
            rows.append(
                f"{key:<20} {r.stream_mark!s:>12} {r.rest_mark!s:>12} {_pct(r.last_pct):>9} "
                f"{r.comparisons:>5} {r.divergences:>4} {_pct(r.max_pct):>9}"
            )
        if not self.rows:
            rows.append("(no comparison yet: they come with each REST poll of an open position)")
        return rows

    def summary(self, now: float) -> list[str]:
        """Without a terminal: the comparison table's rows on lines of the log."""
        return [self._line(now, "compared", row) for row in self._table_lines()[1:] if self.rows]

    def final_lines(self, now: float, status: Mapping[Link, LinkStatus]) -> list[str]:
        """The one-screen summary: the verdict, each symbol's comparisons and its largest divergence."""
        verdict = {
            EXIT_DIVERGED: f"DIVERGED: {self.divergences} of {self.comparisons} comparisons over "
            f"{self.threshold}%",
            0: f"ok: {self.comparisons} comparisons, none over {self.threshold}%",
            EXIT_NOTHING_COMPARED: "nothing compared: no open position, or no fresh stream mark at a poll",
        }[self.verdict()]
        lines = [f"ended after {now - self.origin:.1f} s: {self.title}", f"{verdict}; {_reconnects(status)}"]
        keys = sorted(self.rows)
        for key in keys[:SUMMARY_ROWS]:
            r = self.rows[key]
            flag = "  DIVERGED" if r.divergences else ""
            lines.append(
                f"  {key:<20} {r.comparisons:>5} compared, {r.divergences:>5} diverged, "
                f"max {_pct(r.max_pct)}{flag}"
            )
        if len(keys) > SUMMARY_ROWS:
            lines.append(f"  +{len(keys) - SUMMARY_ROWS} more")
        return lines

    def lines(self, now: float, status: Mapping[Link, LinkStatus]) -> list[str]:
        from .view import link_lines

        head = f"{self.title}   t={now - self.origin:.1f}s   (Ctrl-C to stop)"
        return [head, "", *self._table_lines(), "", *link_lines(status, self.downs), "", "RECENT", *self.log]

    def render(self, now: float, status: Mapping[Link, LinkStatus], height: int = 24) -> RenderableType:
        """The terminal view (rich), as the other boards: header, comparisons, links, recent events."""
        from rich.console import Group
        from rich.text import Text

        from .view import _table

        table = _table(
            ("SYMBOL", "left"), ("STREAM", "right"), ("REST", "right"), ("DIV%", "right"), ("CMP", "right"),
            ("DIV", "right"), ("MAX%", "right"),
        )  # fmt: skip
        rows, recent = _budget(height, len(self.rows), len(status), len(self.log))
        keys = sorted(self.rows)
        shown = keys if len(keys) <= rows else keys[: rows - 1]
        for key in shown:
            r = self.rows[key]
            style = "bold red" if r.last_pct > self.threshold else ""
            table.add_row(
                _cut(key), str(r.stream_mark), str(r.rest_mark), Text(_pct(r.last_pct), style=style),
                str(r.comparisons), Text(str(r.divergences), style="red" if r.divergences else "green"),
                Text(_pct(r.max_pct), style="red" if r.max_pct > self.threshold else ""),
            )  # fmt: skip
        if len(shown) < len(keys):
            table.add_row(Text(f"+{len(keys) - len(shown)} more", style="dim"))
        if not keys:
            table.add_row(Text("(no comparison yet)", style="dim"))
        links = _links_table(status, self.downs)
        return Group(_header(self.title, now - self.origin), table, Text(), links, *_recent(self.log, recent))


def _rollout_text(event: Event) -> str:
    match event:
        case FallbackStarted(what=what, symbols=symbols, reason=reason):
            return f"{what} over REST {' '.join(symbols)}: {reason}".replace("  ", " ")
        case FallbackEnded(what=what, symbols=symbols):
            return f"{what} from the stream again {' '.join(symbols)}".rstrip()
        case RolledBack(reasons=reasons, mode=mode):
            return f"{mode}: rolled back to REST: {'; '.join(reasons)}"
        case RollbackEnded(how=how, rolled_back_for=seconds):
            return f"the stream drives again ({how}) after {seconds:.1f} s"
        case ModeChanged(mode=mode, previous=previous):
            return f"{previous} -> {mode}"
    return ""


def _config(key: str, secret: str, options: dict[str, Any], rollout: Rollout, mode: Mode) -> Config:
    from ..config import settings

    try:
        base = settings(key, secret, categories=(), **options).config
    except (LocalProtocolError, ValueError) as exc:
        raise CliError(str(exc), code=EXIT_USAGE) from None
    return dataclasses.replace(base, mode=mode, rollout=rollout)


def _rollout(args: Any, share: float, sim: bool) -> Rollout:
    poll = args.poll_interval
    fields: dict[str, Any] = {"divergence_pct": args.threshold, "share": share}
    if poll is not None:
        fields.update(poll_interval=poll, compare_interval=poll)
    if sim:
        # The FakeExchange allows Bybit's IP limit (600 per 5 s): a fast poll may spend more than 4 per
        # second, and production's comparison comes every 2 s rather than every 60 (Rollout's default).
        fields["rest_rate"] = 50.0
        fields.setdefault("compare_interval", 2.0)
    return Rollout(**fields)


def _open_sim(args: Any, diverge: list[tuple[str, Decimal]]) -> ServedExchange:
    from .sim import serve

    served = serve(False, seed=args.seed)

    def setup(ex: Any) -> None:
        for symbol, side, size, category in _SIM_POSITIONS:
            ex.open_position(symbol, side, size, category=category)
        for symbol, pct in diverge:
            category = "inverse" if symbol.endswith("USD") else "linear"
            ex.rest_mark_divergence(symbol, pct, category=category)

    try:
        served.call(setup)
    except (ValueError, KeyError) as exc:
        served.stop()
        raise CliError(f"--diverge: {exc}", "a symbol the FakeExchange lists, e.g. BTCUSDT:5") from None
    return served


def run_shadow(args: Any) -> int:
    """The `shadow` command (see `cli.dispatch` for its arguments)."""
    from .commands import keys_from_env

    mode, share = shadow_mode()
    diverge = parse_diverge(args.diverge or [])
    if not args.threshold > 0:
        raise CliError(
            f"--threshold must be a positive percent, got {args.threshold}", "e.g. --threshold 0.5"
        )
    if args.poll_interval is not None and not args.poll_interval > 0:
        raise CliError("--poll-interval must be positive")
    if diverge and not args.sim:
        raise CliError("--diverge needs --sim", "it changes the FakeExchange's REST marks, not Bybit's")
    options = endpoint_options(args)
    if args.sim and options:
        raise CliError("--sim runs its own exchange", "leave out --testnet, --demo, --ws-url and --cafile")
    served: ServedExchange | None = None
    stop: list[Callable[[], None]] = []
    try:
        if args.sim:
            served = _open_sim(args, diverge)
            stop.append(served.stop)
            key, secret = served.api_key, served.api_secret
            options = {"endpoints": served.endpoints}
            where = f"FakeExchange at {served.ws_url}"
        else:
            key, secret = keys_from_env()
            where = ""
        cafile = options.pop("cafile", None)
        config = _config(key, secret, options, _rollout(args, share, args.sim), mode)
        where = where or ("custom endpoints" if config.endpoints is not None else config.environment)
        stream = open_stream("", "", config=config, **({"cafile": cafile} if cafile else {}))
        title = f"bybit-hybrid shadow: {mode.value}, {where}, key {Credentials(key, secret).masked_key}"
        board = ShadowBoard(title, 0.0, args.threshold)
        run = LiveRun(
            stream, board, json=args.json, tty=sys.stdout.isatty(), duration=args.duration,
            interval=args.interval, check=lambda event: board.observe(event),
        )  # fmt: skip
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends it as --duration does: same verdict
            run.run()
        return board.verdict()
    finally:
        for fn in stop:
            fn()
