"""Private topic messages (BYBIT_V5.md §6): position, order, execution, execution.fast, wallet, greeks.

Money fields that Bybit may send as `""` are `Decimal | None`; fields a newer or older payload may lack
default to None (or "", 0, False), so both still decode. Millisecond times sent as strings become ints.
"""

from __future__ import annotations

import msgspec
from msgspec import field

from .fields import Dec, DecimalOrNone, IntOrNone, MsInt, register

__all__ = [
    "ExecutionMessage",
    "ExecutionRow",
    "ExtraFee",
    "FastExecutionMessage",
    "FastExecutionRow",
    "GreeksMessage",
    "GreeksRow",
    "OrderMessage",
    "OrderRow",
    "PositionMessage",
    "PositionRow",
    "WalletCoin",
    "WalletMessage",
    "WalletRow",
]

_DN = DecimalOrNone


class _Row(msgspec.Struct, frozen=True, kw_only=True, rename="camel", repr_omit_defaults=True):
    pass


class PositionRow(_Row, frozen=True, kw_only=True):
    """One position (§6 position). Flat when `size == 0` or `side in ("", "None")`."""

    category: str = ""
    symbol: str
    side: str = ""  # "Buy" | "Sell" | "" | "None"
    size: Dec
    position_idx: int = 0  # 0 one-way, 1 hedge Buy, 2 hedge Sell
    seq: int = -1
    updated_time: MsInt = 0
    created_time: MsInt = 0
    open_time: int = 0
    entry_price: _DN = None
    mark_price: _DN = None
    position_value: _DN = None
    leverage: _DN = None  # "" under portfolio margin
    liq_price: _DN = None  # "" when out of range
    bust_price: _DN = None
    break_even_price: _DN = None
    session_avg_price: _DN = None
    take_profit: _DN = None
    stop_loss: _DN = None
    trailing_stop: _DN = None
    unrealised_pnl: _DN = None
    cur_realised_pnl: _DN = None
    cum_realised_pnl: _DN = None
    position_im: _DN = field(default=None, name="positionIM")
    position_mm: _DN = field(default=None, name="positionMM")
    position_im_by_mp: _DN = field(default=None, name="positionIMByMp")
    position_mm_by_mp: _DN = field(default=None, name="positionMMByMp")
    position_balance: _DN = None
    risk_id: int = 0
    risk_limit_value: _DN = None
    auto_add_margin: int = 0
    position_status: str = "Normal"
    adl_rank_indicator: int = 0
    is_reduce_only: bool = False
    tpsl_mode: str = ""
    trade_mode: int = 0
    mmr_sys_updated_time: IntOrNone = None
    leverage_sys_updated_time: IntOrNone = None
    delta: _DN = None
    gamma: _DN = None
    vega: _DN = None
    theta: _DN = None


class OrderRow(_Row, frozen=True, kw_only=True):
    """Full order state after a change (§6 order)."""

    category: str = ""
    symbol: str
    order_id: str
    order_link_id: str = ""
    side: str
    order_status: str
    order_type: str = ""
    position_idx: int = 0
    price: _DN = None
    qty: _DN = None
    avg_price: _DN = None
    leaves_qty: _DN = None
    leaves_value: _DN = None
    cum_exec_qty: _DN = None
    cum_exec_value: _DN = None
    cum_exec_fee: _DN = None
    cum_fee_detail: dict[str, Dec] = {}
    closed_pnl: _DN = None
    time_in_force: str = ""
    cancel_type: str = ""
    reject_reason: str = ""
    stop_order_type: str = ""
    order_iv: _DN = None
    trigger_price: _DN = None
    trigger_by: str = ""
    trigger_direction: int = 0
    take_profit: _DN = None
    stop_loss: _DN = None
    tp_trigger_by: str = ""
    sl_trigger_by: str = ""
    tp_limit_price: _DN = None
    sl_limit_price: _DN = None
    tpsl_mode: str = ""
    reduce_only: bool = False
    close_on_trigger: bool = False
    is_leverage: str = ""
    block_trade_id: str = ""
    last_price_on_created: _DN = None
    place_type: str = ""
    smp_type: str = ""
    smp_group: int = 0
    smp_order_id: str = ""
    create_type: str = ""
    market_unit: str = ""
    fee_currency: str = ""
    parent_order_link_id: str = ""
    slippage_tolerance: _DN = None
    slippage_tolerance_type: str = ""
    rpi_taker_access: bool = False
    rpi_matched_qty: _DN = None
    created_time: MsInt = 0
    updated_time: MsInt = 0


class ExtraFee(_Row, frozen=True, kw_only=True):
    """One extra fee of an execution (e.g. GST)."""

    fee_coin: str = ""
    fee_type: str = ""
    sub_fee_type: str = ""
    fee_rate: _DN = None
    fee: _DN = None


class ExecutionRow(_Row, frozen=True, kw_only=True):
    """One fill (§6 execution); several may share a `seq`."""

    category: str = ""
    symbol: str
    exec_id: str
    order_id: str
    order_link_id: str = ""
    side: str
    exec_price: Dec
    exec_qty: Dec
    exec_type: str = "Trade"
    exec_value: _DN = None
    exec_fee: _DN = None
    exec_pnl: _DN = None
    fee_rate: _DN = None
    fee_currency: str = ""
    extra_fees: tuple[ExtraFee, ...] = ()
    exec_time: MsInt = 0
    seq: int = -1
    is_maker: bool = False
    closed_size: _DN = None
    leaves_qty: _DN = None
    order_price: _DN = None
    order_qty: _DN = None
    order_type: str = ""
    stop_order_type: str = ""
    mark_price: _DN = None
    index_price: _DN = None
    underlying_price: _DN = None
    trade_iv: _DN = None
    mark_iv: _DN = None
    block_trade_id: str = ""
    is_leverage: str = ""
    market_unit: str = ""
    create_type: str = ""


class FastExecutionRow(_Row, frozen=True, kw_only=True):
    """One fill from `execution.fast` (§6): only `Trade` fills, minimal fields, lowest latency."""

    category: str = ""
    symbol: str
    exec_id: str
    order_id: str
    order_link_id: str = ""  # always "" for maker fills
    side: str
    exec_price: Dec
    exec_qty: Dec
    exec_time: MsInt = 0
    is_maker: bool = False
    seq: int = -1


class WalletCoin(_Row, frozen=True, kw_only=True):
    """One coin of a wallet row."""

    coin: str
    equity: _DN = None
    usd_value: _DN = None
    wallet_balance: _DN = None
    available_to_withdraw: _DN = None
    available_to_borrow: _DN = None
    borrow_amount: _DN = None
    accrued_interest: _DN = None
    total_order_im: _DN = field(default=None, name="totalOrderIM")
    total_position_im: _DN = field(default=None, name="totalPositionIM")
    total_position_mm: _DN = field(default=None, name="totalPositionMM")
    unrealised_pnl: _DN = None
    cum_realised_pnl: _DN = None
    bonus: _DN = None
    locked: _DN = None
    spot_hedging_qty: _DN = None
    spot_borrow: _DN = None
    collateral_switch: bool = False
    margin_collateral: bool = False


class WalletRow(_Row, frozen=True, kw_only=True):
    """One account's balances (§6 wallet); `coins` is Bybit's `coin` array."""

    account_type: str = ""
    coins: tuple[WalletCoin, ...] = field(default=(), name="coin")
    total_equity: _DN = None
    total_wallet_balance: _DN = None
    total_margin_balance: _DN = None
    total_available_balance: _DN = None
    total_perp_upl: _DN = field(default=None, name="totalPerpUPL")
    total_initial_margin: _DN = None
    total_initial_margin_by_mp: _DN = None
    total_maintenance_margin: _DN = None
    total_maintenance_margin_by_mp: _DN = None
    account_im_rate: _DN = field(default=None, name="accountIMRate")
    account_im_rate_by_mp: _DN = field(default=None, name="accountIMRateByMp")
    account_mm_rate: _DN = field(default=None, name="accountMMRate")
    account_mm_rate_by_mp: _DN = field(default=None, name="accountMMRateByMp")
    account_ltv: _DN = field(default=None, name="accountLTV")


class GreeksRow(_Row, frozen=True, kw_only=True):
    """Option greeks per base coin (§6 greeks)."""

    base_coin: str
    total_delta: _DN = None
    total_gamma: _DN = None
    total_vega: _DN = None
    total_theta: _DN = None


class _Private(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    topic: str
    creation_time: int
    id: str | None = None  # absent on execution.fast


class PositionMessage(_Private, frozen=True, kw_only=True):
    """`position` / `position.{category}`."""

    data: tuple[PositionRow, ...]


class OrderMessage(_Private, frozen=True, kw_only=True):
    """`order` / `order.{category}`."""

    data: tuple[OrderRow, ...]


class ExecutionMessage(_Private, frozen=True, kw_only=True):
    """`execution` / `execution.{category}`."""

    data: tuple[ExecutionRow, ...]


class FastExecutionMessage(_Private, frozen=True, kw_only=True):
    """`execution.fast` / `execution.fast.{category}` (no `id`)."""

    data: tuple[FastExecutionRow, ...]


class WalletMessage(_Private, frozen=True, kw_only=True):
    """`wallet`."""

    data: tuple[WalletRow, ...]


class GreeksMessage(_Private, frozen=True, kw_only=True):
    """`greeks`."""

    data: tuple[GreeksRow, ...]


# ------------------------------------------------------------------------------------------ number rules
# (see _codec.fields "field rules"). Prices and sizes are >= 0: real rows hold "0" for what is unset or
# does not apply (liqPrice, takeProfit, stopLoss, trailingStop, entryPrice of a flat position; an order's
# price "0" for a market order, triggerPrice "0.00"). PnL, fees, fee rates, IVs, greeks, margins and every
# wallet figure may be negative (samples: cumRealisedPnl "-25.06579337"; private-wallet-real-2026.json has
# a coin with equity, walletBalance and usdValue all negative), so they are only finite and sane.

_SIDES = frozenset({"Buy", "Sell", "", "None"})
_HEDGE_SIDE = {1: "Buy", 2: "Sell"}  # positionIdx (BYBIT_V5.md §6 position; docs/v5/enum.mdx)


def _position_problem(row: PositionRow) -> str | None:
    """A position's side, size, positionIdx and mark must agree (BYBIT_V5.md §6 position): the core keys
    positions by (category, symbol, positionIdx) and prices an open one by its side and mark."""
    if row.side not in _SIDES:
        return f'side: expected Buy, Sell, "" or None, not {row.side[:20]!r}'
    if row.position_idx not in (0, 1, 2):
        return "positionIdx: expected 0 (one-way), 1 (hedge Buy side) or 2 (hedge Sell side)"
    if not row.size > 0:
        return None  # flat: side "" / "None" and mark "0" are what Bybit sends for an empty position
    if row.side in ("", "None"):
        return f"side: an open position (size {row.size}) needs side Buy or Sell, not {row.side!r}"
    want = _HEDGE_SIDE.get(row.position_idx)
    if want is not None and row.side != want:
        return f"side: positionIdx {row.position_idx} is the hedge-mode {want} side, not {row.side}"
    if row.mark_price is not None and not row.mark_price > 0:
        return "markPrice: expected a positive price (the position is open)"
    return None


register(
    PositionRow,
    prices=(
        "entry_price", "mark_price", "liq_price", "bust_price", "break_even_price", "session_avg_price",
        "take_profit", "stop_loss", "trailing_stop",
    ),
    sizes=("size",),
    amounts=("position_value",),
    signed=(
        "leverage", "unrealised_pnl", "cur_realised_pnl", "cum_realised_pnl", "position_im", "position_mm",
        "position_im_by_mp", "position_mm_by_mp", "position_balance", "risk_limit_value",
        "delta", "gamma", "vega", "theta",
    ),
    check=_position_problem,
)  # fmt: skip
register(
    OrderRow,
    prices=(
        "price", "avg_price", "trigger_price", "take_profit", "stop_loss", "tp_limit_price", "sl_limit_price",
        "last_price_on_created",
    ),
    sizes=("qty", "leaves_qty", "cum_exec_qty", "rpi_matched_qty"),
    amounts=("leaves_value", "cum_exec_value"),
    signed=("cum_exec_fee", "cum_fee_detail", "closed_pnl", "order_iv", "slippage_tolerance"),
)  # fmt: skip
register(ExtraFee, signed=("fee_rate", "fee"))
register(
    ExecutionRow,
    prices=("exec_price", "order_price", "mark_price", "index_price", "underlying_price"),
    sizes=("exec_qty", "closed_size", "leaves_qty", "order_qty"),
    amounts=("exec_value",),
    signed=("exec_fee", "exec_pnl", "fee_rate", "trade_iv", "mark_iv"),
)
register(FastExecutionRow, prices=("exec_price",), sizes=("exec_qty",))
register(
    WalletCoin,
    signed=(
        "equity", "usd_value", "wallet_balance", "available_to_withdraw", "available_to_borrow",
        "borrow_amount", "accrued_interest", "total_order_im", "total_position_im", "total_position_mm",
        "unrealised_pnl", "cum_realised_pnl", "bonus", "locked", "spot_hedging_qty", "spot_borrow",
    ),
)  # fmt: skip
register(
    WalletRow,
    signed=(
        "total_equity", "total_wallet_balance", "total_margin_balance", "total_available_balance",
        "total_perp_upl", "total_initial_margin", "total_initial_margin_by_mp", "total_maintenance_margin",
        "total_maintenance_margin_by_mp", "account_im_rate", "account_im_rate_by_mp", "account_mm_rate",
        "account_mm_rate_by_mp", "account_ltv",
    ),
)  # fmt: skip
register(GreeksRow, signed=("total_delta", "total_gamma", "total_vega", "total_theta"))
