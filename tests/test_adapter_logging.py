"""Lifecycle log lines (`bybit_hybrid.lifecycle`): one per change, at the right level, the same from every
adapter (one shared table in `bybit_hybrid._log`), nothing per market-data message, and no secret."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from bybit_hybrid._log import LIFECYCLE_LOGGER, lifecycle_line
from bybit_hybrid.server import ServedExchange
from bybit_hybrid.threaded import HybridStream as ThreadedStream

from adapter_helpers import no_leaks
from adapter_scenarios import Collector, PortalDriver, count, live, options
from bybit_hybrid_core import (
    AuthFailed,
    Credentials,
    HandshakeRefused,
    Health,
    HealthChanged,
    HealthReason,
    Link,
    LinkDown,
    LinkUp,
    ProtocolProblem,
    SnapshotFailed,
    Subscribed,
    SubscriptionFailed,
    TickerUpdate,
    TopicReset,
)

KEY, SECRET = "known-key-4242", "known-secret-never-logged"
LIFECYCLE_EVENTS = {
    "LinkUp", "LinkDown", "HandshakeRefused", "AuthFailed", "SubscriptionFailed", "TopicReset",
    "SnapshotFailed", "HealthChanged",
}  # fmt: skip


class ThreadedDriver(Collector):
    def __init__(self, **opts: Any) -> None:
        super().__init__()
        self.stream = ThreadedStream(on_event=lambda e: self.add([e]), **opts).start()

    def close(self) -> None:
        self.stream.stop()


def make(flavour: str, **opts: Any) -> Any:
    if flavour == "threaded":
        return ThreadedDriver(**opts)
    from bybit_hybrid import HybridStream as AnyioStream
    from bybit_hybrid.asyncio import HybridStream as AsyncioStream

    cls = AnyioStream if flavour == "anyio" else AsyncioStream
    return PortalDriver(cls, "asyncio", **opts)


def lifecycle(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LIFECYCLE_LOGGER]


@pytest.mark.parametrize("flavour", ["anyio", "asyncio", "threaded"])
def test_a_drop_and_a_refused_subscription_are_logged_once_each_without_secrets(
    flavour: str, caplog: pytest.LogCaptureFixture
) -> None:
    topics = ("tickers.BTCUSDT", "orderbook.50.ETHUSDT")  # market data flows: none of it may be logged
    with ServedExchange(tls=True, api_key=KEY, api_secret=SECRET) as served, no_leaks():
        served.call(lambda ex: ex.fail_subscribe("orderbook.50.ETHUSDT"))
        with caplog.at_level(logging.DEBUG, logger="bybit_hybrid"):
            driver = make(flavour, **options(served, topics=topics))
            try:
                live(driver)
                driver.wait_for(
                    lambda ev: count(ev, SubscriptionFailed) >= 1 and count(ev, TickerUpdate) >= 3
                )
                seen = len(driver.events())
                served.drop_connections()
                driver.wait_for(lambda ev: count(ev[seen:], LinkUp) >= 2)
            finally:
                driver.close()
    records = lifecycle(caplog)
    lines = [(r.levelno, r.getMessage()) for r in records]
    refused = [line for line in lines if "subscription refused: orderbook.50.ETHUSDT" in line[1]]
    assert refused and all(level == logging.WARNING for level, _ in refused), lines
    downs = [(level, text) for level, text in lines if " down: " in text]
    assert {text.split()[0] for _, text in downs} == {"linear", "private"}, lines
    assert all(level == logging.WARNING and "retry in" in text for level, text in downs)
    ups = [(level, text) for level, text in lines if text.endswith(" up")]
    assert len(ups) == 4 and all(level == logging.INFO for level, _ in ups)  # two links, twice each
    assert {r.event for r in records} <= LIFECYCLE_EVENTS  # type: ignore[attr-defined]
    assert {r.link for r in records} <= {"linear", "private"}  # type: ignore[attr-defined]
    assert SECRET not in caplog.text and KEY not in caplog.text


def test_refused_auth_shows_the_key_masked_only(caplog: pytest.LogCaptureFixture) -> None:
    with (
        ServedExchange(tls=True, api_key=KEY, api_secret=SECRET) as served,
        no_leaks(),
        caplog.at_level(logging.INFO, logger="bybit_hybrid"),
    ):
        driver = ThreadedDriver(**options(served, api_secret="not-" + SECRET))
        try:
            driver.wait_for(lambda ev: count(ev, AuthFailed) >= 1)
        finally:
            driver.close()
    refused = [r for r in lifecycle(caplog) if "auth refused" in r.getMessage()]
    assert refused and refused[0].levelno == logging.WARNING
    assert (
        Credentials(KEY, SECRET).masked_key in refused[0].getMessage() and "hint:" in refused[0].getMessage()
    )
    assert SECRET not in caplog.text and KEY not in caplog.text


def _health(verdict: Any, *levels: Any) -> HealthChanged:
    reasons = tuple(
        HealthReason(rule="link_down_warning", level=lv, detail="linear not LIVE", since=1.0) for lv in levels
    )
    return HealthChanged(
        link=Link.PRIVATE, at=2.0, health=Health(verdict=verdict, reasons=reasons, since=2.0)
    )


LIN, INFO, WARN = Link.LINEAR, logging.INFO, logging.WARNING
CASES = [
    (LinkUp(link=LIN, at=1.0), INFO, "linear up"),
    (LinkDown(link=LIN, at=1.0, reason="pong timeout", retry_in=0.5), WARN, "retry in 0.5 s"),
    (LinkDown(link=LIN, at=1.0, reason="closed", retry_in=None), WARN, "no retry planned"),
    (HandshakeRefused(link=LIN, at=1.0, status=403, reason="Forbidden", hint="geo"), WARN, "HTTP 403"),
    (SubscriptionFailed(link=LIN, at=1.0, topic="t.X", reason="no", retry_in=2.0), WARN, "retry in 2.0 s"),
    (SubscriptionFailed(link=LIN, at=1.0, topic="t.X", reason="no"), WARN, "refused: t.X: no"),
    (TopicReset(link=LIN, at=1.0, topic="t.X", reason="quiet", remedy="resubscribe"), INFO, "resubscribe"),
    (
        SnapshotFailed(link=Link.PRIVATE, at=1.0, category="linear", reason="500", retry_in=1.0),
        WARN,
        "snapshot",
    ),
    (_health("ok"), INFO, "health ok"),
    (_health("warning", "warning"), WARN, "health warning: warning link_down_warning: linear not LIVE"),
    (_health("critical", "critical"), WARN, "health critical"),
]


@pytest.mark.parametrize(("event", "level", "words"), CASES)
def test_each_lifecycle_event_has_one_line_at_its_level(event: Any, level: int, words: str) -> None:
    line = lifecycle_line(event)
    assert line is not None and line[0] == level and words in line[1], line


def test_market_data_and_a_key_in_a_reason() -> None:
    # not lifecycle changes: no line (market data, and confirmations the link's LinkUp already implies)
    assert lifecycle_line(Subscribed(link=Link.LINEAR, at=1.0, topics=("tickers.X",))) is None
    assert lifecycle_line(ProtocolProblem(link=Link.LINEAR, at=1.0, detail="odd")) is None
    event = AuthFailed(link=Link.PRIVATE, at=1.0, reason=f"key {KEY} unknown", hint="check it", retry_in=60.0)
    line = lifecycle_line(event, Credentials(KEY, SECRET))
    assert line is not None and KEY not in line[1] and Credentials(KEY, SECRET).masked_key in line[1]
