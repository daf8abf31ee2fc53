"""Field types shared by the codec modules: Bybit's "decimal string or empty" and friends.

Bybit sends every number inside `data` as a string, and sends `""` for a field that does not apply
(BYBIT_V5.md §5 tickers: `fundingRate:""` on dated futures; §6 position: `liqPrice:""`, `leverage:""`).
msgspec decodes `Decimal` from a string natively but refuses `""`, so the fields that may be empty are
typed with private marker classes that msgspec hands to `dec_hook`. For the type checker the markers *are*
the plain types (`Decimal | None`, ...); at run time they are classes whose metaclass accepts the hook's
result, because msgspec checks that a hook returned an instance of the requested type.

The hook rejects non-finite and absurdly scaled decimals: `Decimal("NaN") < x` raises and a price of
`1E+999999` overflows the first multiplication, and the core promises that remote garbage never raises.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TypeAlias

import msgspec

__all__ = [
    "BOUND",
    "DecimalOrNone",
    "IntOrNone",
    "MsInt",
    "StrOrNone",
    "TimeOrNone",
    "check_finite",
    "dec_hook",
    "explain",
    "to_decimal",
]

BOUND = 1000
"""Largest accepted |adjusted exponent| of a decimal: far beyond any price or size, far below overflow."""


class _Accepts(type):
    """Metaclass of a marker: `isinstance(value, Marker)` is true for what its hook may return."""

    accepts: tuple[type, ...]

    def __instancecheck__(cls, instance: object) -> bool:
        return type(instance) in cls.accepts


class _DecimalMarker(metaclass=_Accepts):
    """A decimal string; `""` -> None."""

    accepts = (Decimal, type(None))


class _StrMarker(metaclass=_Accepts):
    """A string; `""` -> None."""

    accepts = (str, type(None))


class _IntMarker(metaclass=_Accepts):
    """An integer or a string of digits (`nextFundingTime`, `fundingIntervalHour`); `""` -> None."""

    accepts = (int, type(None))


class _TimeMarker(metaclass=_Accepts):
    """`deliveryTime`: ISO 8601 (`2025-12-26T08:00:00Z`) or ms digits -> aware datetime; `""` -> None."""

    accepts = (datetime, type(None))


class _MsMarker(metaclass=_Accepts):
    """Milliseconds sent as a string (`createdTime`, `execTime`) or a number; `""` -> 0."""

    accepts = (int,)


if TYPE_CHECKING:
    DecimalOrNone: TypeAlias = Decimal | None
    StrOrNone: TypeAlias = str | None
    IntOrNone: TypeAlias = int | None
    TimeOrNone: TypeAlias = datetime | None
    MsInt: TypeAlias = int
else:
    DecimalOrNone = _DecimalMarker
    StrOrNone = _StrMarker
    IntOrNone = _IntMarker
    TimeOrNone = _TimeMarker
    MsInt = _MsMarker


def to_decimal(value: object) -> Decimal:
    """Parse one decimal string the way Bybit means it; raise ValueError for anything else."""
    if type(value) is str:
        try:
            dec = Decimal(value)
        except InvalidOperation:
            raise ValueError("expected a decimal string") from None
    elif type(value) is int:
        dec = Decimal(value)
    else:
        raise ValueError("expected a decimal string")
    if not dec.is_finite() or (dec and abs(dec.adjusted()) > BOUND):
        raise ValueError("expected a finite decimal of sensible scale")
    return dec


def _to_int(value: object) -> int:
    if type(value) is int:
        return value
    if type(value) is str and value.isdigit() and value.isascii() and len(value) <= 20:
        return int(value)
    raise ValueError("expected an integer or a string of digits")


def _to_time(value: str) -> datetime:
    if value.isdigit():
        return datetime.fromtimestamp(_to_int(value) / 1000, UTC)
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("expected an ISO 8601 time or ms digits") from None


def _to_str(value: object) -> str:
    if type(value) is str:
        return value
    raise ValueError("expected a string")


def _to_ms(value: object) -> int:
    return 0 if value == "" else _to_int(value)


def _to_time_or_none(value: object) -> datetime:
    if type(value) is str:
        return _to_time(value)
    raise ValueError("expected a time string")


_CONVERT: dict[type, Callable[[Any], Any]] = {
    _DecimalMarker: to_decimal,
    _StrMarker: _to_str,
    _IntMarker: _to_int,
    _TimeMarker: _to_time_or_none,
}


def dec_hook(typ: type, value: Any) -> Any:
    """msgspec hook for the marker types above (raises ValueError -> msgspec.ValidationError with a path)."""
    if typ is _MsMarker:
        return _to_ms(value)
    convert = _CONVERT.get(typ)
    if convert is None:
        raise NotImplementedError(f"no decoder for {typ!r}")
    # Bybit's "" means "not applicable" (BYBIT_V5.md §5 tickers, §6 position).
    return None if value == "" else convert(value)


def check_finite(obj: object, path: str = "") -> str | None:
    """Return the path of the first non-finite or absurdly scaled Decimal inside a decoded Struct, if any.

    Only called when the raw text looks like it could hold one (`nan`, `inf`, an exponent), so the
    common case pays a substring scan, not a walk (see `_codec.decode`).
    """
    if isinstance(obj, Decimal):
        if not obj.is_finite() or (obj and abs(obj.adjusted()) > BOUND):
            return path or "value"
        return None
    if isinstance(obj, msgspec.Struct):
        for name in obj.__struct_fields__:
            found = check_finite(getattr(obj, name), f"{path}.{name}" if path else name)
            if found:
                return found
    elif isinstance(obj, tuple | list):
        for i, item in enumerate(obj):
            found = check_finite(item, f"{path}[{i}]")
            if found:
                return found
    elif isinstance(obj, dict):
        for key, item in obj.items():
            found = check_finite(item, f"{path}.{key}")
            if found:
                return found
    return None


def explain(where: str, exc: Exception) -> str:
    """Turn msgspec's "Expected `str`, got `int` - at `$.data.s`" into "where: data.s: expected ..."."""
    text = str(exc)
    message, sep, path = text.rpartition(" - at `$")
    if not sep:
        message, path = text, ""
    path = path.rstrip("`").lstrip(".")
    if message[:1].isupper() and not message[1:2].isupper():
        message = message[0].lower() + message[1:]
    return f"{where}: {path}: {message}" if path else f"{where}: {message}"
