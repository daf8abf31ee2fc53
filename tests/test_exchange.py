"""The FakeExchange, driven by a raw wsproto client: every reply has a real Bybit sample's shape and text.

Shapes are compared by key set and text against `shared/bybit-v5-samples/` (the only things a client may rely
on: ids and timestamps differ by nature).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from wsproto.events import CloseConnection, Ping, Pong, TextMessage

from bybit_hybrid_core import Credentials
from bybit_hybrid_core.testing._exchange.exchange import FakeExchange
from exchange_helpers import KEY, SECRET, Client, Net, StubVenue

SIGNER = Credentials(KEY, SECRET)


def sample(name: str, samples: Any) -> Any:
    return json.loads((samples / name).read_text())


def keys(obj: dict[str, Any]) -> set[str]:
    return set(obj)


def auth_args(net: Net, now: float = 0.0, ahead_ms: int = 10_000) -> list[Any]:
    expires = net.ex.wall_ms(now) - net.ex.faults.skew_ms + ahead_ms
    return [KEY, expires, SIGNER.sign(f"GET/realtime{expires}")]


def authed(net: Net, topics: tuple[str, ...] = ()) -> Client:
    client = Client(net, "/v5/private")
    assert client.send({"op": "auth", "args": auth_args(net)})[0]["success"] is True
    if topics:
        assert client.send({"op": "subscribe", "args": list(topics)})[0]["success"] is True
    return client


@pytest.fixture
def net() -> Net:
    return Net()


# ------------------------------------------------------------------------------------------ handshake


@pytest.mark.parametrize(
    "path", ["/v5/public/linear", "/v5/public/inverse", "/v5/public/spot", "/v5/public/option", "/v5/private"]
)
def test_known_paths_upgrade(net: Net, path: str) -> None:
    client = Client(net, path)
    assert client.accepted and not client.closed
    assert net.ex.kind_of(client.conn) == path.rsplit("/", 1)[1]


@pytest.mark.parametrize("path", ["/v5/public/spread", "/v5/trade", "/", "/v5/public/LINEAR"])
def test_unknown_paths_get_404_and_a_closed_socket(net: Net, path: str) -> None:
    client = Client(net, path)
    assert client.rejected == 404 and client.closed


def test_geo_block_answers_403_until_healed(net: Net) -> None:
    net.ex.geo_block()
    assert Client(net, "/v5/public/linear").rejected == 403
    net.ex.heal()
    assert Client(net, "/v5/public/linear").accepted


def test_more_than_500_dials_in_5_minutes_are_refused_and_recorded(net: Net) -> None:
    for i in range(500):
        assert Client(net, "/v5/public/linear", now=i * 0.5).accepted
    assert Client(net, "/v5/public/linear", now=250.0).rejected == 429
    assert any("connections within 300 s" in v for v in net.ex.violations)
    assert Client(net, "/v5/public/linear", now=601.0).accepted  # the window moved on


def test_garbage_upgrade_closes_the_socket(net: Net) -> None:
    conn = net.ex.accept(0.0)
    net.ex.receive(conn, b"HELLO\r\n\r\n", 0.0)
    assert any(type(a).__name__ == "ServerClose" for a in net.ex.poll())


# -------------------------------------------------------------------------------------------- pongs


@pytest.mark.parametrize(
    ("path", "req_id", "sample_name"),
    [
        ("/v5/public/spot", None, "pong-public-spot.json"),
        ("/v5/public/linear", None, "pong-public-linear-inverse.json"),
        ("/v5/public/inverse", "p1", "pong-public-linear-real-2.json"),
        ("/v5/public/option", None, "pong-public-option-spread.json"),
        ("/v5/public/option", "x", "pong-public-option-spread.json"),
        ("/v5/private", "test", "pong-private.json"),
        ("/v5/private", None, "pong-private-no-req-id-real-2023.json"),
    ],
)
def test_pong_shapes(net: Net, samples_dir: Any, path: str, req_id: str | None, sample_name: str) -> None:
    client = Client(net, path)
    request: dict[str, Any] = {"op": "ping"} if req_id is None else {"op": "ping", "req_id": req_id}
    [pong] = client.send(request)
    assert keys(pong) == keys(sample(sample_name, samples_dir))
    if "req_id" in pong:
        assert pong["req_id"] == (req_id or "")
    if "args" in pong:
        assert pong["args"] == [str(net.ex.wall_ms(0.0))]


def test_spot_pong_echoes_a_sent_req_id(net: Net) -> None:
    [pong] = Client(net, "/v5/public/spot").send({"op": "ping", "req_id": "9"})
    assert pong["req_id"] == "9" and pong["ret_msg"] == "pong" and pong["op"] == "ping"


def test_private_conn_id_suffix_changes_per_reply_but_public_stays(net: Net) -> None:
    private, public = Client(net, "/v5/private"), Client(net, "/v5/public/linear")
    a, b = (private.send({"op": "ping"})[0]["conn_id"] for _ in range(2))
    assert a != b and a.rsplit("-", 1)[0] == b.rsplit("-", 1)[0]
    c, d = (public.send({"op": "ping"})[0]["conn_id"] for _ in range(2))
    assert c == d


def test_protocol_ping_gets_a_protocol_pong(net: Net) -> None:
    client = Client(net, "/v5/public/linear")
    net.ex.receive(client.conn, client.ws.send(Ping(b"hi")), 0.0)
    net.pump()
    assert any(isinstance(e, Pong) and e.payload == b"hi" for e in client.events)


# --------------------------------------------------------------------------------------------- auth


def test_auth_success_shapes(net: Net, samples_dir: Any) -> None:
    client = Client(net, "/v5/private")
    [ack] = client.send({"op": "auth", "args": auth_args(net)})
    assert keys(ack) == keys(sample("auth-success.json", samples_dir)) and ack["ret_msg"] == ""
    other = Client(net, "/v5/private")
    [ack] = other.send({"req_id": "7", "op": "auth", "args": auth_args(net)})
    assert keys(ack) == keys(sample("auth-success-real-2025.json", samples_dir)) and ack["req_id"] == "7"
    assert net.ex.authed(client.conn) and net.ex.authed(other.conn)


def test_auth_accepts_expires_as_a_numeric_string(net: Net) -> None:
    key, expires, sig = auth_args(net)
    [ack] = Client(net, "/v5/private").send({"op": "auth", "args": [key, str(expires), sig]})
    assert ack["success"] is True


@pytest.mark.parametrize(
    "mangle",
    [
        lambda a: [a[0], a[1] - 20_000, SIGNER.sign(f"GET/realtime{a[1] - 20_000}")],  # expired
        lambda a: [a[0], a[1], a[2][:-1] + ("0" if a[2][-1] != "0" else "1")],  # bad signature
        lambda a: [a[0], a[1], Credentials(KEY, "other").sign(f"GET/realtime{a[1]}")],  # wrong secret
        lambda a: ["other-key", a[1], a[2]],  # unknown key
        lambda a: [a[0], a[1]],  # too few args
        lambda a: [a[0], "soon", a[2]],  # expires not a number
    ],
)
def test_auth_refusals_are_params_error(net: Net, samples_dir: Any, mangle: Any) -> None:
    client = Client(net, "/v5/private")
    [ack] = client.send({"op": "auth", "args": mangle(auth_args(net))})
    assert keys(ack) == keys(sample("auth-failure-params-error.json", samples_dir))
    assert (ack["success"], ack["ret_msg"]) == (False, "Params Error")
    assert not net.ex.authed(client.conn) and not client.closed


def test_clock_skew_beyond_the_expires_margin_refuses_auth(net: Net) -> None:
    net.ex.clock_skew(15_000)  # the server's clock is 15 s ahead of the client's now + 10 s
    [ack] = Client(net, "/v5/private").send({"op": "auth", "args": auth_args(net)})
    assert ack["ret_msg"] == "Params Error"
    net.ex.clock_skew(5_000)
    [ack] = Client(net, "/v5/private").send({"op": "auth", "args": auth_args(net)})
    assert ack["success"] is True


def test_reject_auth_n_then_forever_then_heal(net: Net) -> None:
    net.ex.reject_auth(2)
    results = [
        Client(net, "/v5/private").send({"op": "auth", "args": auth_args(net)})[0]["success"]
        for _ in range(3)
    ]
    assert results == [False, False, True]
    net.ex.reject_auth(None)
    assert not any(
        Client(net, "/v5/private").send({"op": "auth", "args": auth_args(net)})[0]["success"]
        for _ in range(3)
    )
    net.ex.heal()
    assert Client(net, "/v5/private").send({"op": "auth", "args": auth_args(net)})[0]["success"]


def test_repeat_auth_is_refused_and_recorded(net: Net) -> None:
    client = authed(net)
    [ack] = client.send({"op": "auth", "args": auth_args(net)})
    assert (ack["success"], ack["ret_msg"]) == (False, "Repeat auth")
    assert net.ex.authed(client.conn) and any("repeat auth" in v for v in net.ex.violations)


def test_auth_on_a_public_link_is_an_invalid_op(net: Net) -> None:
    [reply] = Client(net, "/v5/public/linear").send({"op": "auth", "args": auth_args(net)})
    assert reply["ret_msg"] == "error:invalid op" and reply["op"] == "auth"


# ----------------------------------------------------------------------------------------- subscribe


@pytest.mark.parametrize(
    ("path", "req_id", "sample_name", "ret_msg"),
    [
        ("/v5/public/linear", None, "subscribe-success-public-linear-inverse.json", ""),
        ("/v5/public/inverse", "t1", "subscribe-success-public-linear-real-2.json", ""),
        ("/v5/public/spot", None, "subscribe-success-public-spot-real-2023.json", "subscribe"),
        ("/v5/public/spot", "10001", "subscribe-success-public-spot.json", "subscribe"),
    ],
)
def test_public_subscribe_acks(
    net: Net, samples_dir: Any, path: str, req_id: str | None, sample_name: str, ret_msg: str
) -> None:
    client = Client(net, path)
    request: dict[str, Any] = {"op": "subscribe", "args": ["tickers.BTCUSDT", "orderbook.1.BTCUSDT"]}
    if req_id is not None:
        request["req_id"] = req_id
    ack, snapshot = client.send(request)  # one ack for the request, then the ticker snapshot
    assert keys(ack) == keys(sample(sample_name, samples_dir))
    assert (ack["success"], ack["ret_msg"], ack.get("req_id", "")) == (True, ret_msg, req_id or "")
    assert snapshot["topic"] == "tickers.BTCUSDT" and snapshot["type"] == "snapshot"
    assert net.ex.topics(client.conn) == {"tickers.BTCUSDT", "orderbook.1.BTCUSDT"}


def test_option_ack_is_command_resp(net: Net, samples_dir: Any) -> None:
    client = Client(net, "/v5/public/option")
    [ack, _snapshot] = client.send({"op": "subscribe", "req_id": "1", "args": ["tickers.BTCUSDT"]})
    expected = sample("subscribe-success-public-option.json", samples_dir)
    assert keys(ack) == keys(expected) and keys(ack["data"]) == keys(expected["data"])
    assert ack["type"] == "COMMAND_RESP" and ack["data"]["successTopics"] == ["tickers.BTCUSDT"]
    [ack] = client.send({"op": "subscribe", "args": ["tickers.NOPE", "publicTrade.BTCUSDT"]})
    assert ack["success"] is False and ack["data"] == {
        "failTopics": ["tickers.NOPE"],
        "successTopics": ["publicTrade.BTCUSDT"],
    }


def test_unknown_topic_fails_the_whole_request_naming_the_first(net: Net, samples_dir: Any) -> None:
    client = Client(net, "/v5/public/linear")
    request = {
        "op": "subscribe",
        "req_id": "e1",
        "args": ["tickers.BTCUSDT", "orderbook.50.NOPEUSDT", "order"],
    }
    [ack] = client.send(request)
    expected = sample("subscribe-failure-unknown-topic-linear.json", samples_dir)
    assert keys(ack) == keys(expected) and ack["ret_msg"] == expected["ret_msg"]
    assert net.ex.topics(client.conn) == frozenset()  # the good topic was not taken either


def test_already_subscribed(net: Net, samples_dir: Any) -> None:
    client = Client(net, "/v5/public/linear")
    client.send({"op": "subscribe", "args": ["orderbook.1.ETHUSDT"]})
    [ack] = client.send({"op": "subscribe", "req_id": "e6", "args": ["orderbook.1.ETHUSDT"]})
    expected = sample("subscribe-failure-already-subscribed-linear.json", samples_dir)
    assert keys(ack) == keys(expected) and ack["ret_msg"] == expected["ret_msg"]


def test_spot_more_than_ten_args_escapes_the_gt_on_the_wire(net: Net, samples_dir: Any) -> None:
    client = Client(net, "/v5/public/spot")
    topics = [
        f"{family}.{s}"
        for family in ("tickers", "orderbook.1", "orderbook.50", "publicTrade")
        for s in ("BTCUSDT", "ETHUSDT")
    ]
    topics += ["tickers.BTCUSDT"] * 3
    assert len(topics) == 11
    [ack] = client.send({"op": "subscribe", "req_id": "2000001", "args": topics})
    expected = sample("subscribe-failure-args-size-spot.json", samples_dir)
    assert keys(ack) == keys(expected) and ack["ret_msg"] == "args size >10" == expected["ret_msg"]
    raw = [e.data for e in client.events if isinstance(e, TextMessage)][-1]
    assert "\\u003e10" in raw and ">" not in raw
    assert any("11 args in one spot request" in v for v in net.ex.violations)


def test_spot_unknown_symbol_is_invalid_symbol(net: Net) -> None:
    [ack] = Client(net, "/v5/public/spot").send({"op": "subscribe", "args": ["tickers.NOPEUSDT"]})
    assert ack["ret_msg"] == "Invalid symbol :[tickers.NOPEUSDT]" and "req_id" not in ack


def test_args_over_21000_characters_per_public_connection_are_refused(net: Net) -> None:
    net.ex.venue.topic_exists = lambda category, topic: True  # type: ignore[method-assign]
    client = Client(net, "/v5/public/linear")
    topics = [f"tickers.SYM{i:05d}USDT" for i in range(1000)]  # 20 characters each: 20,000
    assert client.send({"op": "subscribe", "args": topics})[0]["success"] is True
    [ack] = client.send({"op": "subscribe", "args": [f"tickers.MORE{i:04d}USDT" for i in range(60)]})
    assert ack["success"] is False and any("21000" in v for v in net.ex.violations)


def test_fail_subscribe_n_times(net: Net) -> None:
    client = Client(net, "/v5/public/linear")
    net.ex.fail_subscribe("tickers.BTCUSDT", n=1)
    [ack] = client.send({"op": "subscribe", "args": ["tickers.BTCUSDT"]})
    assert ack["ret_msg"] == "error:handler not found,topic:tickers.BTCUSDT"
    assert client.send({"op": "subscribe", "args": ["tickers.BTCUSDT"]})[0]["success"] is True


def test_unsubscribe_ack_and_pushes_stop(net: Net, samples_dir: Any) -> None:
    client = Client(net, "/v5/public/linear")
    client.send({"op": "subscribe", "args": ["tickers.BTCUSDT"]})
    net.advance(0.25)
    assert [m["type"] for m in client.take()] == ["delta", "delta"]
    [ack] = client.send({"op": "unsubscribe", "req_id": "3", "args": ["tickers.BTCUSDT"]}, now=0.25)
    assert keys(ack) == keys(sample("unsubscribe-success-public.json", samples_dir)) and ack["success"]
    net.advance(1.0)
    assert client.take() == [] and net.ex.deadline() is not None  # only the idle cut is left


def test_private_subscribe_before_auth(net: Net, samples_dir: Any) -> None:
    client = Client(net, "/v5/private")
    [ack] = client.send({"op": "subscribe", "req_id": "s", "args": ["position"]})
    assert (ack["success"], ack["ret_msg"]) == (False, "Request not authorized")
    assert keys(ack) == keys(sample("subscribe-success-private-real-2025.json", samples_dir))
    assert any("before the auth ack" in v for v in net.ex.violations)


def test_private_subscribe_success_and_partial_failure(net: Net, samples_dir: Any) -> None:
    client = authed(net)
    [ack] = client.send({"op": "subscribe", "args": ["position", "execution.fast.linear", "wallet"]})
    assert keys(ack) == keys(sample("subscribe-success-private.json", samples_dir)) and ack["ret_msg"] == ""
    [ack] = client.send({"op": "subscribe", "req_id": "Tg", "args": ["order", "ticketInfo"]})
    expected = sample("subscribe-failure-private-unknown-or-conflict.json", samples_dir)
    assert keys(ack) == keys(expected) and ack["success"] is False
    assert ack["ret_msg"] == expected["ret_msg"].replace("as follows:[]", "as follows:[order]")
    assert net.ex.topics(client.conn) == {"position", "execution.fast.linear", "wallet", "order"}


def test_all_in_one_and_categorised_topic_conflict_in_one_request(net: Net) -> None:
    client = authed(net)
    [ack] = client.send({"op": "subscribe", "args": ["position", "position.linear", "order"]})
    assert ack["success"] is False and "conflict:[position,position.linear]" in ack["ret_msg"]
    assert net.ex.topics(client.conn) == {"order"}


def test_invalid_ops(net: Net, samples_dir: Any) -> None:
    [reply] = Client(net, "/v5/public/linear").send({"op": "dance"})
    assert (reply["success"], reply["ret_msg"], reply["req_id"], reply["op"]) == (
        False,
        "error:invalid op",
        "",
        "dance",
    )
    [reply] = Client(net, "/v5/private").send({"op": "order.create", "args": [{}]})
    expected = sample("private-order-create-on-private-stream-params-error.json", samples_dir)
    assert keys(reply) == keys(expected) and reply["ret_msg"] == "Params Error"
    assert sum("invalid op" in v for v in net.ex.violations) == 2


def test_bad_json_is_answered_and_the_socket_stays(net: Net) -> None:
    client = Client(net, "/v5/public/linear")
    [reply] = client.send("hello")
    assert reply["success"] is False and reply["ret_msg"].startswith("Failed to decode incoming data:")
    assert not client.closed and client.send({"op": "ping"})[0]["ret_msg"] == "pong"


def test_fragmented_requests_are_joined(net: Net) -> None:
    client = Client(net, "/v5/public/linear")
    data = client.ws.send(TextMessage(data='{"op":', message_finished=False))
    data += client.ws.send(TextMessage(data='"ping"}', message_finished=True))
    net.ex.receive(client.conn, data, 0.0)
    net.pump()
    assert client.take()[0]["ret_msg"] == "pong"


# -------------------------------------------------------------------------------------------- pushes


def test_private_pushes_follow_subscriptions_and_categories(net: Net) -> None:
    everything = authed(net, ("position", "execution.fast"))
    linear_only = authed(net, ("position.linear",))
    inverse_only = authed(net, ("position.inverse",))
    unauthed = Client(net, "/v5/private")
    net.ex.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    net.pump()
    assert [m["topic"] for m in everything.take()] == ["execution.fast", "position"]
    [msg] = linear_only.take()
    assert msg["topic"] == "position.linear" and msg["data"][0]["size"] == "0.5"
    assert inverse_only.take() == [] and unauthed.take() == []


def test_passthroughs_delegate_to_the_venue(net: Net) -> None:
    net.ex.open_position("BTCUSDT", side="Sell", size="2", price="50")
    assert net.ex.mark("BTCUSDT") == 50 and net.ex.positions()[("linear", "BTCUSDT", 0)].side == "Sell"
    net.ex.place_order("BTCUSDT", "Buy", "1")
    assert net.ex.positions()[("linear", "BTCUSDT", 0)].size == 1
    net.ex.close_position("BTCUSDT")
    assert net.ex.positions() == {}
    assert net.ex.mark("ETHUSDT", "42") == 42


# ----------------------------------------------------------------------------------------- liveness


def test_public_link_is_cut_without_a_close_frame_61s_after_the_last_ping(net: Net) -> None:
    client = Client(net, "/v5/public/linear")
    for t in range(20, 201, 20):
        net.advance(float(t))
        client.send({"op": "ping"}, now=float(t))
    assert not client.closed
    net.advance(260.9)
    assert not client.closed
    net.advance(261.0)
    assert client.closed and [c.code for c in client.closes()] == [1006]  # 1006: no close frame came


def test_private_idle_cut_after_10_minutes_on_the_30s_check_grid(net: Net) -> None:
    client = authed(net)
    net.advance(599.0)
    assert not client.closed
    net.advance(600.0)
    assert client.closed and [c.code for c in client.closes()] == [1006]


def test_private_pushes_keep_the_link_alive(net: Net) -> None:
    client = authed(net, ("position",))
    net.advance(500.0)
    net.ex.open_position("BTCUSDT", "Buy", "1")
    net.advance(1000.0)
    assert not client.closed
    net.advance(1110.0)
    assert client.closed


@pytest.mark.parametrize(("value", "cut_at"), [("45s", 60.0), ("1m", 60.0), ("2m", 120.0), ("600s", 600.0)])
def test_max_active_time(net: Net, value: str, cut_at: float) -> None:
    client = Client(net, f"/v5/private?max_active_time={value}")
    net.advance(cut_at - 0.01)
    assert not client.closed
    net.advance(cut_at)
    assert client.closed


@pytest.mark.parametrize("value", ["10s", "11m", "abc", "m"])
def test_max_active_time_out_of_range_is_recorded(net: Net, value: str) -> None:
    assert Client(net, f"/v5/private?max_active_time={value}").accepted
    assert any("max_active_time" in v for v in net.ex.violations)


def test_client_close_is_answered_and_eof_closes(net: Net) -> None:
    client = Client(net, "/v5/public/linear")
    net.ex.receive(client.conn, client.ws.send(CloseConnection(code=1000)), 0.0)
    net.pump()
    assert client.closed and client.closes()[0].code == 1000
    other = Client(net, "/v5/public/linear")
    net.ex.receive(other.conn, b"", 0.0)
    net.pump()
    assert other.closed


def test_disconnected_forgets_the_connection(net: Net) -> None:
    client = authed(net)
    net.ex.disconnected(client.conn, 1.0)
    assert net.ex.connections() == [] and net.ex.deadline() is None
    net.ex.receive(client.conn, b"late bytes", 2.0)  # ignored, never raises
    assert net.ex.poll() == []


# -------------------------------------------------------------------------------------------- faults


def test_drop_link_with_and_without_a_close_frame(net: Net) -> None:
    a, b, c = Client(net, "/v5/public/linear"), Client(net, "/v5/public/linear"), Client(net, "/v5/private")
    assert net.ex.drop_link("linear") == 2
    net.pump()
    assert a.closed and b.closed and not c.closed and a.closes()[0].code == 1001
    net.ex.drop_link("private", close_frame=False)
    net.pump()
    assert c.closed and [x.code for x in c.closes()] == [1006]


def test_half_open_swallows_everything_but_keeps_the_socket(net: Net) -> None:
    client = Client(net, "/v5/public/linear")
    client.send({"op": "subscribe", "args": ["tickers.BTCUSDT"]})
    net.ex.half_open("public")
    assert client.send({"op": "ping"}) == []
    net.advance(1000.0)
    assert client.take() == [] and not client.closed and net.ex.connections() == [client.conn]
    assert net.ex.subscriptions("linear") == frozenset()


def test_lose_and_delay_pongs(net: Net) -> None:
    client = Client(net, "/v5/public/linear")
    net.ex.lose_pongs("linear", 1)
    assert client.send({"op": "ping"}) == []
    assert len(client.send({"op": "ping"})) == 1
    net.ex.delay_pongs("linear", 5.0)
    assert client.send({"op": "ping"}) == []
    net.advance(4.99)
    assert client.take() == []
    net.advance(5.0)
    assert [m["ret_msg"] for m in client.take()] == ["pong"]


def test_duplicate_and_reorder_topic_messages(net: Net) -> None:
    client = Client(net, "/v5/public/linear")
    client.send({"op": "subscribe", "args": ["tickers.BTCUSDT"]})
    net.ex.duplicate("linear", 1)
    net.advance(0.1)
    assert [m["ts"] for m in client.take()] == [100, 100]
    net.ex.reorder("linear", 2)
    net.advance(0.3)
    assert [m["ts"] for m in client.take()] == [300, 200]
    assert client.send({"op": "ping"}, now=0.3)[0]["ret_msg"] == "pong"  # replies are not reordered


def test_reorder_releases_held_messages_after_a_short_hold(net: Net) -> None:
    client = Client(net, "/v5/public/linear")
    client.send({"op": "subscribe", "args": ["tickers.BTCUSDT"]})
    net.ex.reorder("linear", 5)
    net.advance(0.2)
    assert client.take() == []
    net.advance(0.36)
    assert [m["ts"] for m in client.take()] == [300, 200, 100]


def _texts(client: Client) -> list[str]:
    return [e.data for e in client.events if isinstance(e, TextMessage)]


def test_poison_puts_a_raw_value_into_the_next_n_pushes_of_a_topic(net: Net) -> None:
    client = Client(net, "/v5/public/linear")
    client.send({"op": "subscribe", "args": ["tickers.BTCUSDT", "tickers.ETHUSDT"]})
    seen = len(_texts(client))
    net.ex.poison("linear", "markPrice", "1e300", n=2, topic="tickers.BTCUSDT")
    net.ex.poison("linear", "indexPrice", '"-5"')  # any topic, added where absent
    for now in (0.1, 0.2, 0.3):
        net.advance(now)
    pushes = [t for t in _texts(client)[seen:] if '"topic":"tickers.' in t]
    btc = [t for t in pushes if "BTCUSDT" in t]
    eth = [t for t in pushes if "ETHUSDT" in t]
    assert [t.count('"markPrice":1e300') for t in btc] == [1, 1, 0]  # verbatim, a bare number
    assert not any("1e300" in t for t in eth)
    assert sum('"indexPrice":"-5"' in t for t in pushes) == 1  # the very next push only
    assert all(isinstance(json.loads(t), dict) for t in pushes)


def test_poison_rows_of_private_pushes_and_heal(net: Net) -> None:
    client = authed(net, ("position",))
    with pytest.raises(ValueError, match="n >= 1"):
        net.ex.poison("private", "size", '"-5"', n=0)
    net.ex.poison("private", "size", '"-5"', topic="position")
    net.ex.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
    net.pump()
    [msg] = client.take()
    assert msg["topic"] == "position" and [row["size"] for row in msg["data"]] == ["-5"]
    net.ex.poison("private", "size", "NaN")
    net.ex.heal()
    net.ex.close_position("BTCUSDT")
    net.pump()
    assert all(row["size"] != "NaN" for m in client.take() for row in m["data"])


def test_send_garbage_text_binary_and_raw(net: Net) -> None:
    client = Client(net, "/v5/public/linear")
    net.ex.send_garbage("linear", '{"topic":"tickers.BTCUSDT","type":"snap')
    net.ex.send_garbage("linear", b"\x00\xff")
    net.pump()
    assert client.take() == ['{"topic":"tickers.BTCUSDT","type":"snap']
    assert any(type(e).__name__ == "BytesMessage" for e in client.events)
    net.ex.send_garbage("linear", b"\x81\x7f\xff", raw=True)  # a frame header claiming an absurd length
    net.pump()
    assert not client.closed  # the server does not know; the client's parser must cope


def test_restart_service_restarts_the_venue_and_can_drop_links(net: Net) -> None:
    client = Client(net, "/v5/public/linear")
    net.ex.restart_service()
    assert net.ex.venue.restarts == [0.0] and not client.closed  # type: ignore[attr-defined]
    net.ex.restart_service(5.0, drop_links=True)
    net.pump()
    assert client.closed


def test_fault_targets_must_be_known_kinds(net: Net) -> None:
    with pytest.raises(ValueError, match="unknown link kind"):
        net.ex.drop_link("futures")


# ---------------------------------------------------------------------------------------------- REST


def signed(
    net: Net, query: str, *, key: str = KEY, stamp: int | None = None, window: str = "5000"
) -> dict[str, str]:
    stamp = net.ex.wall_ms() - net.ex.faults.skew_ms if stamp is None else stamp
    sign = SIGNER.sign(f"{stamp}{key}{window}{query}")
    return {
        "X-BAPI-API-KEY": key,
        "X-BAPI-TIMESTAMP": str(stamp),
        "X-BAPI-RECV-WINDOW": window,
        "X-BAPI-SIGN": sign,
    }


def rest(net: Net, query: str, headers: dict[str, str], path: str = "/v5/position/list") -> tuple[int, Any]:
    status, body = net.ex.rest("GET", f"{path}?{query}", headers, 0.0)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def test_rest_position_list_answers_signed_requests(net: Net) -> None:
    net.ex.open_position("BTCUSDT", "Buy", "1")
    query = "category=linear&settleCoin=USDT&limit=200"
    status, body = rest(net, query, signed(net, query))
    assert status == 200 and body["retCode"] == 0 and body["retMsg"] == "OK"
    assert body["result"]["list"][0]["symbol"] == "BTCUSDT"
    assert net.ex.venue.queries[-1] == {"category": "linear", "settleCoin": "USDT", "limit": "200"}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        (lambda n, q: signed(n, q, key="nope"), 10003),
        (lambda n, q: {**signed(n, q), "X-BAPI-SIGN": "00"}, 10004),
        (lambda n, q: signed(n, q, stamp=n.ex.wall_ms() - 6000), 10002),
        (lambda n, q: signed(n, q, stamp=n.ex.wall_ms() + 1000), 10002),
        (lambda n, q: {k: v for k, v in signed(n, q).items() if k != "X-BAPI-TIMESTAMP"}, 10001),
    ],
)
def test_rest_auth_errors(net: Net, headers: Any, code: int) -> None:
    query = "category=linear&settleCoin=USDT"
    status, body = rest(net, query, headers(net, query))
    assert status == 200 and body["retCode"] == code and body["retMsg"]


def test_rest_parameter_errors_come_from_the_real_venue_and_paths_404() -> None:
    net = Net(FakeExchange(api_key=KEY, api_secret=SECRET))  # the default venue checks the parameters
    for query in ("category=linear", "category=nope", "category=inverse&limit=900"):
        assert rest(net, query, signed(net, query))[1]["retCode"] == 10001
    assert rest(net, "category=inverse", signed(net, "category=inverse"))[1]["retCode"] == 0
    assert rest(net, "x=1", {}, path="/v5/order/history")[0] == 404  # an endpoint the fake does not serve


def test_rest_faults_and_skew(net: Net) -> None:
    query = "category=inverse"
    net.ex.rest_fail(1, status=503)
    net.ex.rest_fail(1, ret_code=10006)
    assert rest(net, query, signed(net, query))[0] == 503
    assert rest(net, query, signed(net, query))[1] == {
        "retCode": 10006, "retMsg": "Too many visits!", "result": {}, "retExtInfo": {},
        "time": net.ex.wall_ms(),
    }  # fmt: skip
    assert rest(net, query, signed(net, query))[1]["retCode"] == 0
    stamp = net.ex.wall_ms()
    net.ex.clock_skew(7_000)
    assert rest(net, query, signed(net, query, stamp=stamp))[1]["retCode"] == 10002
    net.ex.rest_delay(2.5)
    assert net.ex.faults.rest_delay == 2.5 and net.ex.rest_requests == 4
    net.ex.heal()
    assert net.ex.faults.rest_delay == 0 and net.ex.faults.skew_ms == 0


def test_clock_skew_moves_every_timestamp_the_exchange_sends() -> None:
    """Pongs, ticker snapshots and deltas, and private `creationTime` all carry the skewed clock, so a
    client's clock-offset estimate (pongs) and its latency (message `ts`) agree about the exchange's clock."""

    def stamps(skew_ms: int) -> dict[str, int]:
        net = Net(FakeExchange(seed=1, api_key=KEY, api_secret=SECRET))  # the real venue: real timestamps
        net.ex.clock_skew(skew_ms)
        public = Client(net, "/v5/public/linear")
        private = authed(net, ("position",))
        acked = public.send({"op": "subscribe", "args": ["tickers.BTCUSDT"]}, now=0.05)
        snapshot = next(m for m in acked if m.get("type") == "snapshot")
        net.advance(0.35)
        delta = [m for m in public.take() if m.get("type") == "delta"][-1]
        net.ex.open_position("BTCUSDT", side="Buy", size="0.5", price="67000")
        net.pump()
        push = next(m for m in private.take() if m.get("topic") == "position")
        pong = next(m for m in private.send({"op": "ping"}, now=0.35) if m.get("op") == "pong")
        return {
            "snapshot": snapshot["ts"], "delta": delta["ts"], "position": push["creationTime"],
            "pong": int(pong["args"][0]),
        }  # fmt: skip

    plain, ahead, behind = stamps(0), stamps(2000), stamps(-1500)
    assert {k: ahead[k] - plain[k] for k in plain} == dict.fromkeys(plain, 2000)
    assert {k: behind[k] - plain[k] for k in plain} == dict.fromkeys(plain, -1500)


# --------------------------------------------------------------------------------------- determinism


def run_script(seed: int) -> list[bytes]:
    ex = FakeExchange(seed, KEY, SECRET, venue=StubVenue())
    net = Net(ex)
    public, private = Client(net, "/v5/public/linear"), Client(net, "/v5/private")
    public.send({"op": "subscribe", "args": ["tickers.BTCUSDT"]})
    private.send({"op": "ping"})
    net.advance(2.0)
    return [json.dumps(m).encode() for c in (public, private) for m in c.messages()]


def test_same_seed_same_bytes_other_seed_other_ids() -> None:
    assert run_script(3) == run_script(3)
    assert run_script(3) != run_script(4)
