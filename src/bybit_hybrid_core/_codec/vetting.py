"""Vetting the numbers of a decoded message: one pass over what the typed decode produced.

The typed decode has refused what a type can refuse: a bare JSON number in a money field (`fields.Dec`), a
string that is no decimal. What is left is the value of every Decimal (finite, |x| < 1e18, at most 18
places, the sign its field allows) and a position's side. msgspec has no constraints for Decimal (0.23), so
they are checked here, on the Decimals themselves: never on the frame's bytes, and without decoding again.

Each value costs one chained comparison (`ZERO <= v < BOUND`, `NBOUND < v < BOUND`), false for Infinity and
false or InvalidOperation for NaN, and one addition into a running sum: the exponent of an exact sum is the
smallest exponent of its terms, so one `quantize` of the sum to 1E-18 at the end checks the places of all of
them (and raises Rounded if one has more than 18). The sum starts at 1, so that a lone `0E-30` still shows.

Three tiers. The hot families (tickers, books, trades) have hand-written checks over only what is there (a
ticker delta's handful of fields, not its 48 slots). Every other Struct class gets a checker generated from
its registered rules (`fields.register`), as the data plane generates its ticker merge: one test per field,
unrolled. Either answers "every rule holds" or "perhaps not"; `vet_numbers` then walks the message with
`check_values`, which names the first broken rule, or none when the check was only cautious.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Context, Decimal, InvalidOperation, Overflow, Rounded, getcontext
from functools import reduce
from itertools import chain
from typing import Any

import msgspec
import msgspec.inspect as mi
from msgspec import UNSET

from .._errors import DecodeError
from .fields import MAX_ADJUSTED, MIN_EXPONENT, RULES, check_values
from .public import OrderbookMessage, PublicTradeMessage, TickerData, TickerMessage

__all__ = ["checker", "vet_numbers"]

ZERO = Decimal(0)
ONE = Decimal(1)
BOUND = Decimal(f"1e{MAX_ADJUSTED + 1}")  # |x| < 1e18 (parsed: exact whatever the context)
NBOUND = -BOUND
_PLACE = Decimal(f"1e{MIN_EXPONENT}")  # 1E-18
# An exact context for the running sums (no sum of sane values comes near 100 digits) that raises instead of
# rounding, so that a sum's exponent really is the smallest of its terms'; its `quantize` to 1E-18 raises
# Rounded when that is < -18.
_EXACT = Context(prec=100, traps=[Rounded, InvalidOperation, Overflow])
ADD = _EXACT.add
_SAFE_PREC = 28  # decimal's default
_SAFE = Decimal(f"1e{_SAFE_PREC - 19}")  # see `_exact`
_QUANTIZE = _EXACT.quantize

Check = Callable[[Any, Decimal], Decimal | None]
"""`check(msg, total)`: `total` plus the magnitudes of `msg`'s Decimals, or None if a rule may be broken."""

_CHECKS: dict[type, Check] = {}


def _structs(t: mi.Type) -> tuple[bool, type] | None:
    """(many, cls) when a field holds a Struct (many: a tuple or list of them), else None."""
    if isinstance(t, mi.StructType):
        return False, t.cls
    if isinstance(t, mi.VarTupleType | mi.ListType) and isinstance(t.item_type, mi.StructType):
        return True, t.item_type.cls
    if isinstance(t, mi.UnionType):
        for member in t.types:
            found = _structs(member)
            if found is not None:
                return found
    return None


def _may_be_none(t: mi.Type) -> bool:
    if isinstance(t, mi.CustomType):  # a marker (`fields.DecimalOrNone`): its hook turns "" into None
        return type(None) in getattr(t.cls, "accepts", (type(None),))
    return isinstance(t, mi.UnionType) and any(isinstance(m, mi.NoneType) for m in t.types)


def _decimal(obj: str, f: mi.Field, unset: bool, test: str, pad: str) -> list[str]:
    guards = [
        g for g, wanted in (("v is not UNSET", unset), ("v is not None", _may_be_none(f.type))) if wanted
    ]
    lines = [f"{pad}v = {obj}.{f.name}"]
    if guards:
        lines.append(f"{pad}if {' and '.join(guards)}:")
        pad += "    "
    return [*lines, f"{pad}if not {test}:", f"{pad}    return None", f"{pad}t = ADD(t, v)"]


def _levels(obj: str, name: str, pad: str) -> list[str]:
    # (price, size) pairs, all >= 0: C-level min and sum over the flattened levels, not a loop. Each term
    # is >= 0, so each is below their sum. `sum(v, ())` flattens a delta's few levels fastest; it is
    # quadratic, so a snapshot's 50 or 200 go through `chain`.
    return [
        f"{pad}v = {obj}.{name}",
        f"{pad}if v:",
        f"{pad}    flat = sum(v, ()) if len(v) < 16 else [*chain(v)]",
        f"{pad}    if not min(flat) >= ZERO:",
        f"{pad}        return None",
        f"{pad}    s = reduce(ADD, flat)",
        f"{pad}    if not s < BOUND:",
        f"{pad}        return None",
        f"{pad}    t = ADD(t, s)",
    ]


def _body(cls: type, obj: str, depth: int, pad: str, namespace: dict[str, Any]) -> list[str]:
    """The checks of one `cls` instance held in variable `obj`, inlined (a call per row costs more)."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    rules = RULES.get(cls)
    defaults = {f.name: f.default for f in msgspec.structs.fields(cls)}
    lines: list[str] = []
    for f in info.fields:
        name, unset = f.name, defaults[f.name] is UNSET
        noun = rules.nonneg.get(name) if rules is not None else None
        if isinstance(noun, tuple):
            lines += _levels(obj, name, pad)
        elif rules is not None and name in rules.positive:
            lines += _decimal(obj, f, unset, "ZERO < v < BOUND", pad)
        elif noun is not None:
            lines += _decimal(obj, f, unset, "ZERO <= v < BOUND", pad)
        elif rules is not None and name in rules.signed and isinstance(f.type, mi.DictType):
            lines += [  # cumFeeDetail: {coin: fee}
                f"{pad}for v in {obj}.{name}.values():",
                f"{pad}    if not NBOUND < v < BOUND:",
                f"{pad}        return None",
                f"{pad}    t = ADD(t, v)",
            ]
        elif rules is not None and name in rules.signed:
            lines += _decimal(obj, f, unset, "NBOUND < v < BOUND", pad)
        elif (nested := _structs(f.type)) is not None:
            many, sub = nested
            inner = f"o{depth + 1}"
            if many:
                lines += [
                    f"{pad}for {inner} in {obj}.{name}:",
                    *_body(sub, inner, depth + 1, pad + "    ", namespace),
                ]
            else:
                lines.append(f"{pad}{inner} = {obj}.{name}")
                if _may_be_none(f.type):
                    lines += [
                        f"{pad}if {inner} is not None:",
                        *_body(sub, inner, depth + 1, pad + "    ", namespace),
                    ]
                else:
                    lines += _body(sub, inner, depth + 1, pad, namespace)
    if rules is not None and rules.check is not None:  # cross-field rules (a position's side)
        namespace[f"cross_{cls.__name__}"] = rules.check
        lines += [f"{pad}if cross_{cls.__name__}({obj}) is not None:", f"{pad}    return None"]
    return lines or [f"{pad}pass"]


def _compile(cls: type) -> Check:
    namespace: dict[str, Any] = {
        "UNSET": UNSET, "ZERO": ZERO, "BOUND": BOUND, "NBOUND": NBOUND, "ADD": ADD,
        "chain": chain.from_iterable, "reduce": reduce,
    }  # fmt: skip
    lines = ["def check(o0, t):", *_body(cls, "o0", 0, "    ", namespace), "    return t"]
    exec("\n".join(lines), namespace)  # our own source, built from the field names above
    check: Check = namespace["check"]
    return check


def checker(cls: type) -> Check:
    """The generated checker of Struct class `cls` (built on first use, then cached)."""
    found = _CHECKS.get(cls)
    if found is None:
        found = _CHECKS[cls] = _compile(cls)
    return found


# ------------------------------------------------------------------------------ the hot families by hand
# The generated checker tests all 48 fields of a ticker (~1 µs before a delta's three values) and adds in
# the exact context; these check only what is there and add non-negative terms in the thread's context
# (`_exact`). `vet_numbers` falls back to the generated checker when one of them answers None.

_TICKER = RULES[TickerData]
# The lowest value each Decimal field of a ticker may hold (a mark must moreover be non-zero: `_ticker`).
_TICKER_LOW: dict[str, Decimal] = dict.fromkeys(_TICKER.nonneg, ZERO) | dict.fromkeys(_TICKER.signed, NBOUND)
assert _TICKER.positive == {"mark_price"}, "_ticker checks mark_price > 0 by name"


def _ticker(msg: TickerMessage) -> Decimal | None:
    data = msg.data
    mark = data.mark_price
    if mark.__class__ is Decimal and not mark:
        return None  # a zero mark prices every position at zero (NaN is truthy: the loop refuses it)
    total = ONE
    # A Struct with repr_omit_defaults lists, in `__rich_repr__` and in C, only the fields that differ from
    # their default (UNSET): a delta's handful, not all 48 slots.
    for name, v in data.__rich_repr__():
        low = _TICKER_LOW.get(name)
        if low is None or v is None or v is UNSET:
            continue  # symbol and the other non-Decimal fields; None is Bybit's ""
        if not low <= v < BOUND:  # false for Infinity; False or InvalidOperation for NaN
            return None
        total = ADD(total, v)  # exact: signed terms may cancel, and a ticker's sum is often > 1e9
    return total


def _exact(terms: Iterable[Decimal]) -> Decimal | None:
    """1 + the sum of `terms` (finite, >= 0) in the exact context, or None if it is not below BOUND.

    The hot checks add in the thread's context, twice as fast, and that is exact enough: a sum of
    non-negative terms that was ever rounded keeps `prec` digits, so below `_SAFE` (10^(prec - 19)) its
    exponent is < -18 and the final quantize refuses it (the walk then decides). At or above that (a meme
    coin's sizes), or under a context of less precision than the default, they add again here.
    """
    total = reduce(ADD, terms, ONE)
    return total if total < BOUND else None  # each term is below the sum


def _book(msg: OrderbookMessage) -> Decimal | None:
    # A plain loop over the levels: flattening them for C-level min and sum costs more (measured).
    levels = msg.data.b + msg.data.a
    total = ONE
    for price, size in levels:
        if not (ZERO <= price < BOUND and ZERO <= size < BOUND):
            return None
        total = total + price + size
    if total < _SAFE and getcontext().prec >= _SAFE_PREC:
        return total
    return _exact(chain.from_iterable(levels))


def _trades(msg: PublicTradeMessage) -> Decimal | None:
    # A burst has a few rows: a plain loop beats building tuples for C-level aggregates here (measured).
    total = ONE
    for row in msg.data:
        size, price = row.size, row.price
        if not (ZERO <= size < BOUND and ZERO <= price < BOUND):
            return None
        if (
            row.mark_price is not None
            or row.index_price is not None
            or row.mark_iv is not None
            or row.iv is not None
        ):
            return None  # an option's trade (mark, index, IVs): the generated checker
        total = total + size + price
    if total < _SAFE and getcontext().prec >= _SAFE_PREC:
        return total
    return _exact(chain.from_iterable((row.size, row.price) for row in msg.data))


_HOT: dict[type, Callable[[Any], Decimal | None]] = {
    TickerMessage: _ticker,
    OrderbookMessage: _book,
    PublicTradeMessage: _trades,
}


def vet_numbers(msg: msgspec.Struct, topic: str = "") -> None:
    """Raise DecodeError if a number in `msg` breaks its field's rule (the rules: `_codec.fields`).

    Args:
        msg: a decoded topic message; its bare JSON numbers were refused by the decode itself.
        topic: the prefix of the error ("tickers.BTCUSDT: data.markPrice: expected a positive price").
    """
    try:
        # The sum starts at 1, not 0: a lone 0E-30 would otherwise leave it at 0E-30, which quantizes exactly.
        hot = _HOT.get(type(msg))
        total = hot(msg) if hot is not None else None
        if total is None:
            total = (_CHECKS.get(type(msg)) or checker(type(msg)))(msg, ONE)
        if total is not None:
            _QUANTIZE(total, _PLACE)  # Rounded: some term has more than 18 places
            return
    except ArithmeticError:
        pass  # that, a NaN compared (InvalidOperation), or a sum that would round: the walk names it
    bad = check_values(msg)
    if bad is not None:
        raise DecodeError(f"{topic}: {bad}")
