"""The FakeExchange trades: signed REST order, position and wallet endpoints with Bybit's answers and codes,
and every change pushed on the private stream as a fill on the venue is (issue 13, item 2).

Sans-IO against `FakeExchange` with the real venue; the pushes are decoded with the core's own codec. One test
drives the served exchange on 127.0.0.1 with pybit, the official SDK, signing its own requests.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from bybit_hybrid_core import Credentials
from bybit_hybrid_core.codec import (
    ExecutionMessage,
    FastExecutionMessage,
    OrderMessage,
    PositionMessage,
    WalletMessage,
    decode,
)
from bybit_hybrid_core.testing._exchange.exchange import FakeExchange
from exchange_helpers import KEY, SECRET, Client, Net

SIGNER = Credentials(KEY, SECRET)
PRIVATE_TOPICS = ("execution.fast", "order", "execution", "position", "wallet")
FILL_TOPICS = ["execution.fast", "order", "execution", "position", "wallet"]


class Trader:
    """A signed REST client and an authenticated private WebSocket on one sans-IO FakeExchange."""

    def __init__(self, seed: int = 7) -> None:
        self.ex = FakeExchange(seed, KEY, SECRET)
        self.net = Net(self.ex)
        self.now = 0.0
        self.ws = Client(self.net, "/v5/private")
        expires = self.ex.wall_ms(0) + 10_000
        auth = {"op": "auth", "args": [KEY, expires, SIGNER.sign(f"GET/realtime{expires}")]}
        assert self.ws.send(auth)[0]["success"] is True
        assert self.ws.send({"op": "subscribe", "args": list(PRIVATE_TOPICS)})[0]["success"] is True
        self.headers: dict[str, str] = {}

    def _signed(self, payload: str, *, key: str = KEY, secret: str = SECRET) -> dict[str, str]:
        stamp = str(self.ex.wall_ms())
        sign = Credentials(key, secret).sign(f"{stamp}{key}5000{payload}")
        return {
            "X-BAPI-API-KEY": key,
            "X-BAPI-TIMESTAMP": stamp,
            "X-BAPI-RECV-WINDOW": "5000",
            "X-BAPI-SIGN": sign,
        }

    def post(self, path: str, params: dict[str, Any], **sign: str) -> dict[str, Any]:
        """POST `params` as JSON, signed over the body; Bybit's answer (headers in `self.headers`)."""
        self.now += 0.25  # below every endpoint's per-second limit
        body = json.dumps(params)
        status, self.headers, raw = self.ex.rest_response(
            "POST", path, self._signed(body, **sign), self.now, body.encode()
        )
        self.net.pump()
        assert status == 200
        answer: dict[str, Any] = json.loads(raw)
        return answer

    def get(self, path: str, query: str) -> dict[str, Any]:
        self.now += 0.25
        status, self.headers, raw = self.ex.rest_response(
            "GET", f"{path}?{query}", self._signed(query), self.now
        )
        self.net.pump()
        assert status == 200
        answer: dict[str, Any] = json.loads(raw)
        return answer

    def pushes(self) -> list[Any]:
        """The private pushes since the last call, decoded by the core's codec."""
        self.net.pump()
        return [decode(json.dumps(m)) for m in self.ws.take() if "topic" in m]

    def order(self, side: str, qty: str, price: str | None = None, **more: Any) -> dict[str, Any]:
        params = {"category": "linear", "symbol": "BTCUSDT", "side": side, "qty": qty, **more}
        params["orderType"] = "Limit" if price is not None else "Market"
        if price is not None:
            params["price"] = price
        return self.post("/v5/order/create", params)

    def mark(self, price: Decimal | str) -> None:
        self.ex.mark("BTCUSDT", price)
        self.net.pump()


def topics(pushes: list[Any]) -> list[str]:
    return [p.topic for p in pushes]


@pytest.fixture
def t() -> Trader:
    return Trader()


# --------------------------------------------------------------------------------------------- orders


def test_market_order_answers_like_bybit_and_pushes_a_fill(t: Trader) -> None:
    answer = t.order("Buy", "0.5", orderLinkId="m-1")
    assert answer["retCode"] == 0 and answer["retMsg"] == "OK" and answer["retExtInfo"] == {}
    assert set(answer["result"]) == {"orderId", "orderLinkId"} and answer["result"]["orderLinkId"] == "m-1"
    assert isinstance(answer["time"], int)
    assert t.headers["X-Bapi-Limit"] == "10" and t.headers["X-Bapi-Limit-Status"] == "9"
    assert int(t.headers["X-Bapi-Limit-Reset-Timestamp"]) > answer["time"] - 1000
    pushes = t.pushes()
    assert topics(pushes) == FILL_TOPICS
    fast, order, execution, position, wallet = pushes
    assert isinstance(fast, FastExecutionMessage) and isinstance(order, OrderMessage)
    assert isinstance(execution, ExecutionMessage) and isinstance(position, PositionMessage)
    assert isinstance(wallet, WalletMessage)
    assert order.data[0].order_id == answer["result"]["orderId"] == execution.data[0].order_id
    assert order.data[0].order_status == "Filled" and order.data[0].order_link_id == "m-1"
    assert position.data[0].size == Decimal("0.5") and position.data[0].side == "Buy"


def test_limit_order_rests_then_fills_when_the_mark_crosses(t: Trader) -> None:
    mark = t.ex.mark("BTCUSDT")
    price = mark - 500
    answer = t.order("Buy", "0.2", str(price))
    oid = answer["result"]["orderId"]
    [new] = t.pushes()
    assert isinstance(new, OrderMessage)
    row = new.data[0]
    assert (row.order_id, row.order_status, row.order_type, row.price) == (oid, "New", "Limit", price)
    assert row.leaves_qty == Decimal("0.2") and row.time_in_force == "GTC"
    listed = t.get("/v5/order/realtime", "category=linear&symbol=BTCUSDT")["result"]
    assert listed["category"] == "linear" and [r["orderId"] for r in listed["list"]] == [oid]
    t.mark(price + 100)  # not there yet
    assert t.pushes() == []
    t.mark(price)
    pushes = t.pushes()
    assert topics(pushes) == FILL_TOPICS
    order = pushes[1].data[0]
    assert (order.order_id, order.order_status, order.order_type, order.avg_price) == (
        oid,
        "Filled",
        "Limit",
        price,
    )
    assert pushes[2].data[0].is_maker is True and pushes[2].data[0].exec_price == price
    assert t.ex.positions()[("linear", "BTCUSDT", 0)].size == Decimal("0.2")
    assert t.get("/v5/order/realtime", "category=linear&symbol=BTCUSDT")["result"]["list"] == []
    closed = t.get("/v5/order/realtime", f"category=linear&orderId={oid}")["result"]["list"]
    assert closed[0]["orderStatus"] == "Filled"


def test_a_crossing_limit_fills_at_once_and_post_only_is_cancelled(t: Trader) -> None:
    mark = t.ex.mark("BTCUSDT")
    assert t.order("Buy", "0.1", str(mark + 1000))["retCode"] == 0
    pushes = t.pushes()
    assert topics(pushes) == FILL_TOPICS and pushes[1].data[0].avg_price < mark + 1000  # at the touch
    assert t.order("Buy", "0.1", str(mark + 1000), timeInForce="PostOnly")["retCode"] == 0
    [cancelled] = t.pushes()
    assert cancelled.data[0].order_status == "Cancelled"
    assert cancelled.data[0].reject_reason == "EC_PostOnlyWillTakeLiquidity"


def test_amend_changes_an_open_order_and_pushes_it(t: Trader) -> None:
    mark = t.ex.mark("BTCUSDT")
    oid = t.order("Sell", "0.3", str(mark + 500), orderLinkId="s-1")["result"]["orderId"]
    t.pushes()
    answer = t.post(
        "/v5/order/amend", {"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "s-1", "qty": "0.4"}
    )
    assert answer["retCode"] == 0 and answer["result"] == {"orderId": oid, "orderLinkId": "s-1"}
    [amended] = t.pushes()
    assert amended.data[0].order_status == "New" and amended.data[0].qty == Decimal("0.4")
    same = t.post(
        "/v5/order/amend", {"category": "linear", "symbol": "BTCUSDT", "orderId": oid, "qty": "0.4"}
    )
    assert same["retCode"] == 110025
    gone = t.post("/v5/order/amend", {"category": "linear", "symbol": "BTCUSDT", "orderId": "x", "qty": "1"})
    assert (gone["retCode"], gone["retMsg"]) == (110001, "order not exists or too late to cancel")
    # an amend that crosses the mark fills at once
    t.post("/v5/order/amend", {"category": "linear", "symbol": "BTCUSDT", "orderId": oid, "price": str(mark)})
    assert topics(t.pushes()) == ["order", *FILL_TOPICS]


def test_cancel_and_cancel_all(t: Trader) -> None:
    mark = t.ex.mark("BTCUSDT")
    ids = [t.order("Buy", "0.1", str(mark - 100 * (i + 1)))["result"]["orderId"] for i in range(3)]
    t.pushes()
    answer = t.post("/v5/order/cancel", {"category": "linear", "symbol": "BTCUSDT", "orderId": ids[0]})
    assert answer["retCode"] == 0 and answer["result"]["orderId"] == ids[0]
    [cancelled] = t.pushes()
    assert (cancelled.data[0].order_status, cancelled.data[0].cancel_type) == ("Cancelled", "CancelByUser")
    again = t.post("/v5/order/cancel", {"category": "linear", "symbol": "BTCUSDT", "orderId": ids[0]})
    assert again["retCode"] == 110001
    everything = t.post("/v5/order/cancel-all", {"category": "linear", "symbol": "BTCUSDT"})
    assert everything["retCode"] == 0 and everything["result"]["success"] == "1"
    assert sorted(r["orderId"] for r in everything["result"]["list"]) == sorted(ids[1:])
    assert [p.data[0].order_status for p in t.pushes()] == ["Cancelled", "Cancelled"]
    assert t.headers["X-Bapi-Limit"] == "1"


def test_reduce_only_never_grows_a_position(t: Trader) -> None:
    refused = t.order("Sell", "1", reduceOnly=True)
    assert refused["retCode"] == 110017 and t.pushes() == []
    t.order("Buy", "0.5")
    t.pushes()
    assert t.order("Buy", "0.1", reduceOnly=True)["retCode"] == 110017
    assert t.order("Sell", "2", reduceOnly=True)["retCode"] == 0  # trimmed to the position
    position = t.pushes()[3].data[0]
    assert position.size == 0
    assert t.ex.positions() == {}


def test_hedge_mode_position_idx(t: Trader) -> None:
    t.ex.venue.set_hedge_mode("linear", "BTCUSDT")  # type: ignore[attr-defined]
    wrong = t.order("Buy", "0.1")
    assert (wrong["retCode"], wrong["retMsg"]) == (10001, "position idx not match position mode")
    assert t.order("Buy", "0.1", positionIdx=1)["retCode"] == 0
    assert t.order("Sell", "0.2", positionIdx=2)["retCode"] == 0
    rows = [p.data[0] for p in t.pushes() if isinstance(p, PositionMessage)]
    assert [(r.position_idx, r.side, r.size) for r in rows] == [
        (1, "Buy", Decimal("0.1")),
        (2, "Sell", Decimal("0.2")),
    ]
    mark = t.ex.mark("BTCUSDT")
    assert t.order("Sell", "0.1", str(mark + 300), positionIdx=1)["retCode"] == 0  # closes the Buy leg
    t.pushes()
    t.mark(mark + 300)
    assert ("linear", "BTCUSDT", 1) not in t.ex.positions()
    assert t.ex.positions()[("linear", "BTCUSDT", 2)].size == Decimal("0.2")


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market"}, 10001),
        (
            {"category": "spread", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market", "qty": "1"},
            10001,
        ),
        (
            {"category": "linear", "symbol": "NOPEUSDT", "side": "Buy", "orderType": "Market", "qty": "1"},
            10001,
        ),
        ({"category": "linear", "symbol": "BTCUSDT", "side": "Up", "orderType": "Market", "qty": "1"}, 10001),
        ({"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "1"}, 10001),
    ],
)
def test_create_parameter_errors(t: Trader, params: dict[str, Any], code: int) -> None:
    answer = t.post("/v5/order/create", params)
    assert answer["retCode"] == code and answer["retMsg"].startswith("params error")
    assert answer["result"] == {} and t.pushes() == []


def test_signature_key_and_rate_limit_errors(t: Trader) -> None:
    params = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market", "qty": "1"}
    assert t.post("/v5/order/create", params, secret="wrong")["retCode"] == 10004
    assert t.post("/v5/order/create", params, key="other", secret=SECRET)["retCode"] == 10003
    body = json.dumps(params).encode()
    headers = t._signed(json.dumps({**params, "qty": "2"}))  # signed a different body
    assert json.loads(t.ex.rest("POST", "/v5/order/create", headers, t.now, body)[1])["retCode"] == 10004
    assert t.ex.rest("DELETE", "/v5/order/create", headers, t.now)[0] == 404
    t.ex._rest.rate_limits[("POST", "/v5/order/cancel-all")] = 2  # type: ignore[attr-defined]
    answers = []
    for _ in range(3):
        body_text = json.dumps({"category": "linear", "symbol": "BTCUSDT"})
        _, hdrs, raw = t.ex.rest_response(
            "POST", "/v5/order/cancel-all", t._signed(body_text), t.now, body_text.encode()
        )
        answers.append((json.loads(raw)["retCode"], hdrs["X-Bapi-Limit-Status"]))
    assert answers == [(0, "1"), (0, "0"), (10006, "0")]
    assert t.pushes() == []


# ------------------------------------------------------------------------------- trading stop, leverage


def test_take_profit_is_pushed_on_the_position_and_triggers_on_the_mark(t: Trader) -> None:
    t.order("Buy", "1")
    t.pushes()
    mark = t.ex.mark("BTCUSDT")
    stop = {"category": "linear", "symbol": "BTCUSDT", "positionIdx": 0, "tpslMode": "Full"}
    answer = t.post("/v5/position/trading-stop", {**stop, "takeProfit": str(mark + 1000)})
    assert answer["retCode"] == 0 and answer["result"] == {}
    [position] = t.pushes()
    assert isinstance(position, PositionMessage) and position.data[0].take_profit == mark + 1000
    listed = t.get("/v5/position/list", "category=linear&symbol=BTCUSDT")["result"]["list"][0]
    assert Decimal(listed["takeProfit"]) == mark + 1000
    t.mark(mark + 999)
    assert t.pushes() == []
    t.mark(mark + 1000)
    pushes = t.pushes()
    assert topics(pushes) == FILL_TOPICS
    order, execution, flat = pushes[1].data[0], pushes[2].data[0], pushes[3].data[0]
    assert (order.side, order.reduce_only, order.stop_order_type) == ("Sell", True, "TakeProfit")
    assert order.create_type == "CreateByTakeProfit" and execution.stop_order_type == "TakeProfit"
    assert flat.size == 0 and flat.take_profit in (None, 0)
    assert t.ex.positions() == {}


def test_stop_loss_closes_a_short(t: Trader) -> None:
    t.order("Sell", "1")
    mark = t.ex.mark("BTCUSDT")
    stop = {"category": "linear", "symbol": "BTCUSDT", "stopLoss": str(mark + 200)}
    assert t.post("/v5/position/trading-stop", stop)["retCode"] == 0
    t.pushes()
    t.mark(mark + 250)
    pushes = t.pushes()
    assert pushes[1].data[0].stop_order_type == "StopLoss" and pushes[1].data[0].side == "Buy"
    assert t.ex.positions() == {}


def test_trailing_stop_follows_the_best_mark(t: Trader) -> None:
    t.order("Buy", "1")
    mark = t.ex.mark("BTCUSDT")
    answer = t.post(
        "/v5/position/trading-stop", {"category": "linear", "symbol": "BTCUSDT", "trailingStop": "100"}
    )
    assert answer["retCode"] == 0
    assert [p.data[0].trailing_stop for p in t.pushes() if isinstance(p, PositionMessage)][-1] == 100
    for price in (mark + 100, mark + 300, mark + 250, mark + 201):
        t.mark(price)
    assert t.pushes() == [] and t.ex.positions()
    t.mark(mark + 200)  # 100 below the best mark since it was set
    pushes = t.pushes()
    assert pushes[1].data[0].stop_order_type == "TrailingStop"
    assert pushes[1].data[0].create_type == "CreateByTrailingStop"
    assert t.ex.positions() == {}


def test_trading_stop_refusals(t: Trader) -> None:
    zero = t.post("/v5/position/trading-stop", {"category": "linear", "symbol": "BTCUSDT", "takeProfit": "1"})
    assert (zero["retCode"], zero["retMsg"]) == (10001, "can not set tp/sl/ts for zero position")
    t.order("Buy", "1")
    mark = t.ex.mark("BTCUSDT")
    below = t.post(
        "/v5/position/trading-stop", {"category": "linear", "symbol": "BTCUSDT", "takeProfit": str(mark - 10)}
    )
    assert below["retCode"] == 10001 and "should be higher than" in below["retMsg"]


def test_set_leverage(t: Trader) -> None:
    t.order("Buy", "1")
    t.pushes()
    lev = {"category": "linear", "symbol": "BTCUSDT", "buyLeverage": "5", "sellLeverage": "5"}
    assert t.post("/v5/position/set-leverage", lev) == {
        "retCode": 0, "retMsg": "OK", "result": {}, "retExtInfo": {}, "time": t.ex.wall_ms(),
    }  # fmt: skip
    [position] = t.pushes()
    assert position.data[0].leverage == 5
    assert t.ex.positions()[("linear", "BTCUSDT", 0)].leverage == 5
    same = t.post("/v5/position/set-leverage", lev)
    assert (same["retCode"], same["retMsg"]) == (110043, "Set leverage not modified")
    assert t.post("/v5/position/set-leverage", {**lev, "sellLeverage": "3"})["retCode"] == 10001
    assert (
        t.post("/v5/position/set-leverage", {**lev, "buyLeverage": "500", "sellLeverage": "500"})["retCode"]
        == 10001
    )


def test_wallet_balance(t: Trader) -> None:
    answer = t.get("/v5/account/wallet-balance", "accountType=UNIFIED&coin=USDT")
    assert answer["retCode"] == 0 and t.headers["X-Bapi-Limit"] == "50"
    [account] = answer["result"]["list"]
    assert account["accountType"] == "UNIFIED" and [c["coin"] for c in account["coin"]] == ["USDT"]
    assert Decimal(account["coin"][0]["walletBalance"]) == 100_000
    assert t.get("/v5/account/wallet-balance", "accountType=CONTRACT")["retCode"] == 10001


def test_operator_trade_call_pushes_like_rest(t: Trader) -> None:
    answer = t.ex.trade("POST", "/v5/order/create", {"category": "linear", "symbol": "BTCUSDT", "side": "Buy",
                                                     "orderType": "Market", "qty": "0.1"})  # fmt: skip
    assert answer["retCode"] == 0
    assert topics(t.pushes()) == FILL_TOPICS


# ------------------------------------------------------------------------------- pybit over real sockets


def test_pybit_places_amends_and_cancels_against_the_served_exchange() -> None:
    pybit = pytest.importorskip("pybit.unified_trading", reason="pybit (the official SDK) is not installed")
    from bybit_hybrid.server import ServedExchange

    with ServedExchange(tls=False, host="127.0.0.1") as served:
        session = pybit.HTTP(api_key=served.api_key, api_secret=served.api_secret)
        assert served.rest_url.startswith("http://127.0.0.1:")
        session.endpoint = served.rest_url  # pybit builds its URL from testnet/domain/tld; point it here
        mark = served.call(lambda ex: ex.mark("BTCUSDT"))
        placed = session.place_order(
            category="linear", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.01",
            price=str(mark - 1000), orderLinkId="pybit-1",
        )  # fmt: skip
        oid = placed["result"]["orderId"]
        amended = session.amend_order(
            category="linear", symbol="BTCUSDT", orderId=oid, price=str(mark - 2000)
        )
        assert amended["retCode"] == 0
        [open_order] = session.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"]
        assert Decimal(open_order["price"]) == mark - 2000 and open_order["orderLinkId"] == "pybit-1"
        assert (
            session.cancel_order(category="linear", symbol="BTCUSDT", orderLinkId="pybit-1")["retCode"] == 0
        )
        assert session.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"] == []
        from pybit.exceptions import InvalidRequestError

        with pytest.raises(InvalidRequestError) as refused:
            session.cancel_order(category="linear", symbol="BTCUSDT", orderId=oid)
        assert refused.value.status_code == 110001
        session.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.01")
        assert served.call(lambda ex: ex.positions())[("linear", "BTCUSDT", 0)].size == Decimal("0.01")
        wallet = session.get_wallet_balance(accountType="UNIFIED", coin="USDT")
        assert wallet["result"]["list"][0]["coin"][0]["coin"] == "USDT"


# ------------------------------------------------------------------------------------- the sim commands


def test_sim_trading_commands() -> None:
    from bybit_hybrid.cli.sim import SimShell
    from bybit_hybrid.server import ServedExchange

    with ServedExchange(tls=False) as served:
        shell = SimShell(served)
        mark = served.call(lambda ex: ex.mark("BTCUSDT"))
        placed = shell.execute(f"order BTCUSDT Buy 0.5 price={mark - 100}")
        assert placed.startswith("ok: order ") and "Limit" in placed
        oid = placed.split()[2]
        assert shell.execute("orders BTCUSDT").startswith("ok: 1 open order(s)")
        assert shell.execute(f"amend BTCUSDT {oid} price={mark - 200}") == f"ok: amended {oid}"
        assert shell.execute(f"cancel BTCUSDT {oid}") == f"ok: cancelled {oid}"
        assert shell.execute(f"cancel BTCUSDT {oid}").startswith("error: retCode 110001")
        assert shell.execute("order BTCUSDT Sell 1 reduce").startswith("error: retCode 110017")
        assert shell.execute("order BTCUSDT Buy 1").startswith("ok: order ")
        assert shell.execute(f"stop BTCUSDT tp={mark + 500} trail=50").startswith("ok: linear/BTCUSDT/0")
        assert shell.execute("leverage BTCUSDT 4").startswith("ok: linear/BTCUSDT leverage 4/4")
        shell.execute(f"mark BTCUSDT {mark + 600}")
        assert shell.execute("positions").startswith("ok: 0 open position(s)")
        assert shell.execute("cancel BTCUSDT all") == "ok: cancelled 0 order(s)"
