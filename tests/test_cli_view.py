"""The CLI's terminal view on rich: it fits 80x24, colours side and PnL, names the PnL's coin, ends with a
one-screen summary, and importing the library never loads rich.

The view is rendered to a recording `rich.console.Console` of 80x24 that believes it is a terminal; the
whole `demo` runs once in a real pseudo-terminal of that size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest
from bybit_hybrid.cli import main
from bybit_hybrid.cli.view import PositionBoard, TickerBoard, pnl_currency, render_board
from rich.console import Console
from rich.segment import Segment

from bybit_hybrid_core import LinkStatus
from bybit_hybrid_core._config import Link
from bybit_hybrid_core._events import LinkDown, PositionClosed, PositionUpdate, ProtocolProblem

TITLE = "bybit-hybrid demo: FakeExchange at wss://127.0.0.1:54321 (seed 7), metrics at http://127.0.0.1:9/m"


def update(
    category: str, symbol: str, side: str, pnl: str, *, idx: int = 0, stale: bool = False, small: bool = False
) -> Any:
    size, avg, mark = ("123456", "0.0000123", "0.0000124") if small else ("0.5", "67000", "67230.8")
    return PositionUpdate(
        link=Link.LINEAR, at=101.0, category=category, symbol=symbol, position_idx=idx, side=side,
        size=Decimal(size), avg_price=Decimal(avg), mark_price=Decimal(mark), mark_ts=1,
        mark_age=0.25, unrealised_pnl=Decimal(pnl), pnl_pct=Decimal("-10.12"), liq_price=None,
        take_profit=None, stop_loss=None, trailing_stop=None, leverage=None, seq=1, updated_ms=1,
        cause="mark", stale=stale,
    )  # fmt: skip


def link_status(link: Link, state: str = "LIVE", reconnects: int = 0) -> LinkStatus:
    return LinkStatus(
        link=link, url="ws://x", state=state, connected=state == "LIVE", authenticated=False,
        subscriptions=("a", "b"), pending=(), failed=(), reconnects=reconnects, dials=reconnects + 1,
        downs=reconnects, messages=1234567, problems=0, last_message_age=0.1, last_pong_rtt=0.0012,
        live_for=12.3 if state == "LIVE" else None,
    )  # fmt: skip


STATUS = {
    Link.PRIVATE: link_status(Link.PRIVATE),
    Link.LINEAR: link_status(Link.LINEAR, "BACKOFF", 3),
    Link.INVERSE: link_status(Link.INVERSE, reconnects=1),
    Link.SPOT: link_status(Link.SPOT),
}


def crowded_board(positions: int) -> PositionBoard:
    board = PositionBoard(TITLE, origin=100.0)
    board.apply(update("linear", "BTCUSDT", "Buy", "115.4"))
    board.apply(update("inverse", "BTCUSD", "Sell", "-0.0000220653", stale=True))
    for i in range(positions - 2):
        board.apply(
            update("linear", f"10000000SHIB{i}USDT", "Sell", "-12345.6789", idx=1 + i % 2, small=True)
        )
    for i in range(12):
        reason = "closed by the server: 1006 end of stream and a reason that goes on for a long while"
        board.apply(LinkDown(link=Link.LINEAR, at=101.5 + i, reason=reason, retry_in=0.4))
    return board


def render(renderable: Any) -> tuple[list[str], list[Segment]]:
    console = Console(width=80, height=24, record=True, force_terminal=True, color_system="truecolor")
    segments = list(console.render(renderable))
    console.print(renderable)
    return console.export_text(styles=False).splitlines(), segments


def colour_of(segments: list[Segment], text: str) -> str | None:
    for segment in segments:
        if segment.text.strip() == text and segment.style is not None and segment.style.color is not None:
            return segment.style.color.name
    return None


@pytest.mark.parametrize("positions", [2, 5, 40])
def test_position_view_fits_80x24_with_the_header_on_the_first_line(positions: int) -> None:
    board = crowded_board(positions)
    lines, _ = render(board.render(102.0, STATUS, 24))
    assert len(lines) <= 24
    assert max(Console().measure(line).maximum for line in lines) <= 80
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].startswith("bybit-hybrid demo: FakeExchange") and "t=2.0s" in lines[0]
    text = "\n".join(lines)
    if positions == 2:  # with room, the whole key shows; with long numbers beside it, it truncates
        assert "linear/BTCUSDT" in text and "inverse/BTCUSD" in text
    assert "STALE" in text and "backoff" in text and "RECENT" in text
    if positions > 15:
        assert f"+{positions - 10} more" in text or " more" in text
        assert "…" in text  # long symbols and reasons truncate instead of wrapping


def test_position_view_colours_side_and_pnl_and_names_the_pnl_coin() -> None:
    _, segments = render(crowded_board(3).render(102.0, STATUS, 24))
    assert colour_of(segments, "Buy") == "green" and colour_of(segments, "Sell") == "red"
    assert colour_of(segments, "115.4000 USDT") == "green"
    assert colour_of(segments, "-0.00002207 BTC") == "red"  # inverse: PnL in the base coin
    assert colour_of(segments, "ok") == "green" and colour_of(segments, "backoff") == "red"
    assert colour_of(segments, "-10.12%") == "red"


@pytest.mark.parametrize(
    ("category", "symbol", "coin"),
    [
        ("linear", "BTCUSDT", "USDT"),
        ("linear", "BTCPERP", "USDC"),
        ("linear", "ETHUSDC", "USDC"),
        ("linear", "BTC-26DEC25", "USDC"),
        ("inverse", "BTCUSD", "BTC"),
        ("inverse", "ETHUSDH25", "ETH"),
    ],
)
def test_pnl_currency(category: str, symbol: str, coin: str) -> None:
    assert pnl_currency(category, symbol) == coin


def test_ticker_view_fits_80x24() -> None:
    symbols = [f"SYMBOL{i}WITHALONGNAMEUSDT" for i in range(30)]
    board = TickerBoard("bybit-hybrid watch: linear tickers (mainnet) " + "x" * 60, 100.0, symbols)
    lines, _ = render(board.render(101.0, STATUS, 24))
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
    assert lines[0].startswith("bybit-hybrid watch") and "more" in "\n".join(lines)


def test_a_board_with_lines_only_is_cut_to_the_screen() -> None:
    class LinesOnly:
        def lines(self, now: float, status: Any) -> list[str]:
            return ["title " + "y" * 120, *(f"row {i}" for i in range(40))]

    lines, _ = render(render_board(LinesOnly(), 0.0, {}, 24))
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines) and lines[0].startswith("title")


def test_the_summary_tells_positions_updates_reconnects_marks_and_problems() -> None:
    board = crowded_board(40)
    closed = update("linear", "BTCUSDT", "Buy", "115.4")
    board.apply(
        PositionClosed(link=Link.PRIVATE, at=103.0, position=_position(closed), cause="position", seq=2)
    )
    board.apply(ProtocolProblem(link=Link.LINEAR, at=104.0, detail="a frame that is not JSON"))
    lines = board.final_lines(110.0, STATUS)
    assert len(lines) <= 24
    text = "\n".join(lines)
    assert "ended after 10.0 s" in lines[0]
    assert "positions seen 40, open at the end 39" in text and "40 updates" in text
    assert "4 reconnects (inverse 1, linear 3)" in text
    assert "inverse/BTCUSD" in text and "BTC open" in text and "+26 more" in text
    assert "12 LinkDown" in text and "1 ProtocolProblem" in text and "1 updates at a stale mark" in text
    small = crowded_board(2)
    small.apply(
        PositionClosed(link=Link.PRIVATE, at=103.0, position=_position(closed), cause="position", seq=2)
    )
    assert "linear/BTCUSDT Buy" in "\n".join(small.final_lines(110.0, {}))
    assert "115.4000 USDT closed" in "\n".join(small.final_lines(110.0, {}))


def _position(e: Any) -> Any:
    from bybit_hybrid_core import Position

    fields = {name: getattr(e, name) for name in Position.__struct_fields__ if hasattr(e, name)}
    return Position(**fields)


def test_importing_the_library_does_not_import_rich() -> None:
    code = (
        "import sys, bybit_hybrid, bybit_hybrid.threaded, bybit_hybrid_core, bybit_hybrid.cli.view\n"
        "print(sorted(m for m in sys.modules if m == 'rich' or m.startswith('rich.')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_demo_ends_with_its_summary_and_json_stays_pure(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--duration", "1.5"]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out
    assert "positions seen" in out and "last marks:" in out and "problems:" in out
    assert main(["demo", "--duration", "1.5", "--json"]) == 0
    captured = capsys.readouterr()
    assert all("type" in json.loads(line) for line in captured.out.splitlines() if line.strip())
    assert "positions seen" in captured.err and "positions seen" not in captured.out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a pseudo-terminal through pty (Linux)")
def test_demo_in_an_80x24_terminal_draws_with_colour_and_prints_its_summary() -> None:
    import fcntl
    import pty
    import select
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env.update(TERM="xterm-256color", BYBIT_TESTNET="", BYBIT_DEMO="")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bybit_hybrid.cli", "demo", "--duration", "2.5"],
        stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True,
    )  # fmt: skip
    os.close(follower)
    output = b""
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the follower side closed: the demo ended
                    break
                if not chunk:
                    break
                output += chunk
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    text = output.decode()
    assert "Traceback" not in text
    assert "\x1b[32m" in text or "\x1b[38;" in text  # green (a Buy, a healthy link) in colour
    assert "POSITION" in text and "linear/BTCUSDT" in text and "positions seen" in text
