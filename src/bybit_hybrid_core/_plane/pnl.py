"""Unrealised PnL at a mark price, in the position's settle currency (ARCHITECTURE.md "The hybrid join").

* linear (USDT/USDC perps and futures) and option: `(mark - avg) * size`, in the quote/settle coin;
* inverse (coin-margined, size in USD contracts): `size * (1/avg - 1/mark)`, in the base coin;
* a short (`side == "Sell"`) has the opposite sign.

`pnl_pct` is the unrealised PnL relative to the position's entry notional (`avg * size` for linear and option,
`size / avg` for inverse), in percent: the unlevered return of the position. Margin-relative figures depend on
the account's margin mode (cross, isolated, portfolio) and are left to the application.

Arithmetic runs in a private decimal context, so an application that changes the thread's decimal context
never changes our numbers, and the same inputs always give the same digits.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

__all__ = ["PCT_QUANTUM", "pnl_pct", "unrealised_pnl"]

_CTX = Context(prec=34, rounding=ROUND_HALF_EVEN)
PCT_QUANTUM = Decimal("0.000001")
"""pnl_pct is rounded to a millionth of a percent: finer digits carry no information."""
_HUNDRED = Decimal(100)


def unrealised_pnl(category: str, side: str, size: Decimal, avg: Decimal, mark: Decimal) -> Decimal | None:
    """The PnL of the position if closed at `mark`; None where undefined (no side, zero price)."""
    if side == "Buy":
        sign = 1
    elif side == "Sell":
        sign = -1
    else:
        return None
    if category == "inverse":
        if avg <= 0 or mark <= 0:
            return None
        per_contract = _CTX.subtract(_CTX.divide(1, avg), _CTX.divide(1, mark))
        value = _CTX.multiply(size, per_contract)
    else:
        value = _CTX.multiply(_CTX.subtract(mark, avg), size)
    return value if sign > 0 else _CTX.minus(value)


def pnl_pct(category: str, size: Decimal, avg: Decimal, pnl: Decimal | None) -> Decimal | None:
    """`pnl` as a percentage of the entry notional (see the module docstring); None when undefined."""
    if pnl is None or avg <= 0 or size <= 0:
        return None
    notional = _CTX.divide(size, avg) if category == "inverse" else _CTX.multiply(size, avg)
    pct = _CTX.multiply(_CTX.divide(pnl, notional), _HUNDRED)
    try:
        return pct.quantize(PCT_QUANTUM, context=_CTX)
    except InvalidOperation:  # more digits than the context holds: an absurd position, not worth a crash
        return pct
