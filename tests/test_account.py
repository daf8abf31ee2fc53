"""Account data: the position book (seq rule, flat rows, hedge legs), per-row events, and PnL by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bybit_hybrid_core._config import Link
from bybit_hybrid_core._events import (
    ExecutionUpdate,
    FastExecutionUpdate,
    GreeksUpdate,
    OrderUpdate,
    Position,
    PositionClosed,
    PositionOpened,
    PositionUpdate,
    ProtocolProblem,
    WalletUpdate,
)
from bybit_hybrid_core._plane.account import Change, PositionBook, is_flat, to_position
from bybit_hybrid_core._plane.pnl import pnl_pct, unrealised_pnl
from test_hybrid_support import Plane, decoded, position_message, position_row, sample

D = Decimal


def _pos(side: str = "Buy", size: str = "1", seq: int = 1, idx: int = 0, **kw: object) -> Position:
    args: dict[str, object] = {"category": "linear", "symbol": "BTCUSDT", "position_idx": idx, "side": side}
    args.update(size=D(size), avg_price=D(100), seq=seq, **kw)
    return Position(**args)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------- PnL


@pytest.mark.parametrize(
    ("sample_name", "bybit_pnl"),
    [
        ("private-position-linear-real-2025.json", "1.392"),  # (3.1342 - 2.7862) * 4
        ("private-position-linear-real-2025-10.json", "0.0018"),  # (233.029 - 233.02) * 0.2
        ("private-position-usdc-perp-real-2026.json", "-0.00148"),  # (66472.02 - 66473.5) * 0.001
    ],
)
def test_linear_pnl_matches_bybits_own_figure(sample_name: str, bybit_pnl: str) -> None:
    row = decoded(sample(sample_name)).data[0]
    pnl = unrealised_pnl("linear", row.side, row.size, row.entry_price, row.mark_price)
    assert pnl == D(bybit_pnl)


def test_inverse_short_matches_the_docs_example() -> None:
    # docs/v5/position/position.mdx: Sell 300 BTCUSD at 27464.50441675, mark 28224.50, uPnL -0.00029413
    pnl = unrealised_pnl("inverse", "Sell", D(300), D("27464.50441675"), D("28224.50"))
    assert pnl is not None and pnl.quantize(D("0.00000001")) == D("-0.00029413")


def test_pnl_by_hand() -> None:
    # inverse long: 1000 USD of contracts from 20000 to 25000 earns 1000 * (1/20000 - 1/25000) = 0.01 BTC
    assert unrealised_pnl("inverse", "Buy", D(1000), D(20000), D(25000)) == D("0.01")
    assert pnl_pct("inverse", D(1000), D(20000), D("0.01")) == D(20)  # of 0.05 BTC entry notional
    # linear short: 2 from 100 to 90 earns 20, 10% of the 200 notional
    assert unrealised_pnl("linear", "Sell", D(2), D(100), D(90)) == D(20)
    assert pnl_pct("linear", D(2), D(100), D(20)) == D(10)
    # option short premium: 1 sold at 24000, marked at 24465, loses 465
    assert unrealised_pnl("option", "Sell", D(1), D(24000), D(24465)) == D(-465)
    # XRP long of the real sample: 1.392 on 11.1448 notional
    assert pnl_pct("linear", D(4), D("2.7862"), D("1.392")) == D("12.490130")


def test_pnl_undefined_cases() -> None:
    assert unrealised_pnl("linear", "", D(1), D(100), D(90)) is None
    assert unrealised_pnl("inverse", "Buy", D(1), D(0), D(90)) is None
    assert unrealised_pnl("inverse", "Buy", D(1), D(90), D(0)) is None
    assert pnl_pct("linear", D(0), D(100), D(1)) is None
    assert pnl_pct("linear", D(1), D(100), None) is None


def test_pnl_pct_of_an_absurd_position_is_left_unrounded() -> None:
    pct = pnl_pct("linear", D("1e-500"), D("1e-400"), D("1e100"))
    assert pct is not None and pct == D("1e1002")


def test_pnl_ignores_the_applications_decimal_context() -> None:
    import decimal

    with decimal.localcontext() as ctx:
        ctx.prec = 3
        assert unrealised_pnl("linear", "Buy", D("4"), D("2.7862"), D("3.1342")) == D("1.392")


# ---------------------------------------------------------------------------------------- position book


def test_seq_rule() -> None:
    book = PositionBook()
    assert book.apply(_pos(seq=10), None)[0] is Change.OPENED
    assert book.apply(_pos(size="2", seq=9), None) == (Change.IGNORED, None)
    assert book.get(("linear", "BTCUSDT", 0)) == _pos(seq=10)
    # a settings change reuses the last fill's seq: it is news, not a duplicate
    change, before = book.apply(_pos(seq=10, take_profit=D(120)), None)
    assert change is Change.UPDATED and before == _pos(seq=10)
    assert book.apply(_pos(size="0", side="", seq=11), None) == (
        Change.CLOSED,
        _pos(seq=10, take_profit=D(120)),
    )
    # the seq outlives the position: a late push cannot resurrect it
    assert book.apply(_pos(seq=10), None)[0] is Change.IGNORED
    assert book.seq(("linear", "BTCUSDT", 0)) == 11 and book.open_positions() == {}


@pytest.mark.parametrize(("side", "size"), [("", "0"), ("None", "0"), ("", "1"), ("None", "5"), ("Buy", "0")])
def test_flat_rows(side: str, size: str) -> None:
    assert is_flat(_pos(side=side, size=size))
    book = PositionBook()
    assert book.apply(_pos(side=side, size=size), None) == (Change.FLAT, None)


def test_hedge_legs_are_separate_keys() -> None:
    book = PositionBook()
    book.apply(_pos(side="Buy", idx=1, seq=1), None)
    book.apply(_pos(side="Sell", idx=2, seq=2), None)
    assert sorted(book.open_positions()) == [("linear", "BTCUSDT", 1), ("linear", "BTCUSDT", 2)]
    # the docs' closed row is the Sell leg (positionIdx 2) going flat with side ""
    closed = decoded(sample("private-position-closed-docs.json")).data[0]
    change, before = book.apply(to_position("linear", closed), None)
    assert change is Change.CLOSED and before is not None and before.side == "Sell"
    assert list(book.open_positions()) == [("linear", "BTCUSDT", 1)]


def test_generation_marks_touched_keys() -> None:
    book = PositionBook()
    book.apply(_pos(seq=1), None)
    epoch = book.generation
    assert book.touched(("linear", "BTCUSDT", 0)) <= epoch
    book.apply(_pos(seq=2, idx=1), None)
    assert book.touched(("linear", "BTCUSDT", 1)) > epoch and book.touched(("linear", "X", 0)) == 0
    # Bybit repeats an unchanged position whenever an order is placed: a repeat is not news
    epoch = book.generation
    assert book.apply(_pos(seq=1), None)[0] is Change.UPDATED
    assert book.touched(("linear", "BTCUSDT", 0)) <= epoch


def test_a_snapshot_close_seals_the_key_at_its_seq() -> None:
    book = PositionBook()
    book.apply(_pos(seq=7), None)
    assert book.close(("linear", "BTCUSDT", 0)) == _pos(seq=7)
    with pytest.raises(KeyError):
        book.close(("linear", "BTCUSDT", 0))
    # its closing fill had a higher seq we never saw: the old state, same seq, is stale
    assert book.apply(_pos(seq=7), None)[0] is Change.IGNORED
    assert book.apply(_pos(seq=8), None)[0] is Change.OPENED


def test_older_counts_stream_pushes_in_a_row_and_forget_lets_the_next_one_in() -> None:
    book = PositionBook()
    key = ("linear", "BTCUSDT", 0)
    book.apply(_pos(seq=10**12), None)  # a bogus seq far ahead
    for n in range(3):
        assert book.apply(_pos(size="2", seq=11 + n), None, stream=True)[0] is Change.IGNORED
    assert book.older(key) == 3
    book.apply(_pos(size="2", seq=5), None)  # a snapshot row (not the stream) never counts
    assert book.older(key) == 3
    book.forget(key)
    assert book.older(key) == 0 and book.seq(key) is None
    change, before = book.apply(_pos(size="3", seq=14), None, stream=True)
    assert change is Change.UPDATED and before == _pos(seq=10**12) and book.seq(key) == 14
    # an accepted push ends the run
    book.apply(_pos(size="3", seq=1), None, stream=True)
    book.apply(_pos(size="3", seq=15), None, stream=True)
    assert book.older(key) == 0


def test_a_sealed_key_forgotten_opens_again() -> None:
    book = PositionBook()
    book.apply(_pos(seq=7), None)
    book.close(("linear", "BTCUSDT", 0))
    book.forget(("linear", "BTCUSDT", 0))
    assert book.apply(_pos(seq=7), None)[0] is Change.OPENED


def test_row_conversion_of_unset_fields() -> None:
    row = decoded(sample("private-position-linear-real-2025.json")).data[0]
    position = to_position("linear", row)
    assert position.key == ("linear", "XRPUSDT", 0)
    assert (position.side, position.size, position.avg_price) == ("Buy", D(4), D("2.7862"))
    assert position.take_profit is None and position.stop_loss is None and position.trailing_stop is None
    assert position.liq_price is None and position.leverage == D(10)
    assert (position.seq, position.updated_ms) == (19371738695, 1737705600059)
    msg = position_message(position_row("X", "Buy", "1", "5", 1, takeProfit="6", leverage="", liqPrice="0"))
    position = to_position("linear", msg.data[0])
    assert position.take_profit == D(6) and position.leverage is None and position.liq_price is None


# ------------------------------------------------------------------------------------ through the plane


def test_several_rows_per_message_and_category_from_the_topic() -> None:
    plane = Plane()
    rows = [
        position_row("BTCUSDT", "Buy", "1", "100", 5, idx=1, category=""),
        position_row("BTCUSDT", "Sell", "2", "101", 5, idx=2, category=""),
        position_row("ETHUSDT", "", "0", "0", 3, category=""),
    ]
    msg = position_message(*rows)
    plane.dp.on_message(Link.PRIVATE, type(msg)(topic="position.linear", creation_time=1, data=msg.data), 1.0)
    opened = plane.of(PositionOpened)
    assert [e.position.key for e in opened] == [("linear", "BTCUSDT", 1), ("linear", "BTCUSDT", 2)]
    assert len(plane.of(PositionUpdate)) == 2 and plane.of(PositionClosed) == []


def test_rows_without_a_position_category_are_reported() -> None:
    plane = Plane()
    plane.dp.on_message(
        Link.PRIVATE, position_message(position_row("BTCUSDT", "Buy", "1", "1", 1, category="")), 1.0
    )
    plane.dp.on_message(
        Link.PRIVATE, position_message(position_row("BTCUSDT", "Buy", "1", "1", 1, category="spot")), 1.0
    )
    assert len(plane.of(ProtocolProblem)) == 2 and plane.dp.positions() == {}


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("private-order-linear-filled-real-2025-10.json", OrderUpdate),
        ("private-order-option-docs.json", OrderUpdate),
        ("private-execution-linear-real-2025.json", ExecutionUpdate),
        ("private-execution-spot-real-2023.json", ExecutionUpdate),
        ("private-execution-fast-real-2026.json", FastExecutionUpdate),
        ("private-wallet-real-2026.json", WalletUpdate),
        ("private-greeks-docs.json", GreeksUpdate),
    ],
)
def test_one_event_per_row(name: str, kind: type) -> None:
    plane = Plane()
    msg = decoded(sample(name))
    plane.dp.on_message(Link.PRIVATE, msg, 2.5)
    events = plane.take()
    assert len(events) == len(msg.data) >= 1
    assert all(isinstance(e, kind) and e.link is Link.PRIVATE and e.at == 2.5 for e in events)
    rows = [
        getattr(e, next(f for f in ("order", "execution", "wallet", "greeks") if hasattr(e, f)))
        for e in events
    ]
    assert rows == list(msg.data)
