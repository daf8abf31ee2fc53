"""The Venue's vocabulary: instruments, Decimal formatting and deterministic ids.

Prices live as integer tick counts everywhere in the Venue, so a price on the wire is `ticks * tick`: exact
Decimal arithmetic with the tick's number of decimals ("67000.10" for a 0.10 tick), never a float artefact.
Bybit sends every decimal as a string and every timestamp inside `data` as a string too (BYBIT_V5.md §5, §6).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from random import Random

from ..._errors import LocalProtocolError

__all__ = [
    "CATEGORIES",
    "Instrument",
    "default_instruments",
    "fmt",
    "make_instrument",
    "q8",
    "uuid_like",
]

CATEGORIES: tuple[str, ...] = ("linear", "inverse", "spot", "option")
_EIGHT = Decimal("1E-8")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable contract of one category. `settle` is the coin PnL and fees are paid in."""

    category: str
    symbol: str
    tick: Decimal
    qty_step: Decimal
    base: str
    quote: str
    settle: str
    start: Decimal
    underlying: str = ""  # option: the linear symbol whose index is the option's underlying
    strike: Decimal | None = None

    @property
    def inverse(self) -> bool:
        return self.category == "inverse"

    def px(self, ticks: int) -> Decimal:
        """The price of `ticks` ticks, with the tick's decimals (exact)."""
        return Decimal(ticks) * self.tick

    def ticks(self, price: Decimal) -> int:
        """`price` rounded to the nearest tick, as a tick count."""
        return int((price / self.tick).to_integral_value(ROUND_HALF_EVEN))

    def qty(self, value: Decimal) -> str:
        """A quantity as Bybit prints it: the qty step's decimals ("0.010")."""
        exp = value.as_tuple().exponent
        if isinstance(exp, int) and exp >= self.qty_step.as_tuple().exponent:  # type: ignore[operator]
            return str(value.quantize(self.qty_step))
        return fmt(value)  # finer than the step: never round a quantity away


def fmt(value: Decimal) -> str:
    """A computed amount as a plain decimal string without trailing zeros ("1.5", "0", never "1E+2")."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def q8(value: Decimal) -> Decimal:
    """Round an amount to 8 decimals, as Bybit prints PnL, margins and entry prices."""
    return value.quantize(_EIGHT, ROUND_HALF_EVEN)


def uuid_like(rng: Random) -> str:
    """An id in the UUID layout Bybit uses for orderId, execId and trade ids, drawn from `rng`."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{h[16:20]}-{h[20:]}"


def _auto_tick(price: Decimal) -> Decimal:
    # about six significant digits of price, like Bybit's BTCUSDT (0.10 at 67000) or ETHUSDT (0.01 at 3500)
    return Decimal(1).scaleb(price.adjusted() - 5)


def _auto_qty_step(category: str, price: Decimal) -> Decimal:
    if category == "inverse":
        return Decimal(1)  # inverse sizes are whole USD contracts
    if category == "option":
        return Decimal("0.01")
    # a step worth tens of dollars: 0.001 BTC at 67000, 0.01 ETH at 3500, 0.1 SOL at 150
    return Decimal(1).scaleb(min(0, 1 - price.adjusted()))


def _coins(category: str, symbol: str) -> tuple[str, str, str]:
    """(base, quote, settle) of a symbol, from Bybit's naming rules."""
    if category == "option":
        parts = symbol.split("-")
        settle = parts[4] if len(parts) == 5 else "USDC"
        return parts[0], settle, settle
    if category == "inverse":
        base = symbol[:-3] if symbol.endswith("USD") else symbol.rstrip("0123456789").removesuffix("USD")
        return base, "USD", base
    for quote in ("USDT", "USDC", "PERP"):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            base = symbol[: -len(quote)]
            coin = "USDC" if quote == "PERP" else quote
            return base, coin, coin
    raise LocalProtocolError(f"cannot tell the coins of {category} symbol {symbol!r}: use a USDT/USDC quote")


def make_instrument(
    category: str,
    symbol: str,
    price: Decimal | str | int,
    *,
    tick: Decimal | str | None = None,
    qty_step: Decimal | str | None = None,
    underlying: str = "",
) -> Instrument:
    """An instrument starting at `price`; tick and qty step are inferred from the price unless given."""
    if category not in CATEGORIES:
        raise LocalProtocolError(f"unknown category {category!r}: use one of {', '.join(CATEGORIES)}")
    start = Decimal(price)
    if not start.is_finite() or start <= 0:
        raise LocalProtocolError(f"price must be a positive decimal, got {price!r}")
    tick_d = Decimal(tick) if tick is not None else _auto_tick(start)
    step_d = Decimal(qty_step) if qty_step is not None else _auto_qty_step(category, start)
    base, quote, settle = _coins(category, symbol)
    strike = Decimal(symbol.split("-")[2]) if category == "option" else None
    if category == "option" and not underlying:
        underlying = f"{base}USDT"
    start = Decimal(int((start / tick_d).to_integral_value(ROUND_HALF_EVEN))) * tick_d
    return Instrument(category, symbol, tick_d, step_d, base, quote, settle, start, underlying, strike)


def option_expiry(start_ms: int) -> str:
    """Bybit's expiry code ("26JUN26") for the day 30 days after `start_ms`."""
    day = datetime.fromtimestamp(start_ms / 1000, tz=UTC) + timedelta(days=30)
    return f"{day.day}{_MONTHS[day.month - 1]}{day.year % 100:02d}"


def default_instruments(start_ms: int) -> list[Instrument]:
    """The markets: linear BTC/ETH/SOL USDT perps, inverse BTCUSD/ETHUSD, spot BTC/ETH, two BTC calls."""
    expiry = option_expiry(start_ms)
    table: list[tuple[str, str, str, str, str]] = [
        ("linear", "BTCUSDT", "67000", "0.10", "0.001"),
        ("linear", "ETHUSDT", "3500", "0.01", "0.01"),
        ("linear", "SOLUSDT", "150", "0.010", "0.1"),
        ("inverse", "BTCUSD", "67000", "0.50", "1"),
        ("inverse", "ETHUSD", "3500", "0.05", "1"),
        ("spot", "BTCUSDT", "67000", "0.01", "0.000001"),
        ("spot", "ETHUSDT", "3500", "0.01", "0.00001"),
        ("option", f"BTC-{expiry}-70000-C-USDT", "2100", "5", "0.01"),
        ("option", f"BTC-{expiry}-64000-C-USDT", "4900", "5", "0.01"),
    ]
    return [make_instrument(c, s, p, tick=t, qty_step=q) for c, s, p, t, q in table]
