"""Desired vs confirmed topics of one link, and the subscribe/unsubscribe requests that reconcile them.

Bybit's rules (BYBIT_V5.md section 4) shape every request this module plans:
* one request gets exactly one ack; acks echo our `req_id`, except the option `COMMAND_RESP`, which has none,
  so it is matched to the oldest request still waiting on that link (requests are answered in order);
* spot takes at most 10 args per request (`args size >10`); we use 10 everywhere, so one bad topic costs
  little; the args of one public connection may not exceed 21,000 characters; an option connection takes at
  most 2,000 args. Topics beyond those limits are refused here and reported, never sent;
* one bad topic fails the whole request and the ack names at most one topic, so a failed batch is split in
  halves until the bad topic stands alone. What happens then depends on who wants the topic:
  - a topic the data plane *needs* (an open position's ticker, a pin) must not stay dark: it is retried on
    the same connection after a jittered exponential backoff (`Timings.topic_retry_base` * 2**n, capped at
    `topic_retry_cap`, "equal jitter") for as long as it is needed; the refusals are reported with the next
    retry time, at most once per `Timings.refusal_report_interval` (so a refusal loop is not an event flood);
  - any other topic (the user's own, e.g. a misspelt symbol) is reported once and not retried on that
    connection until asked again (a new connection tries every desired topic once more);
* `error:already subscribed,topic:X` means X is live: success;
* an all-in-one private topic (`order`) and a categorised one (`order.linear`) cannot share a request.

Everything is sorted before batching, so the same inputs always give the same requests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from random import Random
from typing import Literal

from .._config import Link, Timings
from .policy import equal_jitter

__all__ = [
    "MAX_ARGS_PER_REQUEST",
    "OPTION_MAX_ARGS",
    "PUBLIC_MAX_ARG_CHARS",
    "Batch",
    "LinkSubs",
    "SubsConfirmed",
    "SubsOutcome",
    "SubsProblem",
    "SubsRejected",
    "SubsRemoved",
    "private_family",
]

MAX_ARGS_PER_REQUEST = 10  # spot's hard limit; applied to every link
PUBLIC_MAX_ARG_CHARS = 21_000  # per public connection, every market
OPTION_MAX_ARGS = 2_000  # per option connection

Op = Literal["subscribe", "unsubscribe"]

# Longest names first: `execution.fast.linear` belongs to `execution.fast`, not to `execution`.
_PRIVATE_FAMILIES = ("execution.fast", "execution", "position", "order", "wallet", "greeks", "dcp")
_NAMED_TOPIC = re.compile(r"topic:\s*(\S+?)\s*$")


def private_family(topic: str) -> tuple[str, bool] | None:
    """(family, is_all_in_one) of a private topic name, or None for a public topic."""
    for family in _PRIVATE_FAMILIES:
        if topic == family:
            return family, True
        if topic.startswith(family + "."):
            return family, False
    return None


@dataclass(frozen=True, slots=True)
class Batch:
    """One subscribe or unsubscribe request."""

    req_id: str
    op: Op
    topics: tuple[str, ...]
    sent_at: float


@dataclass(frozen=True, slots=True)
class SubsConfirmed:
    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SubsRemoved:
    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SubsRejected:
    """A topic refused on its own. `retry_in`: when it is tried again (None: not retried); `report`: whether
    this refusal is to be told (rate-limited); `refusals`: how many refusals the report stands for."""

    topic: str
    reason: str
    retry_in: float | None = None
    refusals: int = 1
    report: bool = True


@dataclass(frozen=True, slots=True)
class SubsProblem:
    detail: str


SubsOutcome = SubsConfirmed | SubsRemoved | SubsRejected | SubsProblem


class LinkSubs:
    """The subscriptions of one link.

    Args:
        link: which link (its category decides the limits).
        next_req_id: the core's counter; req_ids are never random.
    """

    def __init__(
        self,
        link: Link,
        next_req_id: Callable[[], str],
        timings: Timings | None = None,
        rng: Random | None = None,
    ) -> None:
        self.link = link
        self._next_req_id = next_req_id
        self._t = timings if timings is not None else Timings()
        self._rng = rng if rng is not None else Random(0)
        self._now = 0.0
        self.desired: frozenset[str] = frozenset()
        self.needed: frozenset[str] = frozenset()  # desired topics the data plane needs: retried if refused
        self.confirmed: set[str] = set()
        self.failed: dict[str, str] = {}
        self.retry_at: dict[str, float] = {}  # failed topics that will be tried again, and when
        self._attempts: dict[str, int] = {}  # refusals in a row per retried topic (the backoff exponent)
        self._reported_at: dict[str, float] = {}  # when a retried topic's refusal was last reported
        self._unreported: dict[str, int] = {}  # refusals since that report
        self.pending: dict[str, Batch] = {}  # insertion order = send order
        self._split: list[tuple[Op, tuple[str, ...]]] = []  # halves of failed batches, sent first
        self._refresh: dict[str, None] = {}  # confirmed topics to unsubscribe and subscribe again

    # ------------------------------------------------------------------------------------ desired state

    def set_desired(self, topics: Iterable[str], needed: Iterable[str] = ()) -> None:
        """Replace the desired set; `needed` (a subset) are the topics retried when refused. A failed topic
        nobody wants any more is forgotten; one that became needed is retried at once."""
        self.desired = frozenset(topics)
        self.needed = frozenset(needed) & self.desired
        for topic in [t for t in self.failed if t not in self.desired]:
            self._forget(topic)
        for topic in [t for t in self.failed if t in self.needed and t not in self.retry_at]:
            del self.failed[topic]  # refused as somebody's own topic; a position needs it now: try again
        for topic in [t for t in self.retry_at if t not in self.needed]:
            del self.retry_at[topic]  # no longer needed: it stays failed, reported, not retried

    def retry(self, topic: str) -> None:
        """The user asked for `topic` again: forget that it failed."""
        self._forget(topic)

    def due_retries(self, now: float) -> list[str]:
        """Make the retried topics whose time has come subscribable again (the next `plan` sends them)."""
        due = [t for t, when in self.retry_at.items() if when <= now]
        for topic in due:
            del self.retry_at[topic]
            self.failed.pop(topic, None)
        return due

    def next_retry(self) -> float | None:
        return min(self.retry_at.values()) if self.retry_at else None

    def _forget(self, topic: str) -> None:
        self.failed.pop(topic, None)
        self.retry_at.pop(topic, None)
        self._attempts.pop(topic, None)
        self._unreported.pop(topic, None)

    def reset(self) -> None:
        """The link went down: nothing is confirmed or pending any more, and failures are forgotten.

        A fresh connection subscribes everything desired again (ARCHITECTURE "Links, timers and
        defaults"), refused topics included: a refusal may have been transient (a restarting handler), and
        a topic the data plane needs (a position's ticker) must not stay dark forever. A truly bad topic
        costs one request per connection, which the redial backoff and the dial budget bound: no loop.
        """
        self.confirmed.clear()
        self.pending.clear()
        self._split.clear()
        self._refresh.clear()
        self.failed.clear()
        self.retry_at.clear()  # a fresh connection tries them at once; the backoff exponent is kept

    def refresh(self, topic: str) -> bool:
        """Ask for a fresh snapshot of a confirmed, desired topic: the next `plan` sends an unsubscribe and
        then a subscribe for it (one request each; Bybit sends a snapshot after every subscribe). False when
        the topic is not confirmed (it is pending, failed or not wanted: nothing to refresh)."""
        if topic not in self.confirmed or topic not in self.desired:
            return False
        self._refresh[topic] = None
        return True

    def in_flight(self, op: Op) -> set[str]:
        return {t for b in self.pending.values() if b.op == op for t in b.topics}

    def oldest_pending(self) -> float | None:
        """When the oldest unanswered request was sent (its ack deadline runs from there)."""
        return next(iter(self.pending.values())).sent_at if self.pending else None

    # ------------------------------------------------------------------------------------------ planning

    def plan(self, now: float) -> tuple[list[Batch], list[SubsOutcome]]:
        """The requests to send now to move confirmed towards desired, and topics refused by the limits."""
        self._now = now
        outcomes: list[SubsOutcome] = []
        groups = self._take_split_groups()
        busy = self.in_flight("subscribe") | self.in_flight("unsubscribe")
        for topic in self._refresh:
            if topic in self.confirmed and topic in self.desired and topic not in busy:
                groups += [("unsubscribe", (topic,)), ("subscribe", (topic,))]
        self._refresh.clear()
        subscribing = self.in_flight("subscribe")
        unsubscribing = self.in_flight("unsubscribe")
        queued = {t for op, g in groups if op == "subscribe" for t in g}
        new = sorted(self.desired - self.confirmed - subscribing - queued - self.failed.keys())
        new = self._within_limits(new, outcomes)
        groups += [("subscribe", g) for g in self._batches(new)]
        gone = sorted(self.confirmed - self.desired - unsubscribing)
        groups += [("unsubscribe", g) for g in self._batches(gone)]
        batches = [Batch(self._next_req_id(), op, topics, now) for op, topics in groups]
        for batch in batches:
            self.pending[batch.req_id] = batch
        return batches, outcomes

    def _take_split_groups(self) -> list[tuple[Op, tuple[str, ...]]]:
        """Halves of failed batches that are still worth sending, in the order they were split."""
        groups: list[tuple[Op, tuple[str, ...]]] = []
        for op, topics in self._split:
            if op == "subscribe":
                kept = tuple(t for t in topics if t in self.desired and t not in self.confirmed)
            else:
                kept = tuple(t for t in topics if t in self.confirmed and t not in self.desired)
            if kept:
                groups.append((op, kept))
        self._split.clear()
        return groups

    def _within_limits(self, new: list[str], outcomes: list[SubsOutcome]) -> list[str]:
        """Drop (and report once) the topics that would break a per-connection limit."""
        if self.link is Link.PRIVATE:
            return new
        held = self.confirmed | self.in_flight("subscribe")
        chars = sum(len(t) for t in held)
        count = len(held)
        kept: list[str] = []
        for topic in new:
            if self.link is Link.OPTION and count + 1 > OPTION_MAX_ARGS:
                reason = f"an option connection takes at most {OPTION_MAX_ARGS} topics (Bybit's limit)"
            elif chars + len(topic) > PUBLIC_MAX_ARG_CHARS:
                reason = f"a public connection's topics may total at most {PUBLIC_MAX_ARG_CHARS} characters"
            else:
                kept.append(topic)
                chars += len(topic)
                count += 1
                continue
            outcomes.append(self._refused(topic, reason))
        return kept

    def _batches(self, topics: Sequence[str]) -> list[tuple[str, ...]]:
        """Pack topics into requests of at most 10, never mixing `order` with `order.linear` (for
        unsubscribes too: the rule is about the request, and nothing says it is lifted there)."""
        batches: list[list[str]] = []
        for topic in topics:
            for batch in batches:
                if len(batch) < MAX_ARGS_PER_REQUEST and not _conflicts(batch, topic):
                    batch.append(topic)
                    break
            else:
                batches.append([topic])
        return [tuple(b) for b in batches]

    # ---------------------------------------------------------------------------------------------- acks

    def on_ack(
        self,
        req_id: str | None,
        success: bool,
        ret_msg: str,
        success_topics: Sequence[str] = (),
        fail_topics: Sequence[str] = (),
        now: float | None = None,
    ) -> list[SubsOutcome]:
        """Apply one subscribe/unsubscribe ack (arrived at `now`; default: the last `plan`'s time); failed
        batches are queued in halves for the next `plan`."""
        if now is not None:
            self._now = now
        batch = self._match(req_id)
        if batch is None:
            shown = "no req_id" if not req_id else f"req_id {req_id[:40]!r}"
            return [SubsProblem(f"subscription ack with {shown} matches no request waiting on this link")]
        del self.pending[batch.req_id]
        if success_topics or fail_topics:
            return self._listed(batch, success_topics, fail_topics, success, ret_msg)
        if success:
            for topic in batch.topics if batch.op == "subscribe" else ():
                self._attempts.pop(topic, None)  # accepted: the next refusal starts the backoff over
                self._unreported.pop(topic, None)
            return self._succeeded(batch.op, batch.topics)
        if "already subscribed" in ret_msg and batch.op == "subscribe":
            return self._already(batch, ret_msg)
        return self._failed(batch.op, batch.topics, ret_msg)

    def _match(self, req_id: str | None) -> Batch | None:
        if req_id:
            return self.pending.get(req_id)
        # The option COMMAND_RESP carries no req_id (linear echoes "" when none was sent): the oldest one.
        return next(iter(self.pending.values()), None)

    def _succeeded(self, op: Op, topics: tuple[str, ...]) -> list[SubsOutcome]:
        if not topics:
            return []
        if op == "subscribe":
            self.confirmed.update(topics)
            return [SubsConfirmed(topics)]
        self.confirmed.difference_update(topics)
        return [SubsRemoved(topics)]

    def _already(self, batch: Batch, ret_msg: str) -> list[SubsOutcome]:
        """`already subscribed,topic:X`: X is live; the rest of the request may not be, so send it again."""
        match = _NAMED_TOPIC.search(ret_msg)
        named = match.group(1) if match else None
        if named is None or named not in batch.topics or len(batch.topics) == 1:
            return self._succeeded("subscribe", batch.topics)
        rest = tuple(t for t in batch.topics if t != named)
        self._split.append(("subscribe", rest))
        return self._succeeded("subscribe", (named,))

    def _failed(self, op: Op, topics: tuple[str, ...], ret_msg: str) -> list[SubsOutcome]:
        if len(topics) > 1:
            half = len(topics) // 2
            self._split += [(op, topics[:half]), (op, topics[half:])]
            return []
        reason = ret_msg or "refused by the server"
        if op == "unsubscribe":
            # The server will not drop it; we stop counting it as ours either way.
            self.confirmed.difference_update(topics)
            return [SubsRejected(topics[0], f"unsubscribe refused: {reason}"), SubsRemoved(topics)]
        return [self._refused(topics[0], reason)]

    def _refused(self, topic: str, reason: str) -> SubsRejected:
        """Record one topic's refusal: retried with backoff when needed, else failed until asked again."""
        self.failed[topic] = reason
        if topic not in self.needed:
            return SubsRejected(topic, reason)
        attempt = self._attempts.get(topic, 0)
        self._attempts[topic] = attempt + 1
        delay = equal_jitter(self._t.topic_retry_base, self._t.topic_retry_cap, attempt, self._rng)
        self.retry_at[topic] = self._now + delay
        refusals = self._unreported.get(topic, 0) + 1
        last = self._reported_at.get(topic)
        if last is not None and self._now < last + self._t.refusal_report_interval:
            self._unreported[topic] = refusals
            return SubsRejected(topic, reason, retry_in=delay, refusals=refusals, report=False)
        self._reported_at[topic] = self._now
        self._unreported.pop(topic, None)
        return SubsRejected(topic, reason, retry_in=delay, refusals=refusals)

    def _listed(
        self, batch: Batch, ok: Sequence[str], bad: Sequence[str], success: bool, ret_msg: str
    ) -> list[SubsOutcome]:
        """The option ack names its successes and failures: no need to split."""
        outcomes = self._succeeded(batch.op, tuple(t for t in batch.topics if t in ok))
        for topic in (t for t in batch.topics if t in bad):
            outcomes += self._failed(batch.op, (topic,), ret_msg or "listed in failTopics")
        rest = tuple(t for t in batch.topics if t not in ok and t not in bad)
        if rest:
            outcomes += self._succeeded(batch.op, rest) if success else self._failed(batch.op, rest, ret_msg)
        return outcomes


def _conflicts(batch: Sequence[str], topic: str) -> bool:
    """True when `topic` and a topic of `batch` are the all-in-one and a categorised form of one family."""
    mine = private_family(topic)
    if mine is None:
        return False
    for other in batch:
        theirs = private_family(other)
        if theirs is not None and theirs[0] == mine[0] and theirs[1] != mine[1]:
            return True
    return False
