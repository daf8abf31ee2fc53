"""Subscriptions of one link: batching within Bybit's limits, acks, splitting failed batches."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from bybit_hybrid_core._config import Link
from bybit_hybrid_core._link.subs import (
    MAX_ARGS_PER_REQUEST,
    OPTION_MAX_ARGS,
    PUBLIC_MAX_ARG_CHARS,
    Batch,
    LinkSubs,
    SubsConfirmed,
    SubsOutcome,
    SubsProblem,
    SubsRejected,
    SubsRemoved,
    private_family,
)


def make(link: Link = Link.LINEAR) -> LinkSubs:
    counter = itertools.count(1)
    return LinkSubs(link, lambda: str(next(counter)))


def tickers(n: int, prefix: str = "S") -> list[str]:
    return [f"tickers.{prefix}{i:03d}USDT" for i in range(n)]


def bybit_answer(bad: set[str]) -> Callable[[Batch], tuple[bool, str]]:
    """A server that fails a whole request when it holds a bad topic, naming the first one."""

    def answer(batch: Batch) -> tuple[bool, str]:
        for topic in batch.topics:
            if topic in bad:
                return False, f"error:handler not found,topic:{topic}"
        return True, ""

    return answer


def settle(
    subs: LinkSubs, answer: Callable[[Batch], tuple[bool, str]]
) -> tuple[list[Batch], list[SubsOutcome]]:
    """Plan, answer every request in order, repeat until quiet; every request seen and every outcome."""
    sent: list[Batch] = []
    outcomes: list[SubsOutcome] = []
    for _ in range(200):
        batches, refused = subs.plan(0.0)
        outcomes += refused
        if not batches:
            return sent, outcomes
        sent += batches
        for batch in batches:
            ok, msg = answer(batch)
            outcomes += subs.on_ack(batch.req_id, ok, msg)
    raise AssertionError("subscriptions never settled")


# ---------------------------------------------------------------------------------------------- batching


def test_batches_are_sorted_and_at_most_ten_with_counter_req_ids() -> None:
    subs = make(Link.SPOT)
    subs.set_desired(tickers(25))
    batches, refused = subs.plan(1.5)
    assert refused == []
    assert [len(b.topics) for b in batches] == [10, 10, 5]
    assert [b.req_id for b in batches] == ["1", "2", "3"]
    assert [t for b in batches for t in b.topics] == sorted(tickers(25))
    assert all(b.op == "subscribe" and b.sent_at == 1.5 for b in batches)
    assert subs.oldest_pending() == 1.5
    # nothing is sent twice while it is in flight
    assert subs.plan(2.0) == ([], [])


def test_private_all_in_one_and_categorised_never_share_a_request() -> None:
    subs = make(Link.PRIVATE)
    topics = [
        "position",
        "position.linear",
        "order",
        "order.spot",
        "execution",
        "execution.fast.linear",
        "wallet",
    ]
    subs.set_desired(topics)
    batches, _ = subs.plan(0.0)
    assert sorted(t for b in batches for t in b.topics) == sorted(topics)
    for batch in batches:
        families: dict[str, set[bool]] = {}
        for topic in batch.topics:
            fam = private_family(topic)
            assert fam is not None
            families.setdefault(fam[0], set()).add(fam[1])
        assert all(len(kinds) == 1 for kinds in families.values()), batch.topics


def test_private_family_names() -> None:
    assert private_family("execution.fast.linear") == ("execution.fast", False)
    assert private_family("execution.fast") == ("execution.fast", True)
    assert private_family("execution.spot") == ("execution", False)
    assert private_family("dcp.future") == ("dcp", False)
    assert private_family("tickers.BTCUSDT") is None
    assert private_family("orderbook.1.BTCUSDT") is None


def test_public_connection_character_limit_refuses_the_overflow_once() -> None:
    subs = make(Link.LINEAR)
    long_topics = [f"orderbook.1000.{'X' * 80}{i:04d}" for i in range(300)]  # ~100 chars each
    subs.set_desired(long_topics)
    _, outcomes = settle(subs, bybit_answer(set()))
    chars = sum(len(t) for t in subs.confirmed)
    assert chars <= PUBLIC_MAX_ARG_CHARS
    assert chars + len(long_topics[0]) > PUBLIC_MAX_ARG_CHARS  # it filled what it could
    refused = [o for o in outcomes if isinstance(o, SubsRejected)]
    assert {o.topic for o in refused} == set(long_topics) - subs.confirmed
    assert all("21000" in o.reason for o in refused)
    assert subs.plan(5.0) == ([], [])  # not retried, not reported again


def test_option_connection_topic_limit() -> None:
    subs = make(Link.OPTION)
    subs.set_desired([f"t.{i}" for i in range(OPTION_MAX_ARGS + 5)])  # short: under 21,000 chars
    sent, outcomes = settle(subs, bybit_answer(set()))
    assert len(subs.confirmed) == OPTION_MAX_ARGS
    assert len([o for o in outcomes if isinstance(o, SubsRejected)]) == 5
    assert all(len(b.topics) <= MAX_ARGS_PER_REQUEST for b in sent)


# -------------------------------------------------------------------------------------------------- acks


def test_success_ack_confirms_and_unsubscribe_removes() -> None:
    subs = make()
    subs.set_desired(["tickers.BTCUSDT", "tickers.ETHUSDT"])
    (batch,), _ = subs.plan(0.0)
    assert subs.on_ack(batch.req_id, True, "") == [SubsConfirmed(("tickers.BTCUSDT", "tickers.ETHUSDT"))]
    assert subs.confirmed == {"tickers.BTCUSDT", "tickers.ETHUSDT"}
    assert subs.oldest_pending() is None
    subs.set_desired(["tickers.ETHUSDT"])
    (unsub,), _ = subs.plan(1.0)
    assert (unsub.op, unsub.topics) == ("unsubscribe", ("tickers.BTCUSDT",))
    assert subs.on_ack(unsub.req_id, True, "") == [SubsRemoved(("tickers.BTCUSDT",))]
    assert subs.confirmed == {"tickers.ETHUSDT"}


def test_failed_batch_is_split_until_the_bad_topic_is_isolated_and_reported_once() -> None:
    subs = make()
    topics = tickers(10)
    bad = topics[6]
    subs.set_desired(topics)
    sent, outcomes = settle(subs, bybit_answer({bad}))
    assert outcomes.count(SubsRejected(bad, f"error:handler not found,topic:{bad}")) == 1
    assert [o for o in outcomes if isinstance(o, SubsRejected)] == [
        SubsRejected(bad, f"error:handler not found,topic:{bad}")
    ]
    assert subs.confirmed == set(topics) - {bad}
    assert len(sent) <= 1 + 2 * 4  # halving 10 topics takes at most four rounds of two
    assert bad in subs.failed
    # Not retried while desired...
    assert subs.plan(9.0) == ([], [])
    # ...until the user asks again.
    subs.retry(bad)
    (again,), _ = subs.plan(10.0)
    assert again.topics == (bad,)


def test_failed_topic_that_stops_being_desired_is_forgotten() -> None:
    subs = make()
    subs.set_desired(["tickers.NOPE"])
    (batch,), _ = subs.plan(0.0)
    subs.on_ack(batch.req_id, False, "error:handler not found,topic:tickers.NOPE")
    subs.set_desired([])
    subs.set_desired(["tickers.NOPE"])
    (again,), _ = subs.plan(1.0)
    assert again.topics == ("tickers.NOPE",)


def test_already_subscribed_is_success() -> None:
    subs = make()
    subs.set_desired(["tickers.BTCUSDT"])
    (batch,), _ = subs.plan(0.0)
    out = subs.on_ack(batch.req_id, False, "error:already subscribed,topic:tickers.BTCUSDT")
    assert out == [SubsConfirmed(("tickers.BTCUSDT",))]


def test_already_subscribed_in_a_batch_confirms_it_and_resends_the_rest() -> None:
    subs = make()
    subs.set_desired(["tickers.A", "tickers.B", "tickers.C"])
    (batch,), _ = subs.plan(0.0)
    out = subs.on_ack(batch.req_id, False, "error:already subscribed,topic:tickers.B")
    assert out == [SubsConfirmed(("tickers.B",))]
    (rest,), _ = subs.plan(1.0)
    assert rest.topics == ("tickers.A", "tickers.C")


def test_option_ack_without_req_id_matches_the_oldest_and_uses_its_lists() -> None:
    subs = make(Link.OPTION)
    subs.set_desired([f"tickers.O{i}" for i in range(15)])
    first, second = subs.plan(0.0)[0]
    out = subs.on_ack(None, True, "", success_topics=first.topics[1:], fail_topics=first.topics[:1])
    assert out[0] == SubsConfirmed(first.topics[1:])
    assert out[1] == SubsRejected(first.topics[0], "listed in failTopics")
    assert list(subs.pending) == [second.req_id]
    assert subs.on_ack("", True, "") == [SubsConfirmed(second.topics)]


def test_ack_for_nothing_is_a_problem_not_an_error() -> None:
    subs = make()
    assert isinstance(subs.on_ack("42", True, "")[0], SubsProblem)
    assert isinstance(subs.on_ack(None, True, "")[0], SubsProblem)
    subs.set_desired(["tickers.A"])
    (batch,), _ = subs.plan(0.0)
    assert isinstance(subs.on_ack("999", True, "")[0], SubsProblem)
    assert batch.req_id in subs.pending  # untouched


def test_unsubscribe_failure_is_split_and_reported() -> None:
    subs = make()
    subs.set_desired(["tickers.A", "tickers.B"])
    (batch,), _ = subs.plan(0.0)
    subs.on_ack(batch.req_id, True, "")
    subs.set_desired([])
    _, outcomes = settle(subs, lambda b: (b.op != "unsubscribe" or "tickers.B" not in b.topics, "nope"))
    assert SubsRejected("tickers.B", "unsubscribe refused: nope") in outcomes
    assert subs.confirmed == set()


def test_reset_forgets_the_connection_and_its_failures() -> None:
    subs = make()
    subs.set_desired(["tickers.A", "tickers.BAD"])
    settle(subs, bybit_answer({"tickers.BAD"}))
    assert subs.confirmed == {"tickers.A"} and "tickers.BAD" in subs.failed
    subs.reset()
    assert subs.confirmed == set() and not subs.pending and not subs.failed
    (batch,), _ = subs.plan(3.0)  # a fresh connection tries everything desired once more
    assert batch.topics == ("tickers.A", "tickers.BAD")


# ------------------------------------------------------------------------------------------- properties


@given(
    link=st.sampled_from([Link.LINEAR, Link.SPOT, Link.OPTION, Link.PRIVATE]),
    topics=st.sets(
        st.sampled_from(
            [
                *tickers(30),
                "position",
                "position.linear",
                "order",
                "order.spot",
                "execution",
                "wallet",
                "greeks",
            ]
        ),
        max_size=30,
    ),
    bad=st.sets(st.sampled_from(tickers(30)[:12]), max_size=4),
    changes=st.lists(st.sets(st.sampled_from(tickers(30)), max_size=12), max_size=3),
)
def test_requests_stay_within_limits_and_every_bad_topic_is_reported_once(
    link: Link, topics: set[str], bad: set[str], changes: list[set[str]]
) -> None:
    subs = make(link)
    answer = bybit_answer(bad)
    sent: list[Batch] = []
    outcomes: list[SubsOutcome] = []
    for desired in [topics, *changes]:
        subs.set_desired(desired)
        s, o = settle(subs, answer)
        sent += s
        outcomes += o
        assert subs.confirmed == desired - bad
        assert not subs.pending
    for batch in sent:
        assert 1 <= len(batch.topics) <= MAX_ARGS_PER_REQUEST
        assert len(set(batch.topics)) == len(batch.topics)
        fams = [f for f in map(private_family, batch.topics) if f is not None]
        assert not any(a[0] == b[0] and a[1] != b[1] for a in fams for b in fams)
    rejected = [o.topic for o in outcomes if isinstance(o, SubsRejected)]
    # reported at most once per time it became desired, never for a good topic
    assert set(rejected) <= bad
    assert len(rejected) <= len(bad) * (1 + len(changes))
    assert not any(isinstance(o, SubsProblem) for o in outcomes)


# --------------------------------------------------------------------------- refused topics a position needs


def refuse_once(subs: LinkSubs, topic: str, now: float) -> SubsRejected:
    (batch,) = [b for b in subs.plan(now)[0] if topic in b.topics]
    (outcome,) = subs.on_ack(batch.req_id, False, f"error:handler not found,topic:{topic}", now=now)
    assert isinstance(outcome, SubsRejected)
    return outcome


def test_a_needed_topic_is_retried_with_jittered_doubling_backoff_until_accepted() -> None:
    from bybit_hybrid_core._config import Timings

    t = Timings(topic_retry_base=2.0, topic_retry_cap=16.0, refusal_report_interval=0.0)
    subs = LinkSubs(Link.LINEAR, lambda: "1", t)
    subs.set_desired(["tickers.ETHUSDT"], needed=["tickers.ETHUSDT"])
    now, waits = 0.0, []
    for attempt in range(6):
        refused = refuse_once(subs, "tickers.ETHUSDT", now)
        assert refused.retry_in is not None and refused.report
        ceiling = min(16.0, 2.0 * 2**attempt)
        assert ceiling / 2 <= refused.retry_in <= ceiling  # never a tight loop, never lock-step
        waits.append(refused.retry_in)
        assert subs.plan(now + refused.retry_in - 0.01)[0] == []  # not before its time
        now += refused.retry_in
        assert subs.due_retries(now) == ["tickers.ETHUSDT"]
    assert len(set(waits)) == len(waits)  # jittered
    (batch,) = subs.plan(now)[0]
    assert subs.on_ack(batch.req_id, True, "", now=now) == [SubsConfirmed(("tickers.ETHUSDT",))]
    assert subs.failed == {} and subs.retry_at == {}
    subs.reset()  # a later refusal starts the backoff over
    subs.set_desired(["tickers.ETHUSDT"], needed=["tickers.ETHUSDT"])
    refused = refuse_once(subs, "tickers.ETHUSDT", now)
    assert refused.retry_in is not None and refused.retry_in <= 2.0


def test_repeated_refusals_are_reported_at_most_once_per_interval_with_a_count() -> None:
    from bybit_hybrid_core._config import Timings

    t = Timings(topic_retry_base=1.0, topic_retry_cap=1.0, refusal_report_interval=60.0)
    subs = LinkSubs(Link.LINEAR, lambda: "1", t)
    subs.set_desired(["tickers.X"], needed=["tickers.X"])
    reports, now = [], 0.0
    while now < 150.0:
        refused = refuse_once(subs, "tickers.X", now)
        if refused.report:
            reports.append((now, refused.refusals))
        assert refused.retry_in is not None
        now += refused.retry_in
        subs.due_retries(now)
    assert [r[0] for r in reports][:1] == [0.0] and 2 <= len(reports) <= 3
    assert all(b[0] - a[0] >= 60.0 for a, b in itertools.pairwise(reports))
    assert reports[0][1] == 1 and all(n > 1 for _, n in reports[1:])  # each report counts what it stands for


def test_a_users_own_refused_topic_is_reported_once_and_not_retried() -> None:
    subs = make()
    subs.set_desired(["tickers.NOPE"])
    refused = refuse_once(subs, "tickers.NOPE", 0.0)
    subs.set_desired(["tickers.NOPE", "tickers.BTCUSDT"], needed=["tickers.BTCUSDT"])
    assert refused.retry_in is None and refused.report
    assert subs.next_retry() is None and subs.due_retries(1e9) == []
    assert "tickers.NOPE" not in {t for b in subs.plan(1e9)[0] for t in b.topics}
    # the same topic becomes needed (a position opened on it): it is tried again at once
    subs.set_desired(["tickers.NOPE", "tickers.BTCUSDT"], needed=["tickers.NOPE", "tickers.BTCUSDT"])
    assert "tickers.NOPE" in {t for b in subs.plan(1e9)[0] for t in b.topics}


def test_a_retried_topic_nobody_needs_any_more_is_forgotten() -> None:
    subs = make()
    subs.set_desired(["tickers.X"], needed=["tickers.X"])
    refuse_once(subs, "tickers.X", 0.0)
    assert subs.next_retry() is not None
    subs.set_desired([])
    assert subs.failed == {} and subs.next_retry() is None


def test_refresh_sends_an_unsubscribe_then_a_subscribe_of_a_confirmed_topic() -> None:
    subs = make()
    subs.set_desired(["tickers.A", "tickers.B"])
    (batch,) = subs.plan(0.0)[0]
    subs.on_ack(batch.req_id, True, "")
    assert not subs.refresh("tickers.C")  # not confirmed: nothing to refresh
    assert subs.refresh("tickers.A")
    unsub, sub = subs.plan(1.0)[0]
    assert (unsub.op, unsub.topics, sub.op, sub.topics) == (
        "unsubscribe",
        ("tickers.A",),
        "subscribe",
        ("tickers.A",),
    )
    assert subs.on_ack(unsub.req_id, True, "") == [SubsRemoved(("tickers.A",))]
    assert subs.plan(1.5)[0] == []  # the subscribe is in flight: nothing is sent twice
    assert subs.on_ack(sub.req_id, True, "") == [SubsConfirmed(("tickers.A",))]
    assert subs.confirmed == {"tickers.A", "tickers.B"}
