"""Public market data over REST: `GET /v5/market/tickers` (marks) and `GET /v5/market/time` (the clock).

Both endpoints are public: no signature (docs `docs/v5/market/tickers.mdx`, `docs/v5/market/time.mdx`).
`/v5/market/tickers` takes `category` and an optional `symbol` (without it, every symbol of the category);
its rows carry `markPrice` for linear, inverse and option (spot has none). `/v5/market/time` answers
`result.timeSecond` / `result.timeNano` and the envelope's `time` (ms). Answers are parsed here, sans-IO;
a bad answer is a `MarketRestError` naming what was wrong, never a raise out of the core.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from urllib.parse import quote

import msgspec

from .._config import Link
from .._events import FetchTickers, FetchTime, RestRequest
from .rest import Envelope, RestAnswerError, decode_answer

__all__ = ["MarketRestError", "RestMark", "parse_tickers", "parse_time", "tickers_request", "time_request"]

TICKERS_PATH = "/v5/market/tickers"
TIME_PATH = "/v5/market/time"
_LIMIT = Decimal("1e18")  # the codec's rule for every number (docs/operations.md, "The liveness guarantee")


class MarketRestError(RestAnswerError):
    """An answer that cannot be used: transport failure, HTTP error, bad JSON, retCode != 0, a bad mark."""


class RestMark(msgspec.Struct, frozen=True):
    """One symbol's mark as REST stated it, at the answer's server time (`ts`, ms) and arrival (`at`)."""

    category: str
    symbol: str
    mark: Decimal
    ts: int
    at: float


def tickers_request(request_id: int, rest_base: str, category: str, symbol: str = "") -> FetchTickers:
    """`GET /v5/market/tickers?category=...[&symbol=...]` (public: no signature, no secret involved)."""
    query = f"category={quote(category, safe='')}"
    if symbol:
        query += f"&symbol={quote(symbol, safe='')}"
    request = RestRequest(
        id=request_id,
        method="GET",
        url=f"{rest_base.rstrip('/')}{TICKERS_PATH}?{query}",
        headers=(),
        category=category,
        symbol=symbol,
        purpose="tickers",
    )
    return FetchTickers(link=Link(category), request=request, timeout=5.0)


def time_request(request_id: int, rest_base: str) -> FetchTime:
    """`GET /v5/market/time`: the exchange's clock."""
    request = RestRequest(
        id=request_id,
        method="GET",
        url=f"{rest_base.rstrip('/')}{TIME_PATH}",
        headers=(),
        category="",
        purpose="time",
    )
    return FetchTime(link=Link.LINEAR, request=request, timeout=5.0)


class _TickerRow(msgspec.Struct, rename="camel"):
    symbol: str
    mark_price: str = ""


class _TickersResult(msgspec.Struct):
    category: str = ""
    list: tuple[_TickerRow, ...] = ()


class _TimeResult(msgspec.Struct, rename="camel"):
    time_second: str = ""
    time_nano: str = ""


_tickers = msgspec.json.Decoder(Envelope[_TickersResult])
_time = msgspec.json.Decoder(Envelope[_TimeResult])


def _mark(text: str, symbol: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise MarketRestError(f"{symbol}: markPrice {text[:40]!r} is not a decimal string") from None
    if not value.is_finite() or not 0 < value < _LIMIT:
        raise MarketRestError(f"{symbol}: markPrice {text[:40]!r} is not a usable price")
    return value


def parse_tickers(request: RestRequest, status: int, body: bytes, now: float) -> list[RestMark]:
    """The marks in one tickers answer (rows without a mark, e.g. spot, are left out)."""
    result, server_ms = decode_answer(status, body, _tickers, MarketRestError)
    category = result.category or request.category
    if category != request.category:
        raise MarketRestError(f"asked for category {request.category!r}, got {category!r}")
    marks = []
    for row in result.list:
        if request.symbol and row.symbol != request.symbol:
            continue  # asked for one symbol: anything else is not an answer to it
        if row.mark_price:
            marks.append(RestMark(category, row.symbol, _mark(row.mark_price, row.symbol), server_ms, now))
    return marks


def parse_time(status: int, body: bytes) -> int:
    """The exchange's time in ms from a `/v5/market/time` answer."""
    result, server_ms = decode_answer(status, body, _time, MarketRestError)
    if result.time_nano.isdigit():
        return int(result.time_nano) // 1_000_000
    if result.time_second.isdigit():
        return int(result.time_second) * 1000
    if server_ms > 0:
        return server_ms
    raise MarketRestError("no usable time in the answer")
