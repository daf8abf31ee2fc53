"""The REST snapshot: signed `GET /v5/position/list` requests, parsing answers, retries and pagination."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import msgspec
import pytest

from bybit_hybrid_core._config import Config, Credentials, Link, Rollout, Timings
from bybit_hybrid_core._events import (
    FetchPositions,
    PositionsSynced,
    ProtocolProblem,
    RestRequest,
    SnapshotFailed,
)
from bybit_hybrid_core._plane.rest import (
    SnapshotError,
    build_request,
    categories_requests,
    parse_page,
    query_string,
)
from test_hybrid_support import API_KEY, API_SECRET, WALL0, Plane, make_config, rest_body, rest_row

CREDS = Credentials(API_KEY, API_SECRET)


def _request(**kw: object) -> FetchPositions:
    args: dict[str, object] = {
        "request_id": 7,
        "rest_base": "https://api.bybit.com",
        "credentials": CREDS,
        "wall_ms": 1_672_280_218_882,
        "recv_window_ms": 5000,
        "category": "linear",
        "settle_coin": "USDT",
    }
    args.update(kw)
    return build_request(**args)  # type: ignore[arg-type]


def _independent_signature(headers: dict[str, str], query: str) -> str:
    payload = headers["X-BAPI-TIMESTAMP"] + API_KEY + headers["X-BAPI-RECV-WINDOW"] + query
    return hmac.new(API_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()


# ------------------------------------------------------------------------------------------- requests


def test_signature_matches_an_independent_hmac() -> None:
    action = _request()
    request = action.request
    headers = dict(request.headers)
    query = urlsplit(request.url).query
    assert set(headers) == {"X-BAPI-API-KEY", "X-BAPI-TIMESTAMP", "X-BAPI-RECV-WINDOW", "X-BAPI-SIGN"}
    assert headers["X-BAPI-API-KEY"] == API_KEY
    assert headers["X-BAPI-TIMESTAMP"] == "1672280218882"
    assert headers["X-BAPI-RECV-WINDOW"] == "5000"
    assert headers["X-BAPI-SIGN"] == _independent_signature(headers, query)
    assert len(headers["X-BAPI-SIGN"]) == 64 and headers["X-BAPI-SIGN"] == headers["X-BAPI-SIGN"].lower()
    assert action.link is Link.PRIVATE and request.method == "GET" and request.id == 7


def test_signature_changes_with_every_signed_part() -> None:
    base = dict(_request().request.headers)["X-BAPI-SIGN"]
    for change in ({"wall_ms": 1}, {"recv_window_ms": 10_000}, {"settle_coin": "USDC"}, {"cursor": "abc"}):
        assert dict(_request(**change).request.headers)["X-BAPI-SIGN"] != base


def test_url_and_query_per_category() -> None:
    linear = _request().request
    assert linear.url == "https://api.bybit.com/v5/position/list?category=linear&settleCoin=USDT&limit=200"
    inverse = _request(category="inverse", settle_coin="").request
    assert inverse.url == "https://api.bybit.com/v5/position/list?category=inverse&limit=200"
    assert (inverse.category, inverse.settle_coin, inverse.cursor) == ("inverse", "", "")


def test_cursor_is_sent_as_bybit_gave_it_and_signed_as_sent() -> None:
    # Bybit's cursors come percent-encoded already; '%' must not be encoded twice, other specials are.
    request = _request(cursor="ab%3A12%2Ccd:ef").request
    query = urlsplit(request.url).query
    assert query.endswith("&cursor=ab%3A12%2Ccd%3Aef")
    assert dict(parse_qsl(query))["cursor"] == "ab:12,cd:ef"
    assert dict(request.headers)["X-BAPI-SIGN"] == _independent_signature(dict(request.headers), query)
    assert request.cursor == "ab%3A12%2Ccd:ef"


def test_rest_base_trailing_slash_and_custom_endpoint() -> None:
    assert _request(rest_base="http://127.0.0.1:8080/").request.url.startswith("http://127.0.0.1:8080/v5/")


def test_categories_that_need_a_settle_coin() -> None:
    assert categories_requests("linear", ("USDT", "USDC")) == ("USDT", "USDC")
    assert categories_requests("linear", ()) == ("USDT",)
    assert categories_requests("inverse", ("USDT",)) == ("",)
    assert categories_requests("option", ("USDT",)) == ("",)
    assert query_string("option") == "category=option&limit=200"


def test_secrets_never_in_reprs() -> None:
    action = _request()
    texts = [repr(action), str(action), repr(action.request), repr(CREDS), str(CREDS)]
    for text in texts:
        assert API_SECRET not in text
        assert dict(action.request.headers)["X-BAPI-SIGN"] not in text
    assert API_KEY not in repr(action.request)
    plane = Plane()
    plane.up_private()
    plane.dp.tick(1.0, WALL0)
    assert all(API_SECRET not in repr(e) for e in plane.events)


# -------------------------------------------------------------------------------------------- answers


def _req(category: str = "inverse") -> RestRequest:
    return _request(category=category, settle_coin="" if category != "linear" else "USDT").request


DOCS_ROW = json.loads(
    """{"positionIdx": 0, "riskId": 1, "riskLimitValue": "150", "symbol": "BTCUSD", "side": "Sell",
    "size": "300", "avgPrice": "27464.50441675", "positionValue": "0.01092319", "tradeMode": 0,
    "positionStatus": "Normal", "autoAddMargin": 1, "adlRankIndicator": 2, "leverage": "10",
    "positionBalance": "0.00139186", "markPrice": "28224.50", "liqPrice": "", "bustPrice": "999999.00",
    "positionMM": "0.0000015", "positionIM": "0.00010923", "tpslMode": "Full", "takeProfit": "0.00",
    "stopLoss": "0.00", "trailingStop": "0.00", "unrealisedPnl": "-0.00029413",
    "cumRealisedPnl": "-0.00096902", "seq": 5723621632, "isReduceOnly": false, "mmrSysUpdateTime": "",
    "leverageSysUpdatedTime": "", "createdTime": "1676538056258", "updatedTime": "1697673600012"}"""
)


def test_parses_the_docs_answer() -> None:
    # docs/v5/position/position.mdx, the response example
    docs = {
        "retCode": 0,
        "retMsg": "OK",
        "result": {"list": [DOCS_ROW], "nextPageCursor": "", "category": "inverse"},
        "retExtInfo": {},
        "time": 1697684980172,
    }
    page = parse_page(_req(), 200, json.dumps(docs).encode(), 3.5)
    assert page.next_cursor == ""
    [(position, mark)] = page.rows
    assert position.key == ("inverse", "BTCUSD", 0)
    assert (position.side, position.size, position.avg_price) == (
        "Sell",
        Decimal(300),
        Decimal("27464.50441675"),
    )
    assert position.liq_price is None and position.take_profit is None and position.stop_loss is None
    assert (
        position.leverage == Decimal(10)
        and position.seq == 5723621632
        and position.updated_ms == 1697673600012
    )
    assert mark == (Decimal("28224.50"), 1697684980172, 3.5)


@pytest.mark.parametrize(
    ("status", "body", "needle"),
    [
        (0, b"", "transport"),
        (503, b"<html>busy</html>", "HTTP 503"),
        (200, b"{not json", "bad JSON"),
        (200, b'{"retCode":10002,"retMsg":"invalid request, please check your server timestamp"}', "10002"),
        (200, b'{"retCode":0,"retMsg":"OK"}', "no result"),
        (200, rest_body("linear", []), "category"),
        (200, rest_body("inverse", [rest_row("BTCUSD", "Buy", "NaN", "1", 1)]), "size"),
        (200, rest_body("inverse", [rest_row("BTCUSD", "Buy", "1", "1E+99999", 1, mark="1")]), "avgPrice"),
        (200, rest_body("inverse", [{"symbol": "BTCUSD"}]), "size"),
        (200, b'{"retCode":"0"}', "retCode"),
        (200, rest_body("inverse", [rest_row("BTCUSD", "Buy", "1", "1", 1) | {"seq": "x1"}]), "seq"),
        (200, rest_body("inverse", [rest_row("BTCUSD", "Buy", "-5", "1", 1)]), "result.list[0].size"),
        (200, rest_body("inverse", [rest_row("BTCUSD", "Buy", "1", "-1", 1, mark="1")]), "avgPrice"),
        (
            200,
            rest_body("inverse", [rest_row("BTCUSD", "Buy", "1", "1", 1) | {"markPrice": 1e300}]),
            "markPrice",
        ),
        (200, rest_body("inverse", [rest_row("BTCUSD", "", "3", "1", 1)]), "result.list[0]"),
        (
            200,
            rest_body("inverse", [rest_row("BTCUSD", "Buy", "1", "1", 1, mark="1") | {"avgPrice": 5}]),
            "avgPrice",
        ),
    ],
    ids=[
        "transport",
        "http",
        "json",
        "retcode",
        "no-result",
        "category",
        "nan",
        "huge",
        "no-size",
        "type",
        "seq",
        "negative-size",
        "negative-avg",
        "bare-number",
        "side-disagrees",
        "bare-avg-price",
    ],
)
def test_bad_answers_raise_snapshot_error(status: int, body: bytes, needle: str) -> None:
    with pytest.raises(SnapshotError) as info:
        parse_page(_req(), status, body, 0.0)
    assert needle.lower() in str(info.value).lower()


def test_seq_as_string_and_missing_mark() -> None:
    row = rest_row("BTCUSD", "Buy", "10", "30000", 1)
    row.update(seq="-1", markPrice="")
    [(position, mark)] = parse_page(_req(), 200, rest_body("inverse", [row]), 0.0).rows
    assert position.seq == -1 and mark is None


# ------------------------------------------------------------------------------ rounds in the DataPlane


def test_start_asks_every_category_and_settle_coin() -> None:
    config = Config(
        credentials=CREDS, position_categories=("linear", "inverse", "option"), settle_coins=("USDT", "USDC")
    )
    plane = Plane(config)
    fetches = plane.up_private()
    assert [(f.request.category, f.request.settle_coin) for f in fetches] == [
        ("linear", "USDT"),
        ("linear", "USDC"),
        ("inverse", ""),
        ("option", ""),
    ]
    assert len({f.request.id for f in fetches}) == 4


def test_a_category_syncs_once_every_settle_coin_answered() -> None:
    config = Config(credentials=CREDS, position_categories=("linear",), settle_coins=("USDT", "USDC"))
    plane = Plane(config)
    usdt, usdc = plane.up_private()
    plane.dp.rest_answer(
        usdt.request, 200, rest_body("linear", [rest_row("BTCUSDT", "Buy", "1", "1", 1)]), 1, 0
    )
    assert plane.of(PositionsSynced) == []
    plane.dp.rest_answer(
        usdc.request, 200, rest_body("linear", [rest_row("BTCPERP", "Buy", "1", "1", 1)]), 1, 0
    )
    assert [e.open_positions for e in plane.of(PositionsSynced)] == [2]


def test_no_credentials_no_snapshot() -> None:
    plane = Plane(Config())
    assert plane.up_private() == [] and plane.dp.deadline() is None


def test_failures_back_off_exponentially_capped_and_re_sign() -> None:
    plane = Plane(make_config(snapshot_backoff_base=1.0, snapshot_backoff_cap=5.0))
    [linear, inverse] = plane.up_private()
    now, delays = 0.0, []
    request = linear.request
    for _ in range(5):
        plane.dp.rest_answer(request, 500, b"oops", now, WALL0)
        [failed] = plane.of(SnapshotFailed)
        plane.take()
        assert failed.category == "linear" and "HTTP 500" in failed.reason
        delays.append(failed.retry_in)
        plane.dp.tick(now + failed.retry_in - 0.01, WALL0)
        assert plane.fetches() == []
        now += failed.retry_in
        plane.dp.tick(now, WALL0 + int(now * 1000))
        [retry] = plane.fetches()
        assert retry.request.id > request.id and retry.request.settle_coin == "USDT"
        assert dict(retry.request.headers)["X-BAPI-TIMESTAMP"] == str(WALL0 + int(now * 1000))
        request = retry.request
    # doubling from 1 s, capped at 5 s, each wait jittered within its step's upper half (seeded)
    steps = [1.0, 2.0, 4.0, 5.0, 5.0]
    assert all(step / 2 <= delay <= step for step, delay in zip(steps, delays, strict=True)), delays
    assert delays != steps and len(set(delays)) == len(delays)
    # success resets the backoff; the other category still completes on its own
    plane.dp.rest_answer(request, 200, rest_body("linear", []), now, WALL0)
    plane.dp.rest_answer(inverse.request, 200, rest_body("inverse", []), now, WALL0)
    assert [(e.category, e.open_positions) for e in plane.of(PositionsSynced)] == [
        ("linear", 0),
        ("inverse", 0),
    ]


def test_pages_follow_the_cursor_and_sync_once_complete() -> None:
    plane = Plane()
    [linear, inverse] = plane.up_private()
    plane.dp.rest_answer(inverse.request, 200, rest_body("inverse", []), 0.1, WALL0)
    page1 = rest_body("linear", [rest_row("BTCUSDT", "Buy", "1", "100", 5)], cursor="c%3A1")
    plane.dp.rest_answer(linear.request, 200, page1, 0.2, WALL0)
    [next_page] = plane.fetches()
    assert next_page.request.cursor == "c%3A1" and next_page.request.url.endswith("&cursor=c%3A1")
    assert [e.category for e in plane.of(PositionsSynced)] == ["inverse"]
    page2 = rest_body("linear", [rest_row("ETHUSDT", "Sell", "2", "10", 6)])
    plane.dp.rest_answer(next_page.request, 200, page2, 0.3, WALL0)
    assert [e.category for e in plane.of(PositionsSynced)] == ["inverse", "linear"]
    assert sorted(plane.dp.positions()) == [("linear", "BTCUSDT", 0), ("linear", "ETHUSDT", 0)]


def test_a_cursor_that_does_not_advance_restarts_the_listing() -> None:
    plane = Plane()
    [linear, _] = plane.up_private()
    plane.dp.rest_answer(linear.request, 200, rest_body("linear", [], cursor="x"), 0.0, WALL0)
    [page2] = plane.fetches()
    plane.dp.rest_answer(page2.request, 200, rest_body("linear", [], cursor="x"), 0.1, WALL0)
    assert plane.of(ProtocolProblem) and plane.of(SnapshotFailed)
    plane.dp.tick(5.0, WALL0)
    [again] = plane.fetches()
    assert again.request.cursor == ""


def test_unanswered_requests_expire_and_late_answers_are_ignored() -> None:
    plane = Plane()
    [linear, _inverse] = plane.up_private()
    assert plane.dp.deadline() == pytest.approx(2 * linear.timeout)
    plane.dp.tick(2 * linear.timeout, WALL0)
    assert {e.category for e in plane.of(SnapshotFailed)} == {"linear", "inverse"}
    plane.take()
    plane.dp.rest_answer(linear.request, 200, rest_body("linear", []), 21.0, WALL0)
    assert plane.events == []  # superseded: its retry is what counts


def test_a_private_reconnect_supersedes_the_round() -> None:
    plane = Plane()
    [old_linear, old_inverse] = plane.up_private()
    plane.dp.on_link_down(Link.PRIVATE, 1.0)
    # the round's timers are gone; what is left is the positions fallback, should the link stay down
    assert plane.dp.deadline() == 1.0 + Rollout().positions_fallback_after
    [linear, _inverse] = plane.up_private(2.0)
    plane.dp.rest_answer(old_linear.request, 200, rest_body("linear", []), 2.1, WALL0)
    plane.dp.rest_answer(old_inverse.request, 200, rest_body("inverse", []), 2.1, WALL0)
    assert plane.events == []
    plane.dp.rest_answer(linear.request, 200, rest_body("linear", []), 2.2, WALL0)
    assert [e.category for e in plane.of(PositionsSynced)] == ["linear"]


def test_fetch_positions_round_trips_through_msgspec() -> None:
    action = _request()
    again = msgspec.json.decode(msgspec.json.encode(action), type=FetchPositions)
    assert again == action


def test_timings_recv_window_is_used() -> None:
    config = Config(credentials=CREDS, timings=Timings(rest_recv_window_ms=20_000))
    plane = Plane(config)
    for fetch in plane.up_private():
        assert dict(fetch.request.headers)["X-BAPI-RECV-WINDOW"] == "20000"
