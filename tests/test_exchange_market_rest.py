"""The FakeExchange's public market REST endpoints (issue 12, item 7): `GET /v5/market/tickers` and
`GET /v5/market/time` in Bybit's shapes, quoting the same market the stream pushes at the same moment, on the
exchange's clock (skew included), behind Bybit's HTTP IP limit, with the REST faults (failures, latency,
forced rate-limit answers, a REST mark that disagrees with the stream) and `heal()` clearing them.

Sans-IO against `FakeExchange` with the real venue; one test drives the served exchange on 127.0.0.1 over TCP
with pybit, the official SDK.
"""

from __future__ import annotations

import json
import socket
import time
from decimal import Decimal
from typing import Any

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from bybit_hybrid_core import Credentials
from bybit_hybrid_core.testing import FakeExchange
from exchange_helpers import KEY, SECRET, Client, Net
from repo_paths import SAMPLES

TICKERS, TIME = "/v5/market/tickers", "/v5/market/time"
ENVELOPE = ["retCode", "retMsg", "result", "retExtInfo", "time"]
# The rows of bybit-exchange/docs docs/v5/market/tickers.mdx, key for key and in order (linear/inverse: the
# 2025-10 response example, which a real BTCUSDT answer of 2025-11 repeats; option and spot: the examples).
DOCS_KEYS = {
    "linear": [
        "symbol", "lastPrice", "indexPrice", "markPrice", "prevPrice24h", "price24hPcnt", "highPrice24h",
        "lowPrice24h", "prevPrice1h", "openInterest", "openInterestValue", "turnover24h", "volume24h",
        "fundingRate", "nextFundingTime", "predictedDeliveryPrice", "basisRate", "deliveryFeeRate",
        "deliveryTime", "ask1Size", "bid1Price", "ask1Price", "bid1Size", "basis", "preOpenPrice", "preQty",
        "curPreListingPhase", "fundingIntervalHour", "basisRateYear", "fundingCap",
    ],
    "option": [
        "symbol", "bid1Price", "bid1Size", "bid1Iv", "ask1Price", "ask1Size", "ask1Iv", "lastPrice",
        "highPrice24h", "lowPrice24h", "markPrice", "indexPrice", "markIv", "underlyingPrice", "openInterest",
        "turnover24h", "volume24h", "totalVolume", "totalTurnover", "delta", "gamma", "vega", "theta",
        "predictedDeliveryPrice", "change24h",
    ],
    "spot": [
        "symbol", "bid1Price", "bid1Size", "ask1Price", "ask1Size", "lastPrice", "prevPrice24h",
        "price24hPcnt", "highPrice24h", "lowPrice24h", "turnover24h", "volume24h", "usdIndexPrice",
    ],
}  # fmt: skip
DOCS_KEYS["inverse"] = DOCS_KEYS["linear"]
# Fields of the stream's ticker that REST leaves out, and the option fields REST names otherwise.
STREAM_ONLY = {"tickDirection", "singleOpenInterest", "singleOpenInterestValue"}
OPTION_REST_NAMES = {
    "bidPrice": "bid1Price", "bidSize": "bid1Size", "bidIv": "bid1Iv", "askPrice": "ask1Price",
    "askSize": "ask1Size", "askIv": "ask1Iv", "markPriceIv": "markIv",
}  # fmt: skip
PRICES = ("lastPrice", "markPrice", "indexPrice", "bid1Price", "ask1Price", "usdIndexPrice")


def get(ex: FakeExchange, path: str, now: float, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """A public GET, unsigned: (status, the JSON answer or the raw body)."""
    status, _, body = ex.rest_response("GET", path, headers or {}, now)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def tickers(ex: FakeExchange, query: str, now: float) -> dict[str, Any]:
    status, answer = get(ex, f"{TICKERS}?{query}", now)
    assert status == 200
    assert isinstance(answer, dict)
    return answer


def row(ex: FakeExchange, symbol: str, now: float, category: str = "linear") -> dict[str, str]:
    answer = tickers(ex, f"category={category}&symbol={symbol}", now)
    assert answer["retCode"] == 0, answer
    [only] = answer["result"]["list"]
    assert isinstance(only, dict)
    return only


def option_symbol(ex: FakeExchange) -> str:
    return str(ex.venue.symbols("option")[0])  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------------ shapes


@pytest.mark.parametrize("category", ["linear", "inverse", "spot", "option"])
def test_tickers_rows_have_bybits_keys_per_category(category: str) -> None:
    ex = FakeExchange(seed=3)
    symbol = {"linear": "BTCUSDT", "inverse": "BTCUSD", "spot": "BTCUSDT", "option": option_symbol(ex)}
    answer = tickers(ex, f"category={category}&symbol={symbol[category]}", 1.0)
    assert list(answer) == ENVELOPE
    assert (answer["retCode"], answer["retMsg"], answer["retExtInfo"]) == (0, "OK", {})
    assert answer["time"] == ex.wall_ms(1.0)
    assert list(answer["result"]) == ["category", "list"] and answer["result"]["category"] == category
    [only] = answer["result"]["list"]
    assert list(only) == DOCS_KEYS[category]
    assert all(isinstance(v, str) for v in only.values())  # Bybit sends every decimal as a string
    for key in PRICES:
        if key in only:
            assert Decimal(only[key]) > 0, key
    if category in ("linear", "inverse"):  # a perpetual: the dated-futures fields blank, as in the real one
        assert (only["deliveryTime"], only["basisRate"], only["basisRateYear"]) == ("0", "", "")


@pytest.mark.parametrize(
    ("sample", "category", "symbol"),
    [
        ("public-tickers-linear-snapshot-real.json", "linear", "BTCUSDT"),
        ("public-tickers-linear-perp-snapshot-docs.json", "linear", "BTCUSDT"),
        ("public-tickers-spot-snapshot-docs.json", "spot", "BTCUSDT"),
        ("public-tickers-option-snapshot-real-2026.json", "option", None),
    ],
)
def test_rest_rows_carry_every_field_of_the_streams_samples(
    sample: str, category: str, symbol: str | None
) -> None:
    """REST and the stream describe one ticker: each field of the real stream sample is in the REST row
    (under REST's name), but the few the stream alone has."""
    path = SAMPLES / sample
    if not path.exists():
        pytest.skip(f"sample {sample} not found in {SAMPLES}")
    stream_keys = set(json.loads(path.read_text())["data"])
    ex = FakeExchange(seed=3)
    rest_keys = set(row(ex, symbol or option_symbol(ex), 0.5, category))
    expected = {OPTION_REST_NAMES.get(k, k) if category == "option" else k for k in stream_keys - STREAM_ONLY}
    assert expected <= rest_keys, expected - rest_keys


def test_without_a_symbol_the_whole_category_and_options_by_base_coin_and_expiry() -> None:
    ex = FakeExchange(seed=3)
    listed = tickers(ex, "category=linear", 0.5)["result"]["list"]
    assert [r["symbol"] for r in listed] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    options = ex.venue.symbols("option")  # type: ignore[attr-defined]
    by_base = tickers(ex, "category=option&baseCoin=BTC", 0.5)["result"]["list"]
    assert [r["symbol"] for r in by_base] == options
    expiry = options[0].split("-")[1]
    assert len(tickers(ex, f"category=option&baseCoin=BTC&expDate={expiry}", 0.5)["result"]["list"]) == 2
    assert tickers(ex, "category=option&baseCoin=BTC&expDate=1JAN30", 0.5)["result"]["list"] == []
    assert tickers(ex, "category=option", 0.5)["retCode"] == 10001  # docs: symbol or baseCoin is required


def test_an_unknown_symbol_or_category_is_bybits_10001() -> None:
    ex = FakeExchange(seed=3)
    for category in ("linear", "spot", "option"):
        assert tickers(ex, f"category={category}&symbol=NOPEUSDT", 0.0) == {
            "retCode": 10001, "retMsg": "Not supported symbols", "result": {}, "retExtInfo": {},
            "time": ex.wall_ms(0.0),
        }  # fmt: skip
    for query in ("category=nope&symbol=BTCUSDT", "symbol=BTCUSDT"):
        answer = tickers(ex, query, 0.0)
        assert (answer["retCode"], answer["retMsg"], answer["result"]) == (10001, "Illegal category", {})


def test_market_endpoints_need_no_signature() -> None:
    ex = FakeExchange(seed=3)
    assert get(ex, TIME, 0.0)[1]["retCode"] == 0
    wrong = {"X-BAPI-API-KEY": "someone-else", "X-BAPI-SIGN": "00", "X-BAPI-TIMESTAMP": "1"}
    assert get(ex, f"{TICKERS}?category=linear&symbol=BTCUSDT", 0.0, wrong)[1]["retCode"] == 0
    status, answer = get(ex, "/v5/position/list?category=linear&settleCoin=USDT", 0.0, wrong)
    assert status == 200 and answer["retCode"] == 10003  # the private ones still check the key


# ------------------------------------------------------------------------ the same market as the stream


def merge(view: dict[str, str], messages: list[Any]) -> None:
    """Apply ticker snapshots and deltas to `view`, as a client keeps a ticker."""
    for m in messages:
        if isinstance(m, dict) and str(m.get("topic", "")).startswith("tickers."):
            if m["type"] == "snapshot":
                view.clear()
            view.update(m["data"])


def test_rest_quotes_what_the_stream_pushed_at_that_moment() -> None:
    ex = FakeExchange(seed=5, api_key=KEY, api_secret=SECRET)
    net = Net(ex)
    linear, spot = Client(net, "/v5/public/linear"), Client(net, "/v5/public/spot")
    view: dict[str, str] = {}
    spot_view: dict[str, str] = {}
    merge(view, linear.send({"op": "subscribe", "args": ["tickers.BTCUSDT"]}))
    merge(spot_view, spot.send({"op": "subscribe", "args": ["tickers.BTCUSDT"]}))
    marks = set()
    for step in range(1, 31):
        now = round(step * 0.1, 9)
        ex.tick(now)
        net.pump()
        merge(view, linear.take())
        merge(spot_view, spot.take())
        rest = row(ex, "BTCUSDT", now)
        common = set(rest) & set(view)
        assert {"markPrice", "indexPrice", "lastPrice", "bid1Price", "ask1Price", "fundingRate"} <= common
        assert {k: rest[k] for k in common} == {k: view[k] for k in common}, now
        spot_rest = row(ex, "BTCUSDT", now, "spot")
        assert spot_rest["lastPrice"] == spot_view["lastPrice"]
        assert spot_rest["usdIndexPrice"] == spot_view["usdIndexPrice"]
        marks.add(rest["markPrice"])
    assert len(marks) > 10  # the mark moved, and REST followed it step by step
    ex.mark("BTCUSDT", "60000")  # the operator moves the mark: REST shows it at once, the next push too
    assert row(ex, "BTCUSDT", 3.0)["markPrice"] == "60000.00"
    ex.tick(3.1)
    net.pump()
    merge(view, linear.take())
    assert view["markPrice"] == "60000.00" == row(ex, "BTCUSDT", 3.1)["markPrice"]


def test_a_market_nobody_streams_still_moves_for_rest_and_the_same_seed_gives_the_same_quotes() -> None:
    def quotes(ex: FakeExchange) -> list[str]:
        return [row(ex, "ETHUSDT", t)["markPrice"] for t in (0.0, 2.0, 4.0, 30.0)]

    first, second = quotes(FakeExchange(seed=8)), quotes(FakeExchange(seed=8))
    assert first == second and len(set(first)) > 1


# ------------------------------------------------------------------------------------------------ time


def test_server_time_is_the_exchange_clock_and_clock_skew_moves_it() -> None:
    ex = FakeExchange(seed=1)
    answer = get(ex, TIME, 2.5)[1]
    assert list(answer) == ENVELOPE and list(answer["result"]) == ["timeSecond", "timeNano"]
    wall = ex.wall_ms(2.5)
    assert answer["time"] == wall == ex.start_ms + 2500
    assert answer["result"] == {"timeSecond": str(wall // 1000), "timeNano": str(wall * 1_000_000)}
    answer = get(ex, TIME, 2.5004)[1]  # below the millisecond: the nanoseconds go on, `time` keeps its ms
    assert answer["time"] == wall and int(answer["result"]["timeNano"]) == wall * 1_000_000 + 400_000
    ex.clock_skew(-7_000)
    skewed = get(ex, TIME, 3.0)[1]
    assert skewed["time"] == ex.start_ms + 3000 - 7000
    assert skewed["result"]["timeSecond"] == str((ex.start_ms - 4000) // 1000)
    assert int(skewed["result"]["timeNano"]) // 1_000_000 == skewed["time"]
    assert tickers(ex, "category=linear&symbol=BTCUSDT", 3.0)["time"] == skewed["time"]  # every stamp
    ex.heal()
    assert get(ex, TIME, 3.0)[1]["time"] == ex.start_ms + 3000


# ----------------------------------------------------------------------------------------- rate limits


def test_market_answers_carry_the_ip_limit_headers() -> None:
    ex = FakeExchange(seed=1)
    _, headers, _ = ex.rest_response("GET", TIME, {}, 1.0)
    assert headers == {
        "X-Bapi-Limit": "600", "X-Bapi-Limit-Status": "599",
        "X-Bapi-Limit-Reset-Timestamp": str(ex.wall_ms(6.0)),  # Bybit's 600 per 5 s
    }  # fmt: skip
    _, headers, _ = ex.rest_response("GET", f"{TICKERS}?category=spot", {}, 2.0)
    assert headers["X-Bapi-Limit-Status"] == "598"


def test_the_ip_limit_answers_403_and_bans_every_endpoint_until_it_lifts() -> None:
    ex = FakeExchange(seed=1, api_key=KEY, api_secret=SECRET)
    ex.ip_rate_limit(5, window=1.0, ban=10.0)
    left = [ex.rest_response("GET", TIME, {}, 0.1 * i)[1]["X-Bapi-Limit-Status"] for i in range(5)]
    assert left == ["4", "3", "2", "1", "0"]
    assert get(ex, TIME, 0.5) == (403, b"access too frequent")  # one over: refused, and the ban starts
    assert get(ex, f"{TICKERS}?category=linear", 3.0)[0] == 403  # past the window, still banned
    query = "category=linear&settleCoin=USDT"
    stamp = str(ex.wall_ms(9.0))
    sign = Credentials(KEY, SECRET).sign(f"{stamp}{KEY}5000{query}")
    signed = {
        "X-BAPI-API-KEY": KEY,
        "X-BAPI-TIMESTAMP": stamp,
        "X-BAPI-RECV-WINDOW": "5000",
        "X-BAPI-SIGN": sign,
    }
    assert get(ex, f"/v5/position/list?{query}", 9.0, signed)[0] == 403  # the IP limit covers every endpoint
    assert get(ex, TIME, 10.5)[1]["retCode"] == 0  # the ban is over
    ex.ip_rate_limit(1, window=1.0, ban=600.0)
    assert get(ex, TIME, 20.0)[0] == 200 and get(ex, TIME, 20.1)[0] == 403
    ex.heal()  # lifts the ban; the limit stays
    assert get(ex, TIME, 20.2)[0] == 200 and get(ex, TIME, 20.3)[0] == 403
    with pytest.raises(ValueError, match="ip_rate_limit"):
        ex.ip_rate_limit(0)


def test_forced_rate_limit_answers_per_endpoint_kind() -> None:
    ex = FakeExchange(seed=1, api_key=KEY, api_secret=SECRET)
    ex.rest_rate_limit(1, path=TICKERS)
    assert get(ex, TIME, 0.0)[0] == 200  # another endpoint is not hit
    assert get(ex, f"{TICKERS}?category=linear", 0.0) == (403, b"access too frequent")
    assert get(ex, f"{TICKERS}?category=linear", 0.0)[0] == 200  # no ban follows a forced answer
    ex.rest_rate_limit(1)  # any endpoint; a signed one answers as over its own limit
    query = "category=linear&settleCoin=USDT"
    status, headers, body = ex.rest_response("GET", f"/v5/position/list?{query}", {}, 0.0)
    assert status == 200 and json.loads(body)["retCode"] == 10006 and headers["X-Bapi-Limit-Status"] == "0"
    assert json.loads(body)["retMsg"] == "Too many visits!"


# ------------------------------------------------------------------------------------------ REST faults


def test_rest_fail_on_one_endpoint() -> None:
    ex = FakeExchange(seed=1)
    ex.rest_fail(1, status=503, path=TICKERS)
    ex.rest_fail(1, ret_code=10016, path=TICKERS)
    assert get(ex, TIME, 0.0)[1]["retCode"] == 0  # the other endpoint is untouched
    status, body = get(ex, f"{TICKERS}?category=linear", 0.0)
    assert status == 503 and b"503" in body
    assert get(ex, f"{TICKERS}?category=linear", 0.0)[1] == {
        "retCode": 10016, "retMsg": "Server error.", "result": {}, "retExtInfo": {}, "time": ex.wall_ms(0.0),
    }  # fmt: skip
    assert get(ex, f"{TICKERS}?category=linear", 0.0)[1]["retCode"] == 0
    ex.rest_fail(1, status=502)  # without a path: the next request, whichever it is
    assert get(ex, TIME, 0.0)[0] == 502


def test_rest_delay_is_the_latency_whoever_carries_the_request_applies() -> None:
    ex = FakeExchange(seed=1)
    assert ex.rest_latency(f"{TICKERS}?category=linear") == 0.0
    ex.rest_delay(2.0, path=TICKERS)
    ex.rest_delay(0.5)
    assert ex.rest_latency(f"{TICKERS}?category=linear&symbol=BTCUSDT") == 2.0
    assert ex.rest_latency(TIME) == 0.5 == ex.faults.rest_delay  # the Simulation reads this one
    ex.rest_delay(0, path=TICKERS)
    assert ex.rest_latency(TICKERS) == 0.5
    ex.rest_delay(3.0, path=TIME)
    ex.heal()
    assert ex.rest_latency(TIME) == 0.0 == ex.rest_latency(TICKERS)
    with pytest.raises(ValueError):
        ex.rest_delay(-1)


def test_rest_mark_divergence_moves_only_the_rest_mark() -> None:
    ex = FakeExchange(seed=5, api_key=KEY, api_secret=SECRET)
    net = Net(ex)
    client = Client(net, "/v5/public/linear")
    view: dict[str, str] = {}
    merge(view, client.send({"op": "subscribe", "args": ["tickers.BTCUSDT"]}))
    ex.rest_mark_divergence("BTCUSDT", 2)
    for step in range(1, 11):
        now = round(step * 0.1, 9)
        ex.tick(now)
        net.pump()
        merge(view, client.take())
        rest = row(ex, "BTCUSDT", now)
        true_mark = Decimal(view["markPrice"])
        assert true_mark == ex.mark("BTCUSDT")  # the stream keeps the venue's mark
        expected = (true_mark * Decimal("1.02") / Decimal("0.10")).to_integral_value() * Decimal("0.10")
        assert Decimal(rest["markPrice"]) == expected
        assert rest["indexPrice"] == view["indexPrice"] and rest["lastPrice"] == view["lastPrice"]
    assert row(ex, "ETHUSDT", 1.0)["markPrice"] == str(ex.mark("ETHUSDT"))  # other symbols are true
    assert Decimal(
        ex.market_rest(TICKERS, "category=linear&symbol=BTCUSDT")["result"]["list"][0]["markPrice"]
    ) == ((ex.mark("BTCUSDT") * Decimal("1.02") / Decimal("0.10")).to_integral_value() * Decimal("0.10"))
    ex.rest_mark_divergence("BTCUSDT", "-0.5")
    assert Decimal(row(ex, "BTCUSDT", 1.0)["markPrice"]) < ex.mark("BTCUSDT")
    ex.rest_mark_divergence("BTCUSDT", 0)
    assert row(ex, "BTCUSDT", 1.0)["markPrice"] == view["markPrice"]
    ex.rest_mark_divergence(option_symbol(ex), 10, category="option")
    ex.heal()
    assert row(ex, option_symbol(ex), 1.0, "option")["markPrice"] == str(
        ex.mark(option_symbol(ex), category="option")
    )
    for bad in (("BTCUSDT", 1, "spot"), ("BTCUSDT", -100, "linear"), ("BTCUSDT", "nan", "linear")):
        with pytest.raises(ValueError):
            ex.rest_mark_divergence(*bad)


def test_heal_clears_every_rest_fault() -> None:
    ex = FakeExchange(seed=1)
    ex.rest_fail(3, status=503, path=TICKERS)
    ex.rest_fail(2, status=500)
    ex.rest_rate_limit(2, path=TIME)
    ex.rest_delay(1.0, path=TICKERS)
    ex.rest_delay(1.0)
    ex.rest_mark_divergence("BTCUSDT", 5)
    ex.ip_rate_limit(1, window=60.0)
    assert get(ex, TIME, 0.0)[0] == 500 and get(ex, TIME, 0.0)[0] == 500  # the global failures first
    assert get(ex, TIME, 0.0)[0] == 403  # a forced limit (the IP window's one request is spent) ...
    assert get(ex, TIME, 0.1)[0] == 403  # ... and the IP limit, whose ban starts now
    ex.heal()
    ex.ip_rate_limit()
    assert get(ex, TIME, 0.2)[0] == 200  # no forced limit left, the ban lifted
    assert row(ex, "BTCUSDT", 0.2)["markPrice"] == str(ex.mark("BTCUSDT"))  # no failure, no divergence
    assert ex.rest_latency(TICKERS) == 0.0 == ex.rest_latency(TIME)


def test_the_market_endpoints_are_served_only_by_a_venue_that_quotes() -> None:
    net = Net()  # the stub venue of the protocol tests: no tickers, but the clock
    assert get(net.ex, f"{TICKERS}?category=linear", 0.0)[0] == 404
    assert get(net.ex, TIME, 0.0)[1]["retCode"] == 0
    with pytest.raises(KeyError):
        net.ex.market_rest(TICKERS, "category=linear")


# ---------------------------------------------------------------------------- pybit over real sockets


def stream_mark(host: str, port: int, symbol: str = "BTCUSDT") -> Decimal:
    """The markPrice of the first `tickers.{symbol}` snapshot read from a real socket."""
    ws = WSConnection(ConnectionType.CLIENT)
    with socket.create_connection((host, port), 5) as sock:
        sock.sendall(ws.send(Request(host=host, target="/v5/public/linear")))
        while True:
            data = sock.recv(65536)
            assert data, "the served exchange closed the connection"
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    request = {"op": "subscribe", "args": [f"tickers.{symbol}"]}
                    sock.sendall(ws.send(TextMessage(data=json.dumps(request))))
                elif isinstance(event, TextMessage):
                    message = json.loads(event.data)
                    if message.get("type") == "snapshot":
                        return Decimal(message["data"]["markPrice"])


def test_pybit_reads_tickers_and_server_time_from_the_served_exchange() -> None:
    pybit = pytest.importorskip("pybit.unified_trading", reason="pybit (the official SDK) is not installed")
    from bybit_hybrid.server import ServedExchange
    from pybit.exceptions import FailedRequestError, InvalidRequestError

    with ServedExchange(tls=False, host="127.0.0.1") as served:
        session = pybit.HTTP(testnet=False)  # public endpoints: no keys
        session.endpoint = served.rest_url  # pybit builds its URL from testnet/domain/tld; point it here
        before = time.time()
        clock = session.get_server_time()
        assert clock["retCode"] == 0 and abs(int(clock["result"]["timeSecond"]) - before) < 5
        assert int(clock["result"]["timeNano"]) // 1_000_000 == clock["time"]

        answer = session.get_tickers(category="linear", symbol="BTCUSDT")
        [ticker] = answer["result"]["list"]
        assert answer["retCode"] == 0 and list(ticker) == DOCS_KEYS["linear"]

        # the divergence a REST/stream check must see: REST 5% above, the stream on the true mark
        served.call(lambda ex: ex.rest_mark_divergence("BTCUSDT", 5))
        true_mark = stream_mark(served.host, served.port)
        rest_mark = Decimal(
            session.get_tickers(category="linear", symbol="BTCUSDT")["result"]["list"][0]["markPrice"]
        )
        assert Decimal("1.045") < rest_mark / true_mark < Decimal("1.055")

        served.call(lambda ex: ex.rest_delay(0.3, path=TICKERS))
        started = time.monotonic()
        session.get_tickers(category="spot", symbol="BTCUSDT")
        assert time.monotonic() - started >= 0.3  # the served exchange held the request

        served.call(lambda ex: ex.rest_rate_limit(1, path=TICKERS))
        with pytest.raises(FailedRequestError) as limited:
            session.get_tickers(category="linear", symbol="BTCUSDT")
        assert limited.value.status_code == 403
        served.call(lambda ex: ex.rest_fail(1, ret_code=10016, path=TICKERS))
        with pytest.raises(InvalidRequestError) as failed:
            session.get_tickers(category="linear", symbol="BTCUSDT")
        assert failed.value.status_code == 10016
        with pytest.raises(InvalidRequestError) as unknown:
            session.get_tickers(category="linear", symbol="NOPEUSDT")
        assert unknown.value.status_code == 10001

        with_headers = pybit.HTTP(testnet=False, return_response_headers=True)
        with_headers.endpoint = served.rest_url
        _, _, headers = with_headers.get_server_time()
        assert headers["X-Bapi-Limit"] == "600" and int(headers["X-Bapi-Limit-Status"]) < 600
        served.call(lambda ex: ex.heal())
        healed = Decimal(
            session.get_tickers(category="linear", symbol="BTCUSDT")["result"]["list"][0]["markPrice"]
        )
        assert abs(healed / true_mark - 1) < Decimal("0.01")
