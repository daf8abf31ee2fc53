"""Field types shared by the codec modules: Bybit's "decimal string or empty" and friends.

Bybit sends every number inside `data` as a string, and sends `""` for a field that does not apply
(BYBIT_V5.md §5 tickers: `fundingRate:""` on dated futures; §6 position: `liqPrice:""`, `leverage:""`).
msgspec decodes `Decimal` from a string natively but refuses `""`. Tickers, the hot path, use plain types
and `frames` rewrites `"key":""` to `"key":null` when needed. Private rows use private marker classes that
msgspec hands to `dec_hook`: for the type checker the markers *are* the plain types (`Decimal | None`,
`int`); at run time they are classes whose metaclass accepts the hook's result, because msgspec checks that
a hook returned an instance of the requested type. A hook call costs ~0.3 µs per field (measured), fine
for private messages, 3x too slow for tickers.

Every Decimal that leaves the codec is a finite decimal *string* of sane magnitude with the right sign for
its field (BYBIT_V5.md §5: "All numbers are decimal strings"): `Decimal("NaN") < x` raises, a price of
`1E+999999` overflows the first multiplication, a mark of `-5` prices every position wrong, and the core
promises that remote garbage is a ProtocolProblem, never applied. The rules are data: each Struct module
`register`s which of its fields are prices, sizes or amounts (>= 0), which must be positive and which may be
negative, plus cross-field checks (a position's side against its size). The typed decode refuses what a
type can refuse (`Dec`: a bare number; a string that is no decimal); `_codec.vetting` checks the values of
what it produced, one pass per message; `check_values` walks a message to name the rule it breaks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple, Optional, TypeAlias, Union

import msgspec

__all__ = [
    "BARE",
    "INSANE",
    "MAX_ADJUSTED",
    "MIN_EXPONENT",
    "RULES",
    "Dec",
    "DecimalOrNone",
    "DecimalStr",
    "FieldRules",
    "IntOrNone",
    "MsInt",
    "check_finite",
    "check_values",
    "dec_hook",
    "error_path",
    "explain",
    "register",
    "sane",
    "to_decimal",
]

# Sane magnitude: |x| < 1e18 and at most 18 decimal places. The largest real figures are 24 h turnover and
# volume of meme coins and their open interest (~1e12-1e13 contracts, e.g. 1000PEPE, SHIB spot) and
# balances in such coins; 1e18 leaves five orders of magnitude above them. 18 places is the finest unit any
# token has (wei); Bybit quotes at most 8-10 (greeks "-0.00000001"). The product of two sane values (size x
# price) is below 1e36 with at most 36 places: exact enough, and nowhere near Decimal's overflow at 1e999999.
# The old bound (|adjusted exponent| <= 1000) let 1e300 through as a mark and gave a PnL of 5E+998.
MAX_ADJUSTED = 17
"""Largest accepted `Decimal.adjusted()`: |x| < 1e18."""
MIN_EXPONENT = -18
"""Smallest accepted exponent: at most 18 digits after the point."""

INSANE = "expected a finite decimal of sane magnitude (|x| < 1e18, at most 18 decimal places)"
BARE = "expected a decimal string, not a bare number"


def sane(dec: Decimal) -> bool:
    """Whether `dec` is finite and within the bounds above."""
    if not dec.is_finite() or dec.adjusted() > MAX_ADJUSTED:
        return False
    exponent = dec.as_tuple().exponent  # an int for a finite decimal ("n"/"N"/"F" are NaN and Infinity)
    return isinstance(exponent, int) and exponent >= MIN_EXPONENT


class _Accepts(type):
    """Metaclass of a marker: `isinstance(value, Marker)` is true for what its hook may return."""

    accepts: tuple[type, ...]

    def __instancecheck__(cls, instance: object) -> bool:
        return type(instance) in cls.accepts


class _DecimalMarker(metaclass=_Accepts):
    """A decimal string; `""` -> None."""

    accepts = (Decimal, type(None))


class _DecimalStrMarker(metaclass=_Accepts):
    """A decimal string that must be there (`""` is refused)."""

    accepts = (Decimal,)


class _IntMarker(metaclass=_Accepts):
    """An integer or a string of digits (`nextFundingTime`, `fundingIntervalHour`); `""` -> None."""

    accepts = (int, type(None))


class _MsMarker(metaclass=_Accepts):
    """Milliseconds sent as a string (`createdTime`, `execTime`) or a number; `""` -> 0."""

    accepts = (int,)


# msgspec decodes a `Decimal` from a JSON number as readily as from a string, has no option against it and
# no value constraints for Decimal (0.23: "Can only set `gt` on a numeric type"; jcrist/msgspec#683). In a
# union with `int` and `float`, though, a JSON number goes to those members and a string still to Decimal;
# an impossible constraint (> 0 and < 0) makes them refuse every number, in C, at no cost to a string (the
# union's decode costs the same as a plain Decimal's, measured). Strict decoders only: lax mode would parse
# the string "5" as that int first and refuse it. The error path names the refusal in our words (`BARE`).
_Bare = Annotated[int, msgspec.Meta(gt=0, lt=0)] | Annotated[float, msgspec.Meta(gt=0, lt=0)]

if TYPE_CHECKING:
    Dec: TypeAlias = Decimal
    DecimalStr: TypeAlias = Decimal
    DecimalOrNone: TypeAlias = Decimal | None
    IntOrNone: TypeAlias = int | None
    MsInt: TypeAlias = int
else:
    Dec = Union[Decimal, _Bare]  # noqa: UP007  (a runtime alias: `Decimal | _Bare` is an error before 3.12)
    DecimalStr = _DecimalStrMarker
    DecimalOrNone = _DecimalMarker
    IntOrNone = _IntMarker
    MsInt = _MsMarker


def to_decimal(value: object) -> Decimal:
    """Parse one decimal string the way Bybit means it; raise ValueError for anything else.

    A bare JSON number (int or float) is refused: Bybit sends every money field as a string (BYBIT_V5.md §5),
    so a number there is a broken or foreign producer, and a float has already lost digits.
    """
    if type(value) is not str:
        raise ValueError(BARE if type(value) in (int, float) else "expected a decimal string")
    try:
        dec = Decimal(value)
    except InvalidOperation:
        raise ValueError("expected a decimal string") from None
    # Up to 18 characters without an exponent cannot exceed the bounds; only NaN/Infinity are left to see.
    if not (dec.is_finite() if len(value) <= 18 and "e" not in value and "E" not in value else sane(dec)):
        raise ValueError(INSANE)
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
    if typ is _DecimalStrMarker:
        return to_decimal(value)  # "" included: it raises
    convert = _CONVERT.get(typ)
    if convert is None:
        raise NotImplementedError(f"no decoder for {typ!r}")
    # Bybit's "" means "not applicable" (BYBIT_V5.md §5 tickers, §6 position); a ticker's "" reaches here
    # as null once `frames` has rewritten it.
    return None if value == "" or value is None else convert(value)


def check_finite(obj: object, path: str = "") -> str | None:
    """Return the path of the first Decimal inside `obj` that is not finite or not of sane magnitude.

    For callers without field rules (the REST snapshot); the codec itself uses `check_values`.
    """
    if isinstance(obj, Decimal):
        return None if sane(obj) else path or "value"
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


# ------------------------------------------------------------------------------------------ field rules

Noun: TypeAlias = str | tuple[str, ...]
"""What a field holds, for the sign rule and its message ("price" -> "expected a price >= 0"); a tuple
names the positions of a pair (an orderbook level is ("price", "size"))."""


class FieldRules(NamedTuple):
    """The number rules of one Struct class (attribute names, not wire keys)."""

    nonneg: Mapping[str, Noun]
    """Fields that must be >= 0, and what they hold."""
    signed: frozenset[str]
    """Decimal fields that may be negative (PnL, fees, rates, greeks...): finite and sane only."""
    positive: frozenset[str]
    """Fields that must be > 0 where present (a ticker's mark prices every position)."""
    check: Callable[[Any], str | None] | None
    """Cross-field rules; returns "wireKey: problem" (a position's side against its size)."""


RULES: dict[type, FieldRules] = {}
"""Every Struct class with Decimal fields, registered by its module (`register`)."""

_NO_RULES = FieldRules({}, frozenset(), frozenset(), None)


def register(
    cls: type,
    *,
    prices: Iterable[str] = (),
    sizes: Iterable[str] = (),
    amounts: Iterable[str] = (),
    levels: Iterable[str] = (),
    positive: Iterable[str] = (),
    signed: Iterable[str] = (),
    check: Callable[[Any], str | None] | None = None,
) -> None:
    """Declare `cls`'s number rules: prices, sizes and amounts (notional values) must be >= 0, `levels`
    are (price, size) pairs, `positive` fields must be > 0 where present, `signed` ones may be negative.
    tests/test_codec_values.py checks that every Decimal field of every Struct is declared exactly once."""
    nonneg: dict[str, Noun] = {}
    for noun, names in (("price", prices), ("size", sizes), ("amount", amounts)):
        nonneg |= dict.fromkeys(names, noun)
    nonneg |= dict.fromkeys(levels, ("price", "size"))
    positive = frozenset(positive)
    nonneg |= {name: "price" for name in positive if name not in nonneg}
    RULES[cls] = FieldRules(nonneg, frozenset(signed), positive, check)


_ABSENT: Any = object()  # no raw JSON to compare with (the caller passed none, or the shapes differ)
_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}


def _fields(cls: type) -> tuple[tuple[str, str], ...]:
    found = _FIELDS.get(cls)
    if found is None:
        found = _FIELDS[cls] = tuple((f.name, f.encode_name) for f in msgspec.structs.fields(cls))
    return found


def _decimal_problem(dec: Decimal, raw: Any, noun: Noun | None, positive: bool) -> str | None:
    if raw is not _ABSENT and type(raw) is not str:
        return BARE
    if not sane(dec):
        return INSANE
    if positive and not dec > 0:
        return f"expected a positive {noun}"
    if noun is not None and dec < 0:
        return f"expected {'an' if noun[0] in 'aeiou' else 'a'} {noun} >= 0"
    return None


def _item(raw: Any, key: str | int) -> Any:
    if isinstance(key, str):
        return raw.get(key, _ABSENT) if type(raw) is dict else _ABSENT
    return raw[key] if type(raw) is list and key < len(raw) else _ABSENT


def _walk(value: Any, raw: Any, where: str, noun: Noun | None) -> str | None:
    if isinstance(value, Decimal):
        problem = _decimal_problem(value, raw, noun if isinstance(noun, str) else None, False)
        return f"{where}: {problem}" if problem else None
    if isinstance(value, msgspec.Struct):
        return check_values(value, raw, where)
    if isinstance(value, tuple | list):
        for i, item in enumerate(value):
            # a pair's nouns name its positions; a sequence of pairs hands the tuple down unchanged
            sub = noun[i] if isinstance(noun, tuple) and isinstance(item, Decimal) and i < len(noun) else noun
            found = _walk(item, _item(raw, i), f"{where}[{i}]", sub)
            if found:
                return found
    elif isinstance(value, dict):
        for key, item in value.items():
            found = _walk(item, _item(raw, key) if isinstance(key, str) else _ABSENT, f"{where}.{key}", noun)
            if found:
                return found
    return None


def check_values(obj: msgspec.Struct, raw: Any = _ABSENT, path: str = "") -> str | None:
    """The first number rule `obj` breaks, as "path: problem" in wire names (e.g. "data.markPrice:
    expected a positive price"), or None.

    Args:
        obj: a decoded Struct; nested Structs, tuples and dicts are walked with their own classes' rules.
        raw: the same JSON decoded untyped (`msgspec.json.decode(frame)`), to tell a decimal string from a
            bare JSON number (msgspec decodes both into `Decimal`); omitted, that rule is not checked.
        path: the prefix of the paths reported.
    """
    cls = type(obj)
    rules = RULES.get(cls, _NO_RULES)
    for attr, wire in _fields(cls):
        value = getattr(obj, attr)
        where = f"{path}.{wire}" if path else wire
        sub = _item(raw, wire)
        if isinstance(value, Decimal):
            noun = rules.nonneg.get(attr)
            noun = noun if isinstance(noun, str) else None
            problem = _decimal_problem(value, sub, noun, attr in rules.positive)
            if problem:
                return f"{where}: {problem}"
        elif isinstance(value, msgspec.Struct | tuple | list | dict):
            found = _walk(value, sub, where, rules.nonneg.get(attr))
            if found:
                return found
    if rules.check is not None:
        problem = rules.check(obj)
        if problem:
            return f"{path}.{problem}" if path else problem
    return None


def _learnt_messages() -> dict[str, str]:
    """What msgspec says when a money field (`Dec`) refuses a value, learnt from msgspec itself at import and
    mapped to our words, so no version's wording is assumed (0.23 changed some; tests assert ours). One
    probe per kind of refusal: a bare number (a message per violated constraint: an int or a float, above or
    below zero), one out of a float's range, a string that is no decimal, and each other JSON type."""

    class _Probe(msgspec.Struct):
        amount: Dec

    class _OptionalProbe(msgspec.Struct):  # money that may be absent names `null` in its union too
        amount: Optional[Dec] = None  # noqa: UP045  (a runtime alias, as `Dec` is)

    probes = [(number, BARE) for number in (b"5", b"-5", b"0", b"1.5", b"-1.5", b"0.0")]
    probes += [
        (b"1e999", "a bare number out of range (money fields are decimal strings)"),
        (b'"abc"', "expected a decimal string"),
        (b"true", "expected a decimal string, got a boolean"),
        (b"[1]", "expected a decimal string, got an array"),
        (b'{"a":1}', "expected a decimal string, got an object"),
        (b"null", "expected a decimal string, got null"),
    ]
    learnt: dict[str, str] = {}
    for probe in (_Probe, _OptionalProbe):
        for value, ours in probes:
            try:
                msgspec.json.decode(b'{"amount":' + value + b"}", type=probe)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                learnt.setdefault(error_path(exc)[0].lower(), ours)
    return learnt


def error_path(exc: Exception) -> tuple[str, str]:
    """Split msgspec's "Expected `str`, got `int` - at `$.data.s`" into its message and "data.s" (or "")."""
    text = str(exc)
    message, sep, path = text.rpartition(" - at `$")
    if not sep:
        return text, ""
    return message, path.rstrip("`").lstrip(".")


_LEARNT = _learnt_messages()


def explain(where: str, exc: Exception) -> str:
    """Turn msgspec's "Expected `str`, got `int` - at `$.data.s`" into "where: data.s: expected ..."."""
    message, path = error_path(exc)
    message = _LEARNT.get(message.lower(), message)  # a money field's refusal, in our words
    if message[:1].isupper() and not message[1:2].isupper():
        message = message[0].lower() + message[1:]
    return f"{where}: {path}: {message}" if path else f"{where}: {message}"
