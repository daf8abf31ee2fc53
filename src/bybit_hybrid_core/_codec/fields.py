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
negative, plus cross-field checks (a position's side against its size); `check_values` applies them in a
walk. The walk costs a few µs, so market data walks only when cheap scans of the raw bytes say it might
break a rule (`looks_suspect`: NaN/Infinity/exponents; `numbers_suspect`: bare numbers, long digit runs,
minus signs on fields that must not have one); private messages, rare, are walked every time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

import msgspec

__all__ = [
    "BARE",
    "INSANE",
    "MAX_ADJUSTED",
    "MIN_EXPONENT",
    "RULES",
    "DecimalOrNone",
    "DecimalStr",
    "FieldRules",
    "IntOrNone",
    "MsInt",
    "check_finite",
    "check_values",
    "dec_hook",
    "explain",
    "looks_suspect",
    "market_key",
    "market_suspect",
    "numbers_suspect",
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


if TYPE_CHECKING:
    DecimalStr: TypeAlias = Decimal
    DecimalOrNone: TypeAlias = Decimal | None
    IntOrNone: TypeAlias = int | None
    MsInt: TypeAlias = int
else:
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


# Bare numbers, long digit runs and minus signs, in one more translate: digits become `0`; `,` and `[` fold
# into `:`, so every JSON number value (in an object or an array) starts right after a `:`; spaces, `_` and
# `+` (which `Decimal` skips) go. Then a bare number is a `:0` or `:-`, a decimal of 19 digits or more (so
# |x| >= 1e18 or more than 18 places) is a run of nineteen `0`s, and a negative decimal string is `"-` right
# after `"key":`. One translate, two counts, one search: ~0.3 µs on a ticker delta (bench/bench_decode.py).
_NUMS = bytes.maketrans(b"0123456789,[", b"0000000000::")
_NUMS_DELETE = b" _+\t\r\n"
_RUN = b"0" * (MAX_ADJUSTED + 2)


def wire_key(name: str) -> bytes:
    """A wire key as `numbers_suspect` sees it (digits folded to 0): "price24hPcnt" -> b"price00hPcnt"."""
    return name.encode().translate(_NUMS)


def numbers_suspect(raw: bytes, ints: int, signed: frozenset[bytes]) -> bool:
    """Cheap pre-check of a decoded frame's raw bytes: could it break a number rule that `looks_suspect`
    cannot see? True when it has more bare JSON numbers than `ints` (the integer fields the decoded message
    actually holds: `ts`, `cs`, `u`, ...), a run of 19 digits, or a negative decimal string whose key is
    not in `signed` (wire keys as `wire_key` makes them). No false negatives; a false positive costs a walk.
    """
    s = raw.translate(_NUMS, _NUMS_DELETE)
    if s.count(b":0") + s.count(b":-") > ints or _RUN in s:
        return True
    i = s.find(b'"-')
    while i >= 0:
        # `"key":"-...`: the key ends two bytes back. Anything else (a level `[["-1"...`) needs the walk.
        if s[i - 1] != 58 or s[i - 2] != 34 or s[s.rfind(b'"', 0, i - 2) + 1 : i - 2] not in signed:
            return True
        i = s.find(b'"-', i + 2)
    return False


# Tickers and books, the hot path, get one translate instead of two: they carry no hex ids, so digits can
# stay (as `0`) and an exponent still shows, as `0e0` or `0e~`. Letters are lowered; digits, `.`, `+` and
# `_` become `0`; `,` and `[` fold into `:` (so every number value follows a `:`); a `-` and every byte that
# has no business in a compact ASCII market frame (whitespace, a backslash, non-ASCII) become `~`. Nothing
# is deleted, so `t[i]` and `raw[i]` are the same byte. Then NaN/Infinity is `nan`/`inf`, an exponent
# `0e0`/`0e~`, a bare number `:0` (or `:~`), a decimal of 19+ characters (digits and point) a run of
# nineteen `0`s, and each `~` is a hyphen inside a word (`BTC-25JUN27`), the sign of a decimal string after
# its key, or suspect. Literal regex searches beat `in`/`find` for multi-byte needles (measured); a
# single-byte `find` is a memchr. About 0.3 µs more than `looks_suspect` alone on a ticker delta.
_MARKET = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+_,[- \t\r\n\\" + bytes(range(0x80, 0x100)),
    b"abcdefghijklmnopqrstuvwxyz" + b"0" * 13 + b"::" + b"~" * 0x86,
)
_EXP0 = re.compile(b"0e[0~]").search  # not "0e" alone: "tickers.ETHUSDT" is "tickers0ethusdt"
_RUN0 = re.compile(b"0" * (MAX_ADJUSTED + 2)).search
_WORD = frozenset(b"abcdefghijklmnopqrstuvwxyz0")


def market_key(name: str) -> bytes:
    """A wire key as `market_suspect` sees it: "price24hPcnt" -> b"price00hpcnt"."""
    return name.encode().translate(_MARKET)


def market_suspect(raw: bytes, ints: int, signed: frozenset[bytes]) -> bool:
    """`looks_suspect` and `numbers_suspect` in one translate, for compact ASCII market frames (tickers,
    books): could a number in `raw` break a rule? `ints` and `signed` (keys as `market_key` makes them) as
    for `numbers_suspect`. No false negatives; whitespace or escapes anywhere only cost a walk."""
    if len(raw) > _HUGE:
        return True
    t = raw.translate(_MARKET)
    if _NAN(t) or _INF(t) or _EXP0(t) or _RUN0(t) or t.count(b":0") > ints:
        return True
    i = t.find(b"~")
    while i >= 0:
        if raw[i] != 45:  # not a "-": whitespace, an escape or non-ASCII
            return True
        if t[i - 1] not in _WORD:  # a word's hyphen ("1e-5" too: its exponent was caught above)
            if t[i - 1] != 34 or t[i - 2] != 58 or t[i - 3] != 34:
                return True  # a bare negative (`:-5`) or a sign inside an array (`["-1"`)
            if t[t.rfind(b'"', 0, i - 3) + 1 : i - 3] not in signed:
                return True  # `"key":"-...` for a key that must not be negative
        i = t.find(b"~", i + 1)
    return False


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


def explain(where: str, exc: Exception) -> str:
    """Turn msgspec's "Expected `str`, got `int` - at `$.data.s`" into "where: data.s: expected ..."."""
    text = str(exc)
    message, sep, path = text.rpartition(" - at `$")
    if not sep:
        message, path = text, ""
    path = path.rstrip("`").lstrip(".")
    if message.lower().startswith("invalid decimal"):  # msgspec says "Invalid decimal string" (0.18-0.23)
        message = "expected a decimal string"
    elif message.lower().startswith("number out of range"):  # a bare 1e999, refused before any hook runs
        message = "a bare number out of range (money fields are decimal strings)"
    if message[:1].isupper() and not message[1:2].isupper():
        message = message[0].lower() + message[1:]
    return f"{where}: {path}: {message}" if path else f"{where}: {message}"
