"""HybridCore driven by hand against one fake Bybit per link: sessions, failures, redials, routing, misuse."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from bybit_hybrid_core._config import Config, Credentials, Endpoints, Link, Timings
from bybit_hybrid_core._core import HybridCore
from bybit_hybrid_core._errors import LocalProtocolError
from bybit_hybrid_core._events import (
    Authenticated,
    AuthFailed,
    Dial,
    FetchPositions,
    HandshakeRefused,
    Hangup,
    LinkConnected,
    LinkDown,
    LinkUp,
    PositionsSynced,
    ProtocolProblem,
    Subscribed,
    SubscriptionFailed,
    TickerUpdate,
    Unsubscribed,
)
from helpers import WALL_MS, Session, sample, sample_text

KEY, SECRET = "test-key", "test-secret"


def private_config(**kw: object) -> Config:
    return Config(credentials=Credentials(KEY, SECRET), **kw)  # type: ignore[arg-type]


def equal_jitter_under(cap: float, delay: float) -> bool:
    """Whether `delay` is a draw of the core's equal-jitter backoff under `cap`: uniform(cap / 2, cap)."""
    return cap / 2 <= delay <= cap


def live(config: Config) -> Session:
    """A session with every dialed link connected, upgraded and (private) authenticated."""
    s = Session(config)
    s.start()
    for link in list(s.dialing):
        s.up(link)
    return s


# ------------------------------------------------------------------------------------------------ URLs


@pytest.mark.parametrize(
    ("config", "urls"),
    [
        (Config(), {Link.LINEAR: "wss://stream.bybit.com/v5/public/linear"}),
        (
            private_config(environment="testnet", categories=("spot", "option")),
            {
                Link.SPOT: "wss://stream-testnet.bybit.com/v5/public/spot",
                Link.OPTION: "wss://stream-testnet.bybit.com/v5/public/option",
                Link.PRIVATE: "wss://stream-testnet.bybit.com/v5/private",
            },
        ),
        (
            # demo: private only on stream-demo; public data is mainnet's (BYBIT_V5.md section 1)
            private_config(environment="demo"),
            {
                Link.LINEAR: "wss://stream.bybit.com/v5/public/linear",
                Link.PRIVATE: "wss://stream-demo.bybit.com/v5/private",
            },
        ),
        (
            private_config(
                endpoints=Endpoints.custom("ws://127.0.0.1:8765"), timings=Timings(max_active_time=60)
            ),
            {
                Link.LINEAR: "ws://127.0.0.1:8765/v5/public/linear",
                Link.PRIVATE: "ws://127.0.0.1:8765/v5/private?max_active_time=60s",
            },
        ),
    ],
)
def test_start_dials_the_right_urls(config: Config, urls: dict[Link, str]) -> None:
    s = Session(config)
    out = s.start()
    assert [(a.link, a.url) for a in out.actions if isinstance(a, Dial)] == list(urls.items())
    assert out.events == ()
    assert out.deadline is not None  # the connect deadline
    for link, url in urls.items():
        s.connect(link)
        request = s.servers[link].request
        assert request is not None
        host_and_target = url.split("://", 1)[1]
        assert request.host + request.target == host_and_target


# --------------------------------------------------------------------------------------- a full session


def test_full_public_and_private_session() -> None:
    s = Session(private_config())
    s.start()
    s.up(Link.LINEAR)
    assert [type(e) for e in s.events] == [LinkConnected, LinkUp]
    s.now = 1.25
    s.connect(Link.PRIVATE)
    s.auto = False
    s.accept(Link.PRIVATE)
    (auth,) = s.ops(Link.PRIVATE, "auth")
    api_key, expires, signature = auth["args"]
    assert api_key == KEY
    assert expires == WALL_MS + 1250 + 10_000  # wall now + auth_expires_ms
    expected = hmac.new(SECRET.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()
    assert signature == expected
    assert s.ops(Link.PRIVATE, "subscribe") == []  # nothing private before the auth ack
    assert s.core.status()[Link.PRIVATE].state == "AUTHENTICATING"
    s.auto = True
    s.servers[Link.PRIVATE].authed = True
    s.push(Link.PRIVATE, {**sample("auth-success.json"), "req_id": auth["req_id"]})
    kinds = [type(e) for e in s.events if e.link is Link.PRIVATE]
    assert kinds[:4] == [LinkConnected, Authenticated, LinkUp, Subscribed]
    assert sorted(s.subscribed_topics(Link.PRIVATE)) == ["execution", "order", "position", "wallet"]
    # public data
    s.core.subscribe("tickers.BTCUSDT")
    s.pump()
    assert s.subscribed_topics(Link.LINEAR) == ["tickers.BTCUSDT"]
    assert Subscribed(link=Link.LINEAR, at=1.25, topics=("tickers.BTCUSDT",)) in s.events
    s.push(Link.LINEAR, sample_text("public-tickers-linear-snapshot-real.json"))
    ticker = sample("public-tickers-linear-snapshot-real.json")["data"]
    assert s.of(TickerUpdate)
    got = s.core.ticker(ticker["symbol"])
    assert got is not None and str(got.mark_price) == ticker["markPrice"]
    status = s.core.status()
    assert status[Link.PRIVATE].authenticated and status[Link.PRIVATE].connected
    assert status[Link.LINEAR].subscriptions == ("tickers.BTCUSDT",)
    assert not s.of(ProtocolProblem)


def test_ping_every_20_seconds_on_every_link_and_pong_rtt() -> None:
    s = live(private_config())
    s.advance(19.9)
    assert s.ops(Link.LINEAR, "ping") == [] and s.ops(Link.PRIVATE, "ping") == []
    s.advance(0.1)
    assert len(s.ops(Link.LINEAR, "ping")) == 1 and len(s.ops(Link.PRIVATE, "ping")) == 1
    s.advance(60)
    assert len(s.ops(Link.LINEAR, "ping")) == 4 and len(s.ops(Link.PRIVATE, "ping")) == 4
    req_ids = [m["req_id"] for m in s.ops(Link.LINEAR, "ping") + s.ops(Link.PRIVATE, "ping")]
    assert len(set(req_ids)) == len(req_ids)  # counters, never reused
    assert s.core.status()[Link.LINEAR].last_pong_rtt == 0.0
    assert not s.of(LinkDown)


def test_missing_pong_hangs_up_and_redials_with_backoff_then_reauths_and_resubscribes() -> None:
    s = live(private_config())
    s.core.subscribe("orderbook.50.BTCUSDT")
    s.core.subscribe("order.linear")
    s.pump()
    s.answer_pings = False
    s.advance(20)  # ping sent
    assert not s.hangups
    s.advance(9.99)
    assert not s.hangups
    s.advance(0.01)  # 10 s without a pong
    assert {h.link for _, h in s.hangups} == {Link.LINEAR, Link.PRIVATE}
    downs = s.of(LinkDown)
    assert {d.link for d in downs} == {Link.LINEAR, Link.PRIVATE}
    assert all("pong" in d.reason and d.retry_in is not None and 0 <= d.retry_in <= 0.5 for d in downs)
    assert s.core.status()[Link.PRIVATE].state == "BACKOFF"
    s.answer_pings = True
    auths_before = len(s.ops(Link.PRIVATE, "auth"))
    s.advance(0.5)
    assert set(s.dialing) == {Link.LINEAR, Link.PRIVATE}  # redialed within the first backoff
    s.up(Link.PRIVATE)
    s.up(Link.LINEAR)
    new_socket = [m["op"] for m in s.servers[Link.PRIVATE].messages]
    assert new_socket[0] == "auth" and "subscribe" in new_socket  # re-auth first, then resubscribe
    assert len(s.ops(Link.PRIVATE, "auth")) == auths_before + 1
    status = s.core.status()
    assert set(status[Link.PRIVATE].subscriptions) == {
        "execution",
        "order",
        "order.linear",
        "position",
        "wallet",
    }
    assert status[Link.LINEAR].subscriptions == ("orderbook.50.BTCUSDT",)
    assert status[Link.LINEAR].reconnects == 1


def test_pong_deadline_runs_from_the_oldest_unanswered_ping() -> None:
    s = live(Config(timings=Timings(ping_interval=5.0, pong_timeout=12.0)))
    s.answer_pings = False
    s.advance(10.0)  # pings at 5 and 10, neither answered
    assert len(s.ops(Link.LINEAR, "ping")) == 2 and not s.hangups
    s.advance(6.99)
    assert not s.hangups
    s.advance(0.01)  # 12 s after the first ping, not after the second
    assert s.hangups and "pong" in s.of(LinkDown)[-1].reason


def test_backoff_grows_while_dials_keep_failing_and_resets_after_a_stable_link() -> None:
    s = Session(Config(seed=5))
    s.start()
    ceilings = []
    for attempt in range(8):
        s.drop(Link.LINEAR, "connection refused")
        down = s.of(LinkDown)[-1]
        assert down.retry_in is not None and down.retry_in <= min(30.0, 0.5 * 2**attempt)
        ceilings.append(down.retry_in)
        s.advance(down.retry_in)
        assert Link.LINEAR in s.dialing
    assert max(ceilings) > 1.0
    s.up(Link.LINEAR)
    s.advance(31)  # stable for longer than the cap
    s.drop(Link.LINEAR)
    retry = s.of(LinkDown)[-1].retry_in
    assert retry is not None and retry <= 0.5


def test_refused_auth_backs_off_to_minutes_with_a_hint() -> None:
    s = Session(private_config(categories=()))
    s.start()
    s.auth_ok = False
    s.up(Link.PRIVATE)
    (failed,) = s.of(AuthFailed)
    assert failed.reason == "Params Error"
    assert "clock" in failed.hint and "demo" in failed.hint
    # the core's own backoff delays (values it computes on the simulated clock, not wall-clock limits)
    step = Timings().auth_backoff_base
    assert equal_jitter_under(step, failed.retry_in)  # never a tight loop
    assert s.hangups and s.of(LinkDown)[-1].retry_in == failed.retry_in
    assert s.ops(Link.PRIVATE, "subscribe") == []
    s.advance(failed.retry_in - 0.5)
    assert Link.PRIVATE not in s.dialing  # no tight loop
    s.advance(0.5)
    assert Link.PRIVATE in s.dialing
    s.up(Link.PRIVATE)
    second = s.of(AuthFailed)[-1].retry_in
    assert equal_jitter_under(2 * step, second)  # the step doubles
    s.auth_ok = True
    s.advance(second)
    s.up(Link.PRIVATE)
    assert s.of(Authenticated)
    assert s.core.status()[Link.PRIVATE].authenticated


@pytest.mark.parametrize("status", [403, 404, 502])
def test_refused_upgrade_is_reported_with_status(status: int) -> None:
    s = Session(Config())
    s.start()
    s.connect(Link.LINEAR)
    s.deliver(Link.LINEAR, s.servers[Link.LINEAR].reject(status, b"blocked"))
    (refused,) = s.of(HandshakeRefused)
    assert refused.status == status and refused.hint
    if status == 403:
        assert "region" in refused.hint
    assert s.of(LinkDown) and s.hangups
    assert not s.of(LinkUp)


def test_handshake_auth_and_subscribe_deadlines() -> None:
    s = Session(private_config())
    s.start()
    s.connect(Link.LINEAR)
    s.advance(10)  # no 101 on linear (and the private dial never connected)
    reasons = {d.link: d.reason for d in s.of(LinkDown)}
    assert "101" in reasons[Link.LINEAR] and "connect" in reasons[Link.PRIVATE]
    s.advance(1)
    s.auto = False
    s.connect(Link.PRIVATE)
    s.accept(Link.PRIVATE)  # auth sent, never answered
    s.advance(10)
    assert "auth ack" in s.of(LinkDown)[-1].reason
    s.auto = True
    s.advance(5)
    s.connect(Link.LINEAR)
    s.accept(Link.LINEAR)
    s.answer_subscribes = False
    s.core.subscribe("tickers.BTCUSDT")
    s.pump()
    s.advance(10)
    assert "subscribe ack" in s.of(LinkDown)[-1].reason


def test_dial_that_never_connects_times_out_and_a_late_connect_is_hung_up() -> None:
    s = Session(Config())
    s.start()
    s.advance(10)
    assert s.hangups and "connect" in s.of(LinkDown)[-1].reason
    # the adapter finishes that dial late: the core hangs it up instead of using it
    s.core.connected(Link.LINEAR, s.now)
    out = s.pump()
    assert [type(a) for a in out.actions] == [Hangup]
    assert s.core.status()[Link.LINEAR].state == "BACKOFF"


# -------------------------------------------------------------------------------------------- topics


def test_subscribe_failure_is_split_until_isolated_and_reported_once() -> None:
    s = live(Config())
    topics = [f"orderbook.50.S{i}USDT" for i in range(10)]
    s.bad_topics = {topics[3]}
    for topic in topics:
        s.core.subscribe(topic)
    s.pump()
    failed = s.of(SubscriptionFailed)
    assert [(f.topic, f.reason) for f in failed] == [
        (topics[3], f"error:handler not found,topic:{topics[3]}")
    ]
    assert set(s.core.status()[Link.LINEAR].subscriptions) == set(topics) - {topics[3]}
    assert s.core.status()[Link.LINEAR].failed == ((topics[3], failed[0].reason),)
    sent = len(s.ops(Link.LINEAR, "subscribe"))
    s.advance(100)
    assert len(s.ops(Link.LINEAR, "subscribe")) == sent  # not retried in a loop
    s.core.subscribe(topics[3])  # the user asks again
    s.pump()
    assert s.subscribed_topics(Link.LINEAR)[-1] == topics[3]
    assert len(s.of(SubscriptionFailed)) == 2
    # a fresh connection tries every desired topic once more (the refusal may have been transient)
    s.bad_topics = set()
    s.drop(Link.LINEAR)
    s.advance(1)
    s.up(Link.LINEAR)
    assert set(s.core.status()[Link.LINEAR].subscriptions) == set(topics)
    assert s.core.status()[Link.LINEAR].failed == ()


def test_spot_batches_stay_within_ten_args() -> None:
    s = live(Config(categories=("spot",)))
    topics = [f"publicTrade.C{i:02d}USDT" for i in range(25)]
    for topic in topics:
        s.core.subscribe(topic)
    s.pump()
    requests = s.ops(Link.SPOT, "subscribe")
    assert requests and all(len(r["args"]) <= 10 for r in requests)
    assert set(s.core.status()[Link.SPOT].subscriptions) == set(topics)


def test_already_subscribed_counts_as_success() -> None:
    s = live(Config())
    s.auto = False
    s.core.subscribe("orderbook.1.ETHUSDT")
    s.pump()
    (req,) = s.ops(Link.LINEAR, "subscribe")
    s.push(
        Link.LINEAR, {**sample("subscribe-failure-already-subscribed-linear.json"), "req_id": req["req_id"]}
    )
    assert s.core.status()[Link.LINEAR].subscriptions == ("orderbook.1.ETHUSDT",)
    assert not s.of(SubscriptionFailed)


def test_option_command_resp_without_req_id() -> None:
    s = live(Config(categories=("option",)))
    s.bad_topics = {"orderbook.1.BTC-X"}
    s.core.subscribe("orderbook.25.BTC-X")
    s.core.subscribe("orderbook.1.BTC-X")
    s.pump()
    assert s.core.status()[Link.OPTION].subscriptions == ("orderbook.25.BTC-X",)
    assert [f.topic for f in s.of(SubscriptionFailed)] == ["orderbook.1.BTC-X"]


def test_unsubscribe_and_private_conflicts() -> None:
    s = live(private_config(private_topics=("position",)))
    s.core.subscribe("position.linear")
    s.core.subscribe("tickers.BTCUSDT")
    s.pump()
    for request in s.ops(Link.PRIVATE, "subscribe"):
        assert not {"position", "position.linear"} <= set(request["args"])
    s.core.unsubscribe("tickers.BTCUSDT")
    s.pump()
    assert s.ops(Link.LINEAR, "unsubscribe")[0]["args"] == ["tickers.BTCUSDT"]
    assert s.of(Unsubscribed)[-1].topics == ("tickers.BTCUSDT",)
    assert s.core.status()[Link.LINEAR].subscriptions == ()


def test_topic_routing() -> None:
    s = live(private_config(categories=("linear", "spot")))
    with pytest.raises(LocalProtocolError, match="category="):
        s.core.subscribe("tickers.BTCUSDT")
    with pytest.raises(LocalProtocolError, match="private"):
        s.core.subscribe("wallet", category="linear")
    with pytest.raises(LocalProtocolError, match="unknown category"):
        s.core.subscribe("tickers.BTCUSDT", category="futures")
    with pytest.raises(LocalProtocolError, match="not a topic"):
        s.core.subscribe(" tickers.BTCUSDT")
    s.core.subscribe("tickers.BTCUSDT", category="spot")
    s.core.subscribe("execution.fast.linear")
    s.core.subscribe("dcp.future")
    s.pump()
    assert s.subscribed_topics(Link.SPOT) == ["tickers.BTCUSDT"]
    assert {"execution.fast.linear", "dcp.future"} <= set(s.subscribed_topics(Link.PRIVATE))
    # a category not configured dials on demand
    s.core.subscribe("tickers.BTCUSD", category="inverse")
    s.pump()
    assert s.dialing == {Link.INVERSE: "wss://stream.bybit.com/v5/public/inverse"}
    s.up(Link.INVERSE)
    assert s.subscribed_topics(Link.INVERSE) == ["tickers.BTCUSD"]


def test_private_topics_need_credentials() -> None:
    with pytest.raises(LocalProtocolError, match="credentials"):
        HybridCore(Config(topics=("position",)))
    with pytest.raises(LocalProtocolError, match="category="):
        HybridCore(Config(categories=("linear", "spot"), topics=("tickers.BTCUSDT",)))
    s = live(Config())
    with pytest.raises(LocalProtocolError, match="credentials"):
        s.core.subscribe("order")


def test_config_topics_are_subscribed_at_start() -> None:
    s = live(Config(categories=("spot",), topics=("tickers.BTCUSDT", "orderbook.1.BTCUSDT")))
    assert sorted(s.subscribed_topics(Link.SPOT)) == ["orderbook.1.BTCUSDT", "tickers.BTCUSDT"]


def test_track_subscribes_the_ticker_through_the_data_plane() -> None:
    s = live(Config(categories=("linear", "inverse")))
    s.core.track("BTCUSDT", category="linear")
    s.pump()
    assert "tickers.BTCUSDT" in s.subscribed_topics(Link.LINEAR)
    with pytest.raises(LocalProtocolError, match="category="):
        s.core.track("ETHUSDT")


# ---------------------------------------------------------------------------------- remote trouble


def test_garbage_and_unknown_frames_are_problems_and_keep_state() -> None:
    s = live(private_config())
    s.core.subscribe("tickers.BTCUSDT")
    s.pump()
    before = s.core.status()
    s.push(Link.LINEAR, "not json {")
    s.push(Link.LINEAR, {"hello": "world"})
    s.push(Link.LINEAR, {"topic": "tickers.BTCUSDT", "type": "snapshot", "ts": "x", "data": 5})
    s.push(Link.PRIVATE, sample("auth-success.json"))  # auth ack while live: the remote's mistake
    s.push(Link.LINEAR, {"success": False, "ret_msg": "error:invalid op", "op": "bogus"})
    problems = s.of(ProtocolProblem)
    assert len(problems) == 5
    assert problems[0].sample == "not json {"
    assert "auth" in problems[3].detail and "LIVE" in problems[3].detail
    after = s.core.status()
    assert after[Link.LINEAR].state == after[Link.PRIVATE].state == "LIVE"
    assert after[Link.LINEAR].subscriptions == before[Link.LINEAR].subscriptions
    assert not s.hangups


def test_problem_samples_never_repeat_the_key_or_a_signature() -> None:
    s = live(private_config())
    echo = {
        "success": False,
        "ret_msg": "error:request expired",
        "op": "weird",
        "request": {"args": [KEY, "a" * 64]},
    }
    s.push(Link.PRIVATE, echo)
    (problem,) = s.of(ProtocolProblem)
    assert KEY not in problem.sample and "a" * 64 not in problem.sample
    for item in [*s.events, *s.actions]:
        assert SECRET not in repr(item)


def test_remote_close_eof_and_broken_frames_redial() -> None:
    s = live(Config())
    s.deliver(Link.LINEAR, s.servers[Link.LINEAR].close(1001, "maintenance"))
    assert "1001" in s.of(LinkDown)[-1].reason and s.hangups
    s.advance(1)
    s.up(Link.LINEAR)
    s.deliver(Link.LINEAR, b"")
    assert "1006" in s.of(LinkDown)[-1].reason
    s.advance(2)
    s.up(Link.LINEAR)
    s.deliver(Link.LINEAR, b"\x83\x01x")  # reserved opcode
    assert s.of(ProtocolProblem) and s.of(LinkDown)[-1].reason.startswith("bad frame")
    assert s.core.status()[Link.LINEAR].downs == 3


def test_stale_bytes_after_a_hangup_are_ignored() -> None:
    s = live(Config())
    server = s.servers[Link.LINEAR]
    s.drop(Link.LINEAR)
    s.core.receive(Link.LINEAR, server.send({"op": "pong"}), s.now)  # queued before the adapter closed it
    s.core.lost(Link.LINEAR, s.now, "closed")
    s.pump()
    assert s.core.status()[Link.LINEAR].state == "BACKOFF"
    assert not s.of(ProtocolProblem)


def test_a_data_plane_failure_on_remote_data_is_a_problem_not_an_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = live(Config(topics=("tickers.BTCUSDT",)))

    def boom(*args: object) -> None:
        raise ArithmeticError("decimal trouble")

    # the per-message dispatch's handler of tickers (a raising data plane, whatever the path into it)
    for handlers in (s.core._public_handlers, s.core._private_handlers):
        for kind in list(handlers):
            monkeypatch.setitem(handlers, kind, boom)
    monkeypatch.setattr(s.core._data, "on_message", boom)
    s.push(Link.LINEAR, sample_text("public-tickers-linear-snapshot-real.json"))
    (problem,) = s.of(ProtocolProblem)
    assert "ArithmeticError" in problem.detail and "tickers.BTCUSDT" in problem.detail
    assert s.core.status()[Link.LINEAR].state == "LIVE"


def test_state_queries_and_snapshot_answers_reach_the_data_plane() -> None:
    s = live(private_config())
    fetches = [a for a in s.actions if isinstance(a, FetchPositions)]
    assert fetches  # the private link came up: the data plane asked for a REST snapshot
    request = fetches[0].request
    body = (
        b'{"retCode":0,"retMsg":"OK","result":{"list":[],"nextPageCursor":"","category":"linear"},"time":1}'
    )
    for fetch in fetches:
        s.core.positions_snapshot(fetch.request, 200, body, s.now)
    s.pump()
    assert s.core.positions() == {}
    assert request.category in {e.category for e in s.of(PositionsSynced)}
    s.core.subscribe("orderbook.50.BTCUSDT")
    s.pump()
    s.push(Link.LINEAR, sample_text("public-orderbook-linear-l50-snapshot-real.json"))
    book = s.core.orderbook("linear", "BTCUSDT", 50)
    assert book is not None and book[0] and book[1]
    s.core.track("ETHUSDT")
    s.core.untrack("ETHUSDT")
    s.pump()
    assert "tickers.ETHUSDT" in s.subscribed_topics(Link.LINEAR)


def test_an_untrack_after_a_quiet_spell_keeps_the_ticker_for_the_whole_grace_from_then() -> None:
    # Nothing was due for a long while (the core skipped the data plane's timer pass): the grace of an
    # untrack still starts when it is called, not at the last message or timer.
    quiet = Timings(ticker_release_grace=30.0, topic_quiet_after=1000.0, silent_link_after=1000.0)
    s = live(Config(topics=("publicTrade.BTCUSDT",), timings=quiet))  # no pushes: not a silent link here
    s.core.track("ETHUSDT")
    s.pump()
    assert "tickers.ETHUSDT" in s.core.status()[Link.LINEAR].subscriptions
    s.advance(101.5)  # between two of the data plane's periodic timers (REST marks, every 2 s)
    s.core.untrack("ETHUSDT")
    s.pump()
    s.advance(29.0)
    assert "tickers.ETHUSDT" in s.core.status()[Link.LINEAR].subscriptions  # in the grace from untrack
    s.advance(2.0)
    assert "tickers.ETHUSDT" not in s.core.status()[Link.LINEAR].subscriptions
    (gone,) = s.of(Unsubscribed)
    assert gone.at == 131.5 and gone.topics == ("tickers.ETHUSDT",)


# ------------------------------------------------------------------------------------------- misuse


def test_caller_misuse_raises_and_changes_nothing() -> None:
    core = HybridCore(Config())
    with pytest.raises(LocalProtocolError, match="start"):
        core.receive(Link.LINEAR, b"x", 0.0)
    with pytest.raises(LocalProtocolError, match="start"):
        core.subscribe("tickers.BTCUSDT")
    with pytest.raises(LocalProtocolError, match="start"):
        core.tick(0.0)
    core.start(0.0, WALL_MS)
    with pytest.raises(LocalProtocolError, match="already"):
        core.start(1.0, WALL_MS)
    with pytest.raises(LocalProtocolError, match="connected"):
        core.receive(Link.LINEAR, b"HTTP/1.1 101", 0.0)
    with pytest.raises(LocalProtocolError, match="never asked"):
        core.connected(Link.SPOT, 0.0)
    core.connected(Link.LINEAR, 0.0)
    with pytest.raises(LocalProtocolError, match="once per Dial"):
        core.connected(Link.LINEAR, 0.0)
    assert core.status()[Link.LINEAR].state == "HANDSHAKING"


def test_a_late_input_does_not_move_the_clock_back() -> None:
    s = live(Config())
    s.now = 30.0
    s.core.tick(30.0)
    s.core.receive(Link.LINEAR, s.servers[Link.LINEAR].send(sample("pong-public-linear-real.json")), 25.0)
    out = s.core.poll()
    assert all(e.at >= 30.0 for e in out.events)


# ---------------------------------------------------------------------------------- budget and storms


def test_dial_budget_is_never_exceeded_over_a_storm_of_drops() -> None:
    timings = Timings(dial_budget=20, dial_window=60.0, backoff_cap=2.0)
    s = Session(private_config(categories=("linear", "spot"), timings=timings), auto_connect=True)
    s.start()
    for _ in range(1000):
        for link in list(s.open):
            s.drop(link)
        s.advance(0.3)
    dial_times = [t for t, _ in s.dials]  # every link is on stream.bybit.com: one budget
    assert len(dial_times) >= 80  # it kept redialing...
    in_window = [len([u for u in dial_times[: i + 1] if u + 60.0 > t]) for i, t in enumerate(dial_times)]
    assert max(in_window) == 20  # ...up to the budget, never past it
    assert s.core.poll().deadline is not None


# ------------------------------------------------------------------------------- data on the wrong link


def test_private_data_on_a_public_link_is_reported_not_applied() -> None:
    s = live(private_config())
    position = sample("private-position-linear-real-2025.json")
    out = s.push(Link.LINEAR, position)
    problems = [e for e in out.events if isinstance(e, ProtocolProblem)]
    assert problems and "not a public topic" in problems[0].detail
    assert s.core.positions() == {}  # a forged position opens nothing
    assert not [t for t in s.subscribed_topics(Link.LINEAR) if t.startswith("tickers.")]


def test_public_data_on_the_private_link_is_reported_not_applied() -> None:
    s = live(private_config())
    out = s.push(Link.PRIVATE, sample("public-tickers-linear-snapshot-real.json"))
    assert any(isinstance(e, ProtocolProblem) and "not a private topic" in e.detail for e in out.events)
    assert not any(isinstance(e, TickerUpdate) for e in out.events)
