"""`bybit-hybrid shadow`: REST marks compared with the stream's, on 127.0.0.1 only.

Runs in-process through `main(argv)` against the served FakeExchange (`--sim`, or `--ws-url` with keys), with
the hidden `--poll-interval` so that a run of a few seconds holds several comparisons. No assertion is
about how long a run took; the board's view is rendered to an 80x24 recording console.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from bybit_hybrid.cli import main
from bybit_hybrid.cli.errors import EXIT_DIVERGED, EXIT_NOTHING_COMPARED, EXIT_USAGE
from bybit_hybrid.cli.shadow import ShadowBoard, parse_diverge, shadow_mode
from bybit_hybrid.server import ServedExchange

from bybit_hybrid_core import LinkStatus, MarksCompared, Mode, RolledBack
from bybit_hybrid_core._config import Link

FAST = ["--poll-interval", "0.3"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "HYBRID_MODE",
        "HYBRID_SHARE",
        "BYBIT_TESTNET",
        "BYBIT_DEMO",
        "BYBIT_API_KEY",
        "BYBIT_API_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def served() -> Iterator[ServedExchange]:
    with ServedExchange(tls=False) as exchange:
        yield exchange


def summary_rows(text: str) -> dict[str, tuple[int, int, Decimal]]:
    """The summary's per-symbol rows: key -> (compared, diverged, max %)."""
    rows = {}
    for m in re.finditer(r"^\s+(\S+:\S+)\s+(\d+) compared,\s+(\d+) diverged, max ([\d.]+)%", text, re.M):
        rows[m[1]] = (int(m[2]), int(m[3]), Decimal(m[4]))
    return rows


def test_without_a_divergence_it_compares_every_open_position_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["shadow", "--sim", "--duration", "2.5", *FAST]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out  # not a terminal: lines
    assert "ended after" in out and "ok: " in out
    rows = summary_rows(out)
    assert {"linear:BTCUSDT", "linear:ETHUSDT", "inverse:BTCUSD"} <= set(rows), out
    assert all(compared > 0 and diverged == 0 and top < 1 for compared, diverged, top in rows.values())


def test_a_rest_mark_5_percent_off_is_caught_in_production_mode(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # production compares GET /v5/market/tickers, the answer the FakeExchange's fault moves
    monkeypatch.setenv("HYBRID_MODE", "production")
    assert main(["shadow", "--sim", "--duration", "2.5", "--diverge", "BTCUSDT:5", *FAST]) == EXIT_DIVERGED
    out = capsys.readouterr().out
    assert "DIVERGED" in out
    rows = summary_rows(out)
    _, diverged, top = rows["linear:BTCUSDT"]
    assert diverged > 0 and Decimal("4.5") < top < Decimal("5.1")  # |stream - rest| / rest: 5/105 = 4.76 %
    assert all(r[1] == 0 for key, r in rows.items() if key != "linear:BTCUSDT")


def test_a_rest_mark_5_percent_off_is_caught_in_parallel_mode(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shadow", "--sim", "--duration", "2.5", "--diverge", "BTCUSDT:5", *FAST]) == EXIT_DIVERGED
    rows = summary_rows(capsys.readouterr().out)
    assert Decimal("4.5") < rows["linear:BTCUSDT"][2] < Decimal("5.1")


def test_json_is_ndjson_on_stdout_with_the_summary_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shadow", "--sim", "--duration", "2", "--json", *FAST]) == 0
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
    compared = [e for e in events if e["type"] == "MarksCompared"]
    assert compared and all(Decimal(e["divergence_pct"]) < 1 and e["diverged"] is False for e in compared)
    assert "ended after" in captured.err and "ok: " in captured.err


def test_an_account_with_keys_never_shows_the_secret(
    served: ServedExchange, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BYBIT_API_KEY", served.api_key)
    monkeypatch.setenv("BYBIT_API_SECRET", served.api_secret)
    served.call(lambda ex: ex.open_position("BTCUSDT", "Buy", "0.5"))
    assert main(["shadow", "--ws-url", served.ws_url, "--duration", "2", *FAST]) == 0
    captured = capsys.readouterr()
    assert served.api_secret not in captured.out + captured.err
    assert summary_rows(captured.out)["linear:BTCUSDT"][0] > 0


def test_no_open_position_is_nothing_compared(
    served: ServedExchange, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BYBIT_API_KEY", served.api_key)
    monkeypatch.setenv("BYBIT_API_SECRET", served.api_secret)
    assert main(["shadow", "--ws-url", served.ws_url, "--duration", "1", *FAST]) == EXIT_NOTHING_COMPARED
    assert "nothing compared" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["shadow", "--duration", "1"], {}),  # no keys, no --sim
        (["shadow", "--diverge", "BTCUSDT:5"], {"BYBIT_API_KEY": "k", "BYBIT_API_SECRET": "s"}),
        (["shadow", "--sim", "--diverge", "BTCUSDT"], {}),
        (["shadow", "--sim", "--diverge", "BTCUSDT:abc"], {}),
        (["shadow", "--sim", "--testnet"], {}),
        (["shadow", "--sim", "--threshold", "0"], {}),
        (["shadow", "--sim"], {"HYBRID_MODE": "rest"}),
        (["shadow", "--sim"], {"HYBRID_MODE": "fast"}),
        (["shadow", "--sim"], {"HYBRID_MODE": "cutover", "HYBRID_SHARE": "2"}),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == EXIT_USAGE
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("bybit-hybrid: error: "), err


def test_the_mode_comes_from_hybrid_mode() -> None:
    assert shadow_mode({}) == (Mode.PARALLEL, 1.0)
    assert shadow_mode({"HYBRID_MODE": "Production"}) == (Mode.PRODUCTION, 1.0)
    assert shadow_mode({"HYBRID_MODE": "cutover", "HYBRID_SHARE": "0.25"}) == (Mode.CUTOVER, 0.25)
    assert parse_diverge(["btcusdt:5", "ETHUSDT:-0.5"]) == [
        ("BTCUSDT", Decimal(5)),
        ("ETHUSDT", Decimal("-0.5")),
    ]


# ------------------------------------------------------------------------------------------ the board


def compared(
    symbol: str, pct: str, at: float, threshold: str = "1", category: str = "linear"
) -> MarksCompared:
    rest = Decimal("100")
    return MarksCompared(
        link=Link.LINEAR, at=at, category=category, symbol=symbol,
        stream_mark=rest * (1 + Decimal(pct) / 100), rest_mark=rest, divergence_pct=Decimal(pct),
        diverged=Decimal(pct) > Decimal(threshold),
    )  # fmt: skip


def status(link: Link) -> LinkStatus:
    return LinkStatus(
        link=link, url="ws://x", state="LIVE", connected=True, authenticated=False, subscriptions=("a",),
        pending=(), failed=(), reconnects=0, dials=1, downs=0, messages=10, problems=0,
        last_message_age=0.1, last_pong_rtt=0.001, live_for=5.0,
    )  # fmt: skip


def board_with(symbols: int) -> ShadowBoard:
    board = ShadowBoard("bybit-hybrid shadow: parallel, FakeExchange at ws://127.0.0.1:54321, key test…(8)",
                        100.0, Decimal(1))  # fmt: skip
    events: list[Any] = []
    for i in range(symbols):
        events += [
            compared(f"SYM{i}LONGNAME1000USDT", "0.2", 101.0),
            compared(f"SYM{i}LONGNAME1000USDT", "0.1", 102.0),
        ]
    events += [compared("BTCUSDT", "4.762", 101.5), compared("BTCUSDT", "0.5", 102.5)]
    events.append(
        RolledBack(link=Link.PRIVATE, at=103.0, reasons=("divergences_critical",), mode="production")
    )
    for e in events:
        board.observe(e)
        board.apply(e)
    return board


def test_the_board_counts_per_symbol_and_its_verdict() -> None:
    board = board_with(2)
    assert board.comparisons == 6 and board.divergences == 1 and board.verdict() == EXIT_DIVERGED
    row = board.rows["linear:BTCUSDT"]
    assert (row.comparisons, row.divergences, row.max_pct, row.last_pct) == (
        2,
        1,
        Decimal("4.762"),
        Decimal("0.5"),
    )
    final = "\n".join(board.final_lines(104.0, {}))
    assert "DIVERGED: 1 of 6 comparisons over 1%" in final and "linear:BTCUSDT" in final
    log = "\n".join(board.log)
    assert "RolledBack" in log and "BTCUSDT 4.762% off: 104.76200 vs REST 100" in log
    assert ShadowBoard("t", 0.0, Decimal(1)).verdict() == EXIT_NOTHING_COMPARED


@pytest.mark.parametrize("symbols", [1, 40])
def test_the_view_fits_80x24(symbols: int) -> None:
    from rich.console import Console

    board = board_with(symbols)
    links = {link: status(link) for link in (Link.PRIVATE, Link.LINEAR, Link.INVERSE)}
    console = Console(width=80, height=24, record=True, force_terminal=True, color_system="truecolor")
    console.print(board.render(104.0, links, 24))
    lines = console.export_text(styles=False).splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
    assert lines[0].startswith("bybit-hybrid shadow") and "t=4.0s" in lines[0]
    text = "\n".join(lines)
    assert "STREAM" in text and "REST" in text and "MAX%" in text and "4.762%" in text
    if symbols > 15:
        assert " more" in text


def test_help_names_the_examples_and_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shadow", "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "bybit-hybrid shadow --sim" in out and "--diverge SYMBOL:PCT" in out
    assert all(f"\n  {code}  " in out for code in range(6))
    assert "--poll-interval" not in out  # a testing knob, not an operator's


def test_ctrl_c_ends_a_run_with_its_summary_and_verdict() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "BYBIT_TESTNET": "", "BYBIT_DEMO": "", "HYBRID_MODE": ""}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bybit_hybrid.cli", "shadow", "--sim", *FAST],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # not a terminal: the comparisons come as lines
            if " compared " in line:
                break
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "ended after" in rest and "ok: " in rest
