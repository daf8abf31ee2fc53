"""Field types shared by the codec modules: Bybit's "decimal string or empty" and friends.

Bybit sends every number inside `data` as a string, and sends `""` for a field that does not apply
(BYBIT_V5.md §5 tickers: `fundingRate:""` on dated futures; §6 position: `liqPrice:""`, `leverage:""`).
msgspec decodes `Decimal` from a string natively but refuses `""`. Tickers, the hot path, use plain types
and `_codec` rewrites `"key":""` to `"key":null` when needed. Private rows use private marker classes that
msgspec hands to `dec_hook`: for the type checker the markers *are* the plain types (`Decimal | None`,
`int`); at run time they are classes whose metaclass accepts the hook's result, because msgspec checks that
a hook returned an instance of the requested type. A hook call costs ~0.3 µs per field (measured), fine
for private messages, 3x too slow for tickers.

Every Decimal that leaves the codec is finite and of sane scale: `Decimal("NaN") < x` raises and a price
of `1E+999999` overflows the first multiplication, and the core promises that remote garbage never raises.
The hook checks its own values; natively decoded ones are checked by `looks_suspect` + `check_finite`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TypeAlias

import msgspec

__all__ = [
    "BOUND",
    "DecimalOrNone",
    "IntOrNone",
    "MsInt",
    "check_finite",
    "dec_hook",
    "explain",
    "looks_suspect",
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


class _IntMarker(metaclass=_Accepts):
    """An integer or a string of digits (`nextFundingTime`, `fundingIntervalHour`); `""` -> None."""

    accepts = (int, type(None))


class _MsMarker(metaclass=_Accepts):
    """Milliseconds sent as a string (`createdTime`, `execTime`) or a number; `""` -> 0."""

    accepts = (int,)


if TYPE_CHECKING:
    DecimalOrNone: TypeAlias = Decimal | None
    IntOrNone: TypeAlias = int | None
    MsInt: TypeAlias = int
else:
    DecimalOrNone = _DecimalMarker
    IntOrNone = _IntMarker
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


def _to_ms(value: object) -> int:
    return 0 if value == "" else _to_int(value)


_CONVERT: dict[type, Callable[[Any], Any]] = {
    _DecimalMarker: to_decimal,
    _IntMarker: _to_int,
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


# What is left of a frame once the characters of plain decimals are deleted, letters lowered and JSON
# delimiters folded into `"`: keys, topic and non-numeric strings between quotes. A decimal that is
# NaN/Infinity, has an exponent (quoted or a bare JSON number: `"e"` once digits are gone), or hides behind
# an escape or non-ASCII digits (`Decimal` accepts any Unicode digit) leaves a trace here; the last two fold
# into NUL, which cannot occur raw in JSON that msgspec accepted. One translate and four literal searches:
# ~1 µs on a ticker delta, ~3 µs on a 50-level book; one alternation regex costs several times more, and
# a compiled literal search beats `in` (both measured, bench/).
_DELETE = b"0123456789.+-_ \t\r\n"
_FOLD = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ:,[]{}\\" + bytes(range(0x80, 0x100)),
    b'abcdefghijklmnopqrstuvwxyz""""""' + b"\0" * 0x81,
)
_HUGE = 200_000
_NAN = re.compile(b"nan").search
_INF = re.compile(b"inf").search
_EXP = re.compile(b'"e"').search


def looks_suspect(data: bytes | str) -> bool:
    """Cheap pre-check, run after a successful decode: could the frame hold a non-finite or absurdly
    scaled decimal? False positives only cost a `check_finite` walk; there are no false negatives.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > _HUGE:
        return True  # a thousand-digit decimal needs no exponent; such frames are rare, walk them
    s = raw.translate(_FOLD, _DELETE)
    return bool(_NAN(s) or _INF(s) or _EXP(s) or b"\0" in s)


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
        for f in msgspec.structs.fields(obj):  # wire names, like msgspec's own error paths
            found = check_finite(getattr(obj, f.name), f"{path}.{f.encode_name}" if path else f.encode_name)
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
    if message.lower().startswith("invalid decimal"):  # msgspec says "Invalid decimal string" (0.18-0.23)
        message = "expected a decimal string"
    if message[:1].isupper() and not message[1:2].isupper():
        message = message[0].lower() + message[1:]
    return f"{where}: {path}: {message}" if path else f"{where}: {message}"
