"""Public topic messages (BYBIT_V5.md §5): tickers, orderbook, publicTrade, kline, allLiquidation.

Every Struct is frozen with snake_case attributes; wire keys are camelCase (`rename="camel"`) or the single
letters Bybit uses for trades and books (`T`, `s`, `S`, ...), named explicitly. They are `gc=False`: they
hold only immutable scalars and tuples, so they can never be part of a reference cycle, and market data
is the bulk of all allocations (a few % faster, bench/bench_decode.py).
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from msgspec import UNSET, UnsetType, field

from .fields import Dec, DecimalOrNone, IntOrNone, register

__all__ = [
    "Kline",
    "KlineMessage",
    "Liquidation",
    "LiquidationMessage",
    "OldLiquidationMessage",
    "OrderbookData",
    "OrderbookMessage",
    "PublicTrade",
    "PublicTradeMessage",
    "TickerData",
    "TickerMessage",
]

# Plain types, no hook: `decode` rewrites Bybit's `"key":""` to `"key":null` before decoding a ticker, so
# msgspec's native (C) Decimal parsing does the work; 3x faster than a dec_hook per field (bench/). `Dec`
# is Decimal for the type checker and refuses a bare JSON number in the decode (`fields.Dec`).
_D = Dec | None | UnsetType


class TickerData(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, rename="camel", repr_omit_defaults=True
):
    """One ticker: a linear/inverse snapshot or delta, a spot ticker or an option ticker (§5 tickers).

    Deltas carry only changed fields, so every field but `symbol` is `UNSET` when absent; `None` means Bybit
    sent `""` (not applicable, e.g. `funding_rate` on dated futures). Merge a delta into the cached snapshot
    with `msgspec.structs.replace(snapshot, **changed)`.
    """

    symbol: str
    # linear / inverse (and partly spot)
    tick_direction: str | UnsetType | None = UNSET
    price24h_pcnt: _D = UNSET
    last_price: _D = UNSET
    prev_price24h: _D = field(default=UNSET, name="prevPrice24h")  # rename="camel" would say "...24H"
    high_price24h: _D = field(default=UNSET, name="highPrice24h")
    low_price24h: _D = field(default=UNSET, name="lowPrice24h")
    prev_price1h: _D = field(default=UNSET, name="prevPrice1h")
    mark_price: _D = UNSET
    index_price: _D = UNSET
    open_interest: _D = UNSET
    open_interest_value: _D = UNSET
    single_open_interest: _D = UNSET
    single_open_interest_value: _D = UNSET
    turnover24h: _D = UNSET
    volume24h: _D = UNSET
    next_funding_time: IntOrNone | UnsetType = UNSET  # ms, sent as a string: through the hook (snapshots)
    funding_rate: _D = UNSET
    funding_interval_hour: IntOrNone | UnsetType = UNSET
    funding_cap: _D = UNSET
    bid1_price: _D = UNSET
    bid1_size: _D = UNSET
    ask1_price: _D = UNSET
    ask1_size: _D = UNSET
    delivery_time: datetime | UnsetType | None = UNSET
    basis_rate: _D = UNSET
    basis: _D = UNSET
    basis_rate_year: _D = UNSET
    delivery_fee_rate: _D = UNSET
    predicted_delivery_price: _D = UNSET
    pre_open_price: _D = UNSET
    pre_qty: _D = UNSET
    cur_pre_listing_phase: str | UnsetType | None = UNSET
    # spot
    usd_index_price: _D = UNSET
    # option
    bid_price: _D = UNSET
    bid_size: _D = UNSET
    bid_iv: _D = UNSET
    ask_price: _D = UNSET
    ask_size: _D = UNSET
    ask_iv: _D = UNSET
    mark_price_iv: _D = UNSET
    underlying_price: _D = UNSET
    total_volume: _D = UNSET
    total_turnover: _D = UNSET
    delta: _D = UNSET
    gamma: _D = UNSET
    vega: _D = UNSET
    theta: _D = UNSET
    change24h: _D = UNSET


class TickerMessage(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """`tickers.{symbol}`. `type` is "snapshot" or "delta"; `cs` is the cross sequence (absent on options)."""

    topic: str
    type: str
    ts: int
    data: TickerData
    cs: int | None = None
    id: str | None = None  # options only


Level = tuple[Dec, Dec]


class OrderbookData(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Levels as (price, size); size 0 deletes a level in a delta. `u` == 1 means reset (§5 orderbook)."""

    s: str
    b: tuple[Level, ...] = ()
    a: tuple[Level, ...] = ()
    u: int
    seq: int = 0


class OrderbookMessage(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """`orderbook.{depth}.{symbol}`. `cts` is the matching engine's time (absent on old spot frames)."""

    topic: str
    type: str
    ts: int
    data: OrderbookData
    cts: int | None = None
    id: str | None = None  # options only


class PublicTrade(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One row of `publicTrade.{symbol}` (options: per base coin, with mark/index price and IVs)."""

    time: int = field(name="T")
    symbol: str = field(name="s")
    side: str = field(name="S")
    size: Dec = field(name="v")
    price: Dec = field(name="p")
    tick_direction: str | None = field(default=None, name="L")
    trade_id: str = field(default="", name="i")
    block_trade: bool = field(default=False, name="BT")
    rpi: bool = field(default=False, name="RPI")
    seq: int | None = None
    mark_price: DecimalOrNone = field(default=None, name="mP")
    index_price: DecimalOrNone = field(default=None, name="iP")
    mark_iv: DecimalOrNone = field(default=None, name="mIv")
    iv: DecimalOrNone = None


class PublicTradeMessage(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """`publicTrade.{symbol}`: a burst of trades (a burst > 1024 is split, sharing `seq`)."""

    topic: str
    ts: int
    data: tuple[PublicTrade, ...]
    type: str = "snapshot"
    id: str | None = None  # options only


class Kline(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One candle; `confirm` is true once it has closed."""

    start: int
    end: int
    interval: str
    open: Dec
    close: Dec
    high: Dec
    low: Dec
    volume: Dec
    turnover: Dec
    confirm: bool
    timestamp: int


class KlineMessage(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """`kline.{interval}.{symbol}`."""

    topic: str
    ts: int
    data: tuple[Kline, ...]
    type: str = "snapshot"


class Liquidation(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One `allLiquidation` row; `side` "Buy" means a long was liquidated."""

    time: int = field(name="T")
    symbol: str = field(name="s")
    side: str = field(name="S")
    size: Dec = field(name="v")
    price: Dec = field(name="p")


class LiquidationMessage(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """`allLiquidation.{symbol}` (and the deprecated `liquidation.{symbol}`, converted to the same rows)."""

    topic: str
    ts: int
    data: tuple[Liquidation, ...]
    type: str = "snapshot"


class _OldLiquidation(msgspec.Struct, frozen=True, kw_only=True, gc=False, rename="camel"):
    updated_time: int
    symbol: str
    side: str
    size: Dec
    price: Dec


class OldLiquidationMessage(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Wire shape of the deprecated `liquidation.{symbol}` (data is one object); decode converts it."""

    topic: str
    ts: int
    data: _OldLiquidation
    type: str = "snapshot"

    def convert(self) -> LiquidationMessage:
        d = self.data
        row = Liquidation(time=d.updated_time, symbol=d.symbol, side=d.side, size=d.size, price=d.price)
        return LiquidationMessage(topic=self.topic, ts=self.ts, data=(row,), type=self.type)


# ------------------------------------------------------------------------------------------ number rules
# (see _codec.fields "field rules"). Prices, sizes and notional amounts are >= 0; a ticker's mark prices
# every position, so it must be > 0 where present. Real samples hold "0" for prices and sizes that do not
# apply (an option's bidPrice "0", predictedDeliveryPrice "0.00", turnover24h "0.0000"): zero is allowed.
# Rates, changes, basis, implied volatilities and greeks may be negative (samples: price24hPcnt "-0.158315",
# fundingRate "-0.005", basis "-4730.84", theta "-40", change24h "-0.33333334"): finite and sane only.

register(
    TickerData,
    prices=(
        "last_price", "prev_price24h", "high_price24h", "low_price24h", "prev_price1h", "index_price",
        "bid1_price", "ask1_price", "predicted_delivery_price", "pre_open_price", "usd_index_price",
        "bid_price", "ask_price", "underlying_price",
    ),
    sizes=(
        "open_interest", "single_open_interest", "volume24h", "bid1_size", "ask1_size", "pre_qty",
        "bid_size", "ask_size", "total_volume",
    ),
    amounts=(
        "open_interest_value", "single_open_interest_value", "turnover24h", "total_turnover", "funding_cap",
    ),
    positive=("mark_price",),
    signed=(
        "price24h_pcnt", "funding_rate", "basis_rate", "basis", "basis_rate_year", "delivery_fee_rate",
        "bid_iv", "ask_iv", "mark_price_iv", "delta", "gamma", "vega", "theta", "change24h",
    ),
)  # fmt: skip
register(OrderbookData, levels=("b", "a"))  # size "0" deletes a level (BYBIT_V5.md §5 orderbook)
register(
    PublicTrade, prices=("price", "mark_price", "index_price"), sizes=("size",), signed=("mark_iv", "iv")
)
register(Kline, prices=("open", "close", "high", "low"), sizes=("volume",), amounts=("turnover",))
register(Liquidation, prices=("price",), sizes=("size",))
register(_OldLiquidation, prices=("price",), sizes=("size",))
