"""The link state machine: the transition table row by row, every (state, input) pair, and its policies."""

from __future__ import annotations

from collections import deque
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bybit_hybrid_core._errors import LocalProtocolError
from bybit_hybrid_core._link.policy import Backoff, DialBudget, auth_hint, handshake_hint, url_host
from bybit_hybrid_core._link.states import (
    CALLER_INPUTS,
    REMOTE_INPUTS,
    TRANSITIONS,
    Input,
    LinkState,
    LinkStateMachine,
)

# ------------------------------------------------------------------------------------------- the table


@pytest.mark.parametrize(("pair", "target"), list(TRANSITIONS.items()), ids=lambda x: str(x))
def test_each_row_of_the_table(pair: tuple[LinkState, Input], target: LinkState) -> None:
    machine = LinkStateMachine()
    machine.state, event = pair
    assert machine.accepts(event)
    assert machine.process(event) is True
    assert machine.state is target


@given(st.sampled_from(LinkState), st.sampled_from(Input))
def test_every_pair_is_legal_or_refused_without_changing_state(state: LinkState, event: Input) -> None:
    machine = LinkStateMachine()
    machine.state = state
    if (state, event) in TRANSITIONS:
        assert machine.process(event) is True
        assert machine.state is TRANSITIONS[(state, event)]
    elif event in REMOTE_INPUTS:
        # the remote's fault: reported by the caller as a ProtocolProblem; nothing changes
        assert machine.process(event) is False
        assert machine.state is state
    else:
        with pytest.raises(LocalProtocolError) as info:
            machine.process(event)
        assert machine.state is state
        assert "while" in str(info.value) or "start(" in str(info.value)


def test_inputs_are_sorted_by_culprit() -> None:
    assert not CALLER_INPUTS & REMOTE_INPUTS
    assert {Input.CONNECTED, Input.BYTES, Input.LOST} <= CALLER_INPUTS
    assert {Input.AUTH_OK, Input.SUB_ACK, Input.TOPIC, Input.PONG} <= REMOTE_INPUTS


def test_every_state_is_reachable_and_every_state_can_come_back_to_live() -> None:
    graph: dict[LinkState, set[LinkState]] = {}
    for (src, _), dst in TRANSITIONS.items():
        graph.setdefault(src, set()).add(dst)

    def reach(start: LinkState) -> set[LinkState]:
        seen, todo = {start}, deque([start])
        while todo:
            for nxt in graph.get(todo.popleft(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    assert reach(LinkState.IDLE) == set(LinkState)
    for state in LinkState:
        if state is not LinkState.IDLE:
            assert LinkState.LIVE in reach(state), state
            assert LinkState.IDLE not in reach(state) or state is LinkState.IDLE


def test_live_only_through_the_upgrade_or_the_auth_ack() -> None:
    into_live = {
        (s, i) for (s, i), d in TRANSITIONS.items() if d is LinkState.LIVE and s is not LinkState.LIVE
    }
    assert into_live == {
        (LinkState.HANDSHAKING, Input.UPGRADED),
        (LinkState.AUTHENTICATING, Input.AUTH_OK),
    }


def test_no_topic_data_or_subscribe_ack_before_live() -> None:
    for state in LinkState:
        if state is not LinkState.LIVE:
            assert (state, Input.TOPIC) not in TRANSITIONS
            assert (state, Input.SUB_ACK) not in TRANSITIONS


def test_every_connected_state_can_fail_to_backoff() -> None:
    for state in (LinkState.HANDSHAKING, LinkState.AUTHENTICATING, LinkState.LIVE):
        for event in (Input.LOST, Input.REMOTE_CLOSED, Input.BROKEN, Input.TIMEOUT):
            assert TRANSITIONS[(state, event)] is LinkState.BACKOFF


def test_misuse_messages_say_what_to_do() -> None:
    machine = LinkStateMachine()
    with pytest.raises(LocalProtocolError, match="start"):
        machine.process(Input.BYTES)
    machine.state = LinkState.DIALING
    with pytest.raises(LocalProtocolError, match="connected"):
        machine.process(Input.BYTES)
    machine.state = LinkState.LIVE
    with pytest.raises(LocalProtocolError, match="once per Dial"):
        machine.process(Input.CONNECTED)


# -------------------------------------------------------------------------------------------- policies


def test_backoff_is_full_jitter_exponential_capped_and_resettable() -> None:
    backoff = Backoff(0.5, 30.0, Random(7))
    delays = [backoff.next() for _ in range(12)]
    for n, delay in enumerate(delays):
        assert 0.0 <= delay <= min(30.0, 0.5 * 2**n)
    assert max(delays[8:]) > 2.0  # it does grow
    assert backoff.attempt == 12
    backoff.reset()
    assert backoff.attempt == 0
    assert backoff.next() <= 0.5


def test_backoff_is_deterministic_for_a_seed() -> None:
    a = [Backoff(0.5, 30.0, Random(3)).next() for _ in range(3)]
    b = [Backoff(0.5, 30.0, Random(3)).next() for _ in range(3)]
    assert a == b


@given(st.lists(st.floats(min_value=0.0, max_value=5.0), min_size=1, max_size=200), st.integers(1, 20))
def test_dial_budget_never_exceeds_its_limit_in_any_window(gaps: list[float], limit: int) -> None:
    budget = DialBudget(limit, 10.0)
    now = 0.0
    taken: list[float] = []
    for gap in gaps:
        now += gap
        wait = budget.take("stream.bybit.com", now)
        if wait is None:
            taken.append(now)
        else:
            assert wait > now
            # the promised time really frees a slot (no busy loop at the boundary)
            now = wait
            assert budget.take("stream.bybit.com", now) is None
            taken.append(now)
    for t in taken:
        assert len([u for u in taken if u <= t < u + 10.0]) <= limit
    assert budget.used("stream.bybit.com", now) <= limit
    assert budget.take("other.host", now) is None  # counted per host


def test_the_private_link_needs_credentials() -> None:
    from bybit_hybrid_core._config import Link, Timings
    from bybit_hybrid_core._link.connection import LinkConnection

    with pytest.raises(LocalProtocolError, match="credentials"):
        LinkConnection(
            Link.PRIVATE,
            "wss://x/v5/private",
            Timings(),
            None,
            DialBudget(1, 1.0),
            Random(0),
            next_req_id=lambda: "1",
            wall_ms=lambda now: 0,
        )


def test_a_topic_message_never_changes_the_links_state() -> None:
    """The link skips the transition for a topic message (its hot path): that is only right while every
    TOPIC row of the table is a self-loop."""
    rows = [(state, target) for (state, event), target in TRANSITIONS.items() if event is Input.TOPIC]
    assert rows and all(state is target for state, target in rows)


def test_a_link_returns_what_each_input_produced_in_order() -> None:
    """The link is a pure producer (wsproto's `events()` style): messages, events and actions come back
    from the call, in order, and nothing is called up into a host."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request, TextMessage

    from bybit_hybrid_core import Dial, LinkConnected, LinkUp, Send
    from bybit_hybrid_core._codec import TickerMessage
    from bybit_hybrid_core._config import Link, Timings
    from bybit_hybrid_core._link.connection import LinkConnection

    ids = iter(range(1, 100))
    conn = LinkConnection(
        Link.LINEAR,
        "ws://127.0.0.1/v5/public/linear",
        Timings(),
        None,
        DialBudget(5, 10.0),
        Random(0),
        next_req_id=lambda: str(next(ids)),
        wall_ms=lambda now: 1_700_000_000_000 + round(now * 1000),
    )
    [dial] = conn.start(0.0)
    assert isinstance(dial, Dial)
    [upgrade] = conn.connected(0.1)
    assert isinstance(upgrade, Send)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(upgrade.data)
    assert any(isinstance(e, Request) for e in server.events())
    accept = server.send(AcceptConnection())
    tick = '{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT","markPrice":"1"},'
    tick += '"cs":1,"ts":1700000000000}'
    produced = list(conn.receive(accept + server.send(TextMessage(data=tick)), 0.2))
    assert [type(p) for p in produced] == [LinkConnected, LinkUp, TickerMessage]
    assert next(iter(conn.receive(server.send(TextMessage(data=tick)), 0.3))).topic == "tickers.BTCUSDT"
    conn.subs.set_desired({"tickers.BTCUSDT"})
    [sub] = conn.reconcile(0.4)
    assert isinstance(sub, Send) and conn.reconcile(0.4) == []  # in flight: nothing more to send


def test_url_host_is_the_domain() -> None:
    assert url_host("wss://Stream.Bybit.com/v5/public/linear") == "stream.bybit.com"
    assert url_host("ws://127.0.0.1:8765/v5/private?max_active_time=60s") == "127.0.0.1"


def test_hints() -> None:
    assert "region" in handshake_hint(403)
    assert "path" in handshake_hint(404)
    assert "retries" in handshake_hint(502)
    assert "credentials" in handshake_hint(401)
    assert "too many" in handshake_hint(429)
    assert "418" in handshake_hint(418)
    params = auth_hint("Params Error")
    assert "clock" in params and "demo" in params and "auth_expires_ms" in params
    assert "demo" in auth_hint("Invalid sign") and "key" in auth_hint("Invalid sign")
