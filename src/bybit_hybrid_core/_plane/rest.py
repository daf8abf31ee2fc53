"""The REST snapshot of open positions: signed `GET /v5/position/list` requests and their answers.

Bybit's V5 REST signature (docs `docs/v5/guide.mdx`, "Authentication"): lower-case hex HMAC-SHA256 keyed
with the secret over `timestamp + api_key + recv_window + queryString`, sent in the headers
`X-BAPI-API-KEY`, `X-BAPI-TIMESTAMP`, `X-BAPI-RECV-WINDOW` and `X-BAPI-SIGN`. The query string is signed
exactly as it is sent, so it is built once here and never re-encoded by anyone else.

`/v5/position/list` (docs `docs/v5/position/position.mdx`): `category` is required; for `linear` either
`symbol` or `settleCoin` is required (we ask per settle coin, which returns only positions with size > 0);
`inverse` and `option` list every open position without either. Pages hold up to `limit=200` rows and
`nextPageCursor` is "" on the last page. Rows carry the WS position fields, but the entry price is
`avgPrice` (the WS topic says `entryPrice`) and the category is only on `result`.
"""

from __future__ import annotations

from typing import Generic, Literal, TypeVar
from urllib.parse import quote

import msgspec

from .._codec import RULES, DecimalOrNone, FieldRules, PositionRow, check_values, dec_hook, explain
from .._config import Credentials, Link
from .._events import FetchPositions, Position, RestRequest
from .account import OwnMark, to_position

__all__ = [
    "PATH",
    "PositionPage",
    "SnapshotError",
    "build_request",
    "categories_requests",
    "parse_page",
]

PATH = "/v5/position/list"
PAGE_LIMIT = 200  # Bybit's maximum page size for this endpoint


class RestAnswerError(Exception):
    """A REST answer that cannot be used: transport failure, HTTP error, bad JSON or retCode != 0."""


class SnapshotError(RestAnswerError):
    """An answer to `/v5/position/list` that cannot be used."""


_R = TypeVar("_R")


class Envelope(msgspec.Struct, Generic[_R], rename="camel"):
    """What every Bybit V5 REST answer carries around its `result` (`Envelope[TheResult]` to decode one)."""

    ret_code: int
    ret_msg: str = ""
    result: _R | None = None
    time: int = 0  # the server's time of the answer, ms


def decode_answer(
    status: int, body: bytes, decoder: msgspec.json.Decoder[Envelope[_R]], error: type[RestAnswerError]
) -> tuple[_R, int]:
    """The `result` of a REST call and the answer's server `time` (ms), checked like every Bybit V5 answer:
    an HTTP 200, JSON of the expected shape, `retCode` 0 and a `result`. Raises `error` naming what was
    wrong, in our own words."""
    if status == 0:
        raise error("transport failure (no HTTP answer)")
    if status != 200:
        raise error(f"HTTP {status}: {_excerpt(body)}")
    try:
        answer = decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise error(explain("answer", exc)) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise error("bad JSON answer") from None
    if answer.ret_code != 0:
        raise error(f"retCode {answer.ret_code}: {answer.ret_msg or '(no retMsg)'}")
    if answer.result is None:
        raise error("retCode 0 but no result")
    return answer.result, answer.time


class PositionPage(msgspec.Struct, frozen=True):
    """One parsed page: the positions it holds (with the position's own mark) and the next cursor."""

    rows: tuple[tuple[Position, OwnMark | None], ...]
    next_cursor: str


def categories_requests(category: str, settle_coins: tuple[str, ...]) -> tuple[str, ...]:
    """The settle coins to ask for in `category` ("" = no settleCoin parameter).

    Only linear needs one (the endpoint refuses a linear query with neither symbol nor settleCoin).
    """
    if category == "linear":
        return settle_coins or ("USDT",)
    return ("",)


def query_string(category: str, settle_coin: str = "", cursor: str = "") -> str:
    """The query exactly as signed and sent. Cursors come back already percent-encoded; keep '%' as is."""
    query = f"category={quote(category, safe='')}"
    if settle_coin:
        query += f"&settleCoin={quote(settle_coin, safe='')}"
    query += f"&limit={PAGE_LIMIT}"
    if cursor:
        query += f"&cursor={quote(cursor, safe='%')}"
    return query


def build_request(
    *,
    request_id: int,
    rest_base: str,
    credentials: Credentials,
    wall_ms: int,
    recv_window_ms: int,
    category: str,
    settle_coin: str = "",
    cursor: str = "",
    purpose: Literal["snapshot", "poll"] = "snapshot",
) -> FetchPositions:
    """A `FetchPositions` action holding a fully signed request (the secret never leaves `credentials`)."""
    query = query_string(category, settle_coin, cursor)
    timestamp = str(wall_ms)
    window = str(recv_window_ms)
    signature = credentials.sign(timestamp + credentials.api_key + window + query)
    headers = (
        ("X-BAPI-API-KEY", credentials.api_key),
        ("X-BAPI-TIMESTAMP", timestamp),
        ("X-BAPI-RECV-WINDOW", window),
        ("X-BAPI-SIGN", signature),
    )
    request = RestRequest(
        id=request_id,
        method="GET",
        url=f"{rest_base.rstrip('/')}{PATH}?{query}",
        headers=headers,
        category=category,
        cursor=cursor,
        settle_coin=settle_coin,
        purpose=purpose,
    )
    return FetchPositions(link=Link.PRIVATE, request=request)


# ------------------------------------------------------------------------------------------ answers


class _Row(PositionRow, frozen=True, kw_only=True):
    """A `result.list` row: the WS row's fields, plus `avgPrice`; `seq` may come as a string ("-1")."""

    avg_price: DecimalOrNone = None
    seq: int | str = -1  # type: ignore[assignment]  # REST's docs allow "-1" as a string


# A REST row obeys the stream row's number rules (docs/operations.md, "The liveness guarantee", item 4), and
# its `avgPrice` is a price.
_WS = RULES[PositionRow]
RULES[_Row] = FieldRules({**_WS.nonneg, "avg_price": "price"}, _WS.signed, _WS.positive, _WS.check)


class _Result(msgspec.Struct, rename="camel"):
    list: tuple[_Row, ...] = ()
    next_page_cursor: str = ""
    category: str = ""


_decoder = msgspec.json.Decoder(Envelope[_Result], dec_hook=dec_hook)


def parse_page(request: RestRequest, status: int, body: bytes, now: float) -> PositionPage:
    """Parse one answer to `request`. Raises `SnapshotError` naming what was wrong.

    The rows' own mark prices are stamped with the answer's server `time` (the mark is current as of the
    answer) and with `now`, when it arrived.
    """
    result, server_ms = decode_answer(status, body, _decoder, SnapshotError)
    category = result.category or request.category
    if category != request.category:
        raise SnapshotError(f"asked for category {request.category!r}, got {category!r}")
    # One bad row fails the whole page (and the round retries): skipping it would let the reconciliation
    # close a position the venue still holds. (A bare JSON number in a money field was refused by the typed
    # decode itself: its fields take decimal strings only.)
    for i, row in enumerate(result.list):
        bad = check_values(row, path=f"result.list[{i}]")
        if bad is not None:
            raise SnapshotError(bad)
    rows = []
    for row in result.list:
        position = to_position(category, row, row.avg_price)
        position = msgspec.structs.replace(position, seq=_integer(row.seq))
        mark = None if row.mark_price is None else (row.mark_price, server_ms or row.updated_time, now)
        rows.append((position, mark))
    return PositionPage(rows=tuple(rows), next_cursor=result.next_page_cursor)


def _integer(value: int | str) -> int:
    if isinstance(value, int):
        return value
    try:
        return int(value) if value else -1
    except ValueError:
        raise SnapshotError(f"row field seq is not an integer: {value[:40]!r}") from None


def _excerpt(body: bytes) -> str:
    return body[:120].decode("utf-8", "replace")
