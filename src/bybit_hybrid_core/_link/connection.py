"""One link across its sockets: the `_link` state machine driven by wire events, replies and timers.

See the theory of operation in `states.py`; this module is its plumbing: it owns the link's `Wire` (one per
socket), its `LinkSubs`, its `Deadlines` and its counters. It is a pure producer, the way wsproto's
`events()` is: every input (`receive`, `connected`, `lost`, `run_timers`, `reconcile`, ...) returns what it
produced, in order (`receive` lazily, frame by frame) — topic messages for the data plane, events,
actions — and never calls up into the core. The core applies them in that order, so a subscribe a
message causes goes out before anything the next message causes, however the bytes were chunked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from random import Random

from .._codec import (
    AuthReply,
    OpReply,
    Pong,
    SubscribeReply,
    TopicMessage,
    TradeReply,
    decode,
    encode_auth,
    encode_ping,
    encode_subscribe,
    encode_unsubscribe,
)
from .._config import Credentials, Link, Timings, mask
from .._errors import DecodeError, LocalProtocolError
from .._events import (
    Action,
    Authenticated,
    AuthFailed,
    Dial,
    Event,
    HandshakeRefused,
    Hangup,
    LinkConnected,
    LinkDown,
    LinkUp,
    ProtocolProblem,
    Send,
    Subscribed,
    SubscriptionFailed,
    TopicReset,
    Unsubscribed,
)
from .._health import LatencyRecorder, LinkCounters
from .._timers import Deadlines
from .policy import Backoff, DialBudget, auth_hint, equal_jitter, handshake_hint, url_host
from .states import TRANSITIONS, Input, LinkState, LinkStateMachine, misuse
from .subs import LinkSubs, SubsConfirmed, SubsOutcome, SubsProblem, SubsRejected, SubsRemoved
from .wire import Wire, WireClosed, WireEvent, WireFailed, WireNotice, WireRefused, WireUpgraded

__all__ = ["LinkConnection", "Produced"]

# What a link hands the core: a topic message for the data plane, an event, or an action for the adapter.
Produced = TopicMessage | Event | Action

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_CONNECTION_TIMERS = ("connect", "handshake", "auth", "subscribe", "ping", "pong", "retry", "watch")
# Topics with a cadence the watchdog can hold the venue to: tickers push every 100 ms (spot 50 ms,
# BYBIT_V5.md section 5). Books deeper than level 1 push only on change, trades only on trades, and private
# topics only on account activity, so silence there proves nothing.
_WATCHED_PREFIX = "tickers."
_CONTROL_REPLIES = frozenset((AuthReply, Pong, SubscribeReply, OpReply, TradeReply))
# Where a topic message is legal; tests/test_link.py checks that it never changes the state anywhere.
_TOPIC_STATES = frozenset(
    state for (state, event), target in TRANSITIONS.items() if event is Input.TOPIC and target is state
)


class LinkConnection:
    """One link across its sockets: the state machine plus its wire, subscriptions, timers and counters.

    Args:
        next_req_id: the core's request-id counter (ids are unique across links).
        wall_ms: Unix ms at a monotonic `now` (auth `expires`, latency against the exchange's stamps).
    """

    def __init__(
        self,
        link: Link,
        url: str,
        timings: Timings,
        credentials: Credentials | None,
        budget: DialBudget,
        rng: Random,
        latency: LatencyRecorder | None = None,
        *,
        next_req_id: Callable[[], str],
        wall_ms: Callable[[float], int],
    ) -> None:
        if link is Link.PRIVATE and credentials is None:
            raise LocalProtocolError("the private link needs Config(credentials=Credentials(key, secret))")
        self.link = link
        self.url = url
        self.host_name = url_host(url)
        self.machine = LinkStateMachine()
        self.subs = LinkSubs(link, next_req_id, timings, rng)
        self.counters = LinkCounters()
        self.latency = latency if latency is not None else LatencyRecorder()  # shared by the core's links
        self._stamp = "creation_time" if link is Link.PRIVATE else "ts"  # the exchange's time of a message
        self.timers: Deadlines[str] = Deadlines()  # "connect", "handshake", "auth", "ping", "watch", ...
        self._t = timings
        self._credentials = credentials if link is Link.PRIVATE else None
        self._next_req_id = next_req_id
        self._wall_ms = wall_ms
        self._out: list[Produced] = []  # what the current call produced, in order (returned by it)
        self._budget = budget
        self._backoff = Backoff(timings.backoff_base, timings.backoff_cap, rng)
        self._rng = rng
        self._auth_failures = 0
        self._wire: Wire | None = None
        self._ping_sent_at: float | None = None
        self._had_socket = False
        self._last_push: dict[str, float] = {}  # topic -> when its last message arrived (this connection)
        self._nudged: dict[str, float] = {}  # quiet topic -> when it was resubscribed for that

    @property
    def state(self) -> LinkState:
        return self.machine.state

    def deadline(self) -> float | None:
        return self.timers.earliest()

    # ------------------------------------------------------------------------------------- caller inputs

    def check(self, event: Input) -> None:
        """Raise `LocalProtocolError` now if the caller's input is illegal in the current state."""
        if event is Input.BYTES:
            if self.machine.state is LinkState.LIVE:
                return  # nearly every call: the table's (LIVE, BYTES) is a self-loop
            if self._stale():
                event = Input.STALE
        if not self.machine.accepts(event):
            raise LocalProtocolError(misuse(self.state, event))

    def start(self, now: float) -> list[Produced]:
        self.counters.down_since = now  # not LIVE yet: the health rules count from here
        self._dial(now)
        return self._produced()

    @property
    def auth_refusals(self) -> int:
        """Auth refusals in a row (0 once one is accepted)."""
        return self._auth_failures

    def connected(self, now: float) -> list[Produced]:
        if self.state is LinkState.BACKOFF:
            self.machine.process(Input.CONNECTED)
            self.counters.stale_inputs += 1
            self._out.append(Hangup(link=self.link, reason="the core gave up on this dial; close it"))
            return self._produced()
        self.machine.process(Input.CONNECTED)
        self.timers.cancel("connect")
        self._had_socket = True
        self._wire = Wire(self.url)
        self._wire.initiate()
        self._flush()
        self.timers.set("handshake", now + self._t.handshake_timeout)
        return self._produced()

    def receive(self, data: bytes, now: float) -> Iterator[Produced]:
        """Feed bytes from the socket; yields what they produced, in order: topic messages for the data
        plane, events, actions (wsproto's `events()` style: nothing calls up into the core).

        Lazily, one wire event at a time: the caller applies each item (a message may open a position and
        so change what a link must subscribe) before the next frame is looked at, so how the bytes were
        chunked never changes what the core does. Consume it fully before the next input.
        """
        if self._wire is None or self._stale():
            self.counters.stale_inputs += 1
            return
        if self.machine.state is not LinkState.LIVE:  # the table's (LIVE, BYTES) is a self-loop
            self.machine.process(Input.BYTES)
        for event in self._wire.receive(data):
            if event.__class__ is bytes:  # a whole text message's payload: nearly every item is one
                msg = self._on_text(event, now)
                if msg is not None:  # a topic message, and nothing else produced: handed on as it is
                    yield msg
                    if self._wire is None:  # what the caller did with it took the link down
                        break
                    continue
            else:
                self._on_wire(event, now)  # type: ignore[arg-type]
            if self._out:
                yield from self._produced()
            if self._wire is None:  # the link went down; the rest belonged to the dead socket
                break
        self._flush()
        if self._out:
            yield from self._produced()

    def lost(self, now: float, reason: str) -> list[Produced]:
        if self.state is LinkState.BACKOFF:
            self.machine.process(Input.LOST)
            return []
        self._down(now, Input.LOST, f"transport lost: {reason}", hangup=False)
        return self._produced()

    def run_timers(self, now: float) -> list[Produced]:
        for name in self.timers.due(now):
            self._on_timer(name, now)
        return self._produced()

    def resubscribe(self, topic: str, now: float, reason: str) -> list[Produced] | None:
        """Get a fresh snapshot of a confirmed topic (unsubscribe + subscribe), reported as a `TopicReset`.

        None (and nothing sent) when the link is not LIVE or the topic is not confirmed on it.
        """
        if not self._resubscribe(topic, now, reason):
            return None
        return self._produced()

    def reconcile(self, now: float) -> list[Produced]:
        """Send what it takes to move the server's topics towards the desired ones (only when live)."""
        self._reconcile(now)
        return self._produced()

    def _produced(self) -> list[Produced]:
        out, self._out = self._out, []
        return out

    def _resubscribe(self, topic: str, now: float, reason: str) -> bool:
        if self.state is not LinkState.LIVE or not self.subs.refresh(topic):
            return False
        self._out.append(TopicReset(link=self.link, at=now, topic=topic, reason=reason, remedy="resubscribe"))
        self._reconcile(now)
        return True

    def _reconcile(self, now: float) -> None:
        if self.state is not LinkState.LIVE:
            return
        batches, refused = self.subs.plan(now)
        for batch in batches:
            encode = encode_subscribe if batch.op == "subscribe" else encode_unsubscribe
            self._send(encode(batch.topics, batch.req_id))
        self._report(refused, now)
        oldest = self.subs.oldest_pending()
        if oldest is None:
            self.timers.cancel("subscribe")
        else:
            self.timers.set("subscribe", oldest + self._t.ack_timeout)
        self._arm_retry()

    def _arm_retry(self) -> None:
        """The refused topics a position needs are tried again on this connection when their wait ends."""
        when = self.subs.next_retry()
        if when is None:
            self.timers.cancel("retry")
        else:
            self.timers.set("retry", when)

    # ---------------------------------------------------------------------------------------- internals

    def _stale(self) -> bool:
        state = self.machine.state
        return state is LinkState.BACKOFF or (state is LinkState.DIALING and self._had_socket)

    def _dial(self, now: float) -> None:
        wait = self._budget.take(self.host_name, now)
        if wait is not None:
            self.machine.process(Input.DIAL_DEFERRED)
            self.timers.set("redial", wait)
            return
        self.machine.process(Input.DIAL)
        self.counters.dials += 1
        self.counters.reconnects = self.counters.dials - 1
        self._out.append(Dial(link=self.link, url=self.url))
        self.timers.set("connect", now + self._t.handshake_timeout)

    def _on_timer(self, name: str, now: float) -> None:
        if name == "redial":
            self._dial(now)
        elif name == "ping":
            self._ping(now)
        elif name == "retry":
            self.subs.due_retries(now)
            self._reconcile(now)
        elif name == "watch":
            self._watch(now)
        else:
            what = {
                "connect": "the transport did not connect",
                "handshake": "no HTTP 101 for the upgrade",
                "auth": "no auth ack",
                "subscribe": "no subscribe ack",
                "pong": "no pong",
            }[name]
            limit = self._t.pong_timeout if name == "pong" else self._t.ack_timeout
            if name in ("connect", "handshake"):
                limit = self._t.handshake_timeout
            self._down(now, Input.TIMEOUT, f"{what} within {limit:g} s")

    def _ping(self, now: float) -> None:
        self.machine.process(Input.PING_DUE)
        self._send(encode_ping(self._next_req_id()))
        self.counters.pings += 1
        self.timers.set("ping", now + self._t.ping_interval)
        if "pong" not in self.timers:
            self._ping_sent_at = now
            self.timers.set("pong", now + self._t.pong_timeout)

    def _on_wire(self, event: WireEvent, now: float) -> None:
        match event:
            case WireUpgraded():
                self._upgraded(now)
            case WireRefused(status=status, reason=reason):
                hint = handshake_hint(status)
                self._out.append(
                    HandshakeRefused(link=self.link, at=now, status=status, reason=reason, hint=hint)
                )
                self._down(now, Input.REFUSED, f"upgrade refused: HTTP {status} {reason}".rstrip())
            case WireClosed(code=code, reason=reason):
                self._down(now, Input.REMOTE_CLOSED, f"closed by the server: {code} {reason}".rstrip())
            case WireFailed(detail=detail):
                self._problem(detail, now)
                self._down(now, Input.BROKEN, detail)
            case WireNotice(detail=detail):
                self._problem(detail, now)

    def _upgraded(self, now: float) -> None:
        self.timers.cancel("handshake")
        self._out.append(LinkConnected(link=self.link, at=now, url=self.url))
        self.timers.set("ping", now + self._t.ping_interval)
        if self._credentials is None:
            self.machine.process(Input.UPGRADED)
            self._live(now)
            return
        self.machine.process(Input.UPGRADED_AUTH)
        # expires = wall now + auth_expires_ms: now + 1 s fails on small clock skew (BYBIT_V5.md section 2).
        expires = self._wall_ms(now) + self._t.auth_expires_ms
        signature = self._credentials.sign(f"GET/realtime{expires}")
        self._send(encode_auth(self._credentials.api_key, expires, signature, self._next_req_id()))
        self.timers.set("auth", now + self._t.ack_timeout)

    def _live(self, now: float) -> None:
        self.counters.live_since = now
        self.counters.down_since = None
        self._out.append(LinkUp(link=self.link, at=now))
        self._reconcile(now)

    # ------------------------------------------------------------------------------------------ watchdog

    def _watch(self, now: float) -> None:
        """The liveness watchdog of a LIVE public link (docs/operations.md, "The liveness guarantee").

        A link carrying tickers that is wholly silent for `silent_link_after` is half-open: redialled, found
        in seconds rather than by the 20 s ping + 10 s pong deadline. A ticker that alone goes quiet for
        `topic_quiet_after` is resubscribed for a fresh snapshot; still quiet as long again, the link is
        redialled. Runs only when its timer is due, so a message costs one dict store (`_last_push`).
        """
        watched = [t for t in self.subs.confirmed if t.startswith(_WATCHED_PREFIX)]
        watched += [t for t in self._nudged if t not in self.subs.confirmed]  # mid-resubscribe
        if not watched or self.counters.live_since is None:
            return
        quiet, silent = self._t.topic_quiet_after, self._t.silent_link_after
        heard = self.counters.last_message_at or self.counters.live_since
        heard = max(heard, self.counters.live_since)
        if now >= heard + silent:
            why = f"no message for {now - heard:.1f} s on a link carrying {len(watched)} ticker(s): half-open"
            self._down(now, Input.TIMEOUT, why)
            return
        next_at = heard + silent
        for topic in sorted(watched):
            nudged = self._nudged.get(topic)
            if nudged is not None:
                if now >= nudged + quiet:
                    why = f"still no push {now - nudged:.1f} s after resubscribing"
                    self._out.append(
                        TopicReset(link=self.link, at=now, topic=topic, reason=why, remedy="redial")
                    )
                    self._down(now, Input.TIMEOUT, f"{topic}: {why}")
                    return
                next_at = min(next_at, nudged + quiet)
                continue
            since = max(self._last_push.get(topic, self.counters.live_since), self.counters.live_since)
            if now >= since + quiet:
                why = f"no push for {now - since:.1f} s while the link is LIVE"
                self._resubscribe(topic, now, why)
                self._nudged[topic] = now
                next_at = min(next_at, now + quiet)
            else:
                next_at = min(next_at, since + quiet)
        self.timers.set("watch", next_at)

    def _arm_watch(self, now: float) -> None:
        if self.link.is_public and "watch" not in self.timers and self.state is LinkState.LIVE:
            self.timers.set("watch", now + min(self._t.topic_quiet_after, self._t.silent_link_after))

    def _on_text(self, text: bytes | str, now: float) -> TopicMessage | None:
        """One text message: the topic message to hand on, or None (a control reply or a problem, whose
        outcome is in `_out`)."""
        counters = self.counters
        counters.messages += 1
        counters.last_message_at = now
        try:
            msg = decode(text)
        except DecodeError as exc:
            self._problem(str(exc), now, _sample(text))
            return None
        if msg.__class__ in _CONTROL_REPLIES:
            self._on_control(msg, now, text)
            return None
        # A topic message. TOPIC is a self-loop wherever it is legal (`_TOPIC_STATES`, read off the table),
        # so the check is one set lookup and there is no transition to make.
        if self.machine.state not in _TOPIC_STATES:
            self._problem(f"unexpected topic while {self.state.name}", now, _sample(text))
            return None
        topic = msg.topic  # type: ignore[union-attr]  # not a control reply (above): a topic message
        self._last_push[topic] = now
        if self._nudged:
            self._nudged.pop(topic, None)
        stamp = getattr(msg, self._stamp, None)
        if stamp:  # the exchange's own time of the message: latency (ms) to its arrival here
            self.latency.observe(stamp, self._wall_ms(now), now)
        return msg  # type: ignore[return-value]

    def _on_control(self, msg: object, now: float, text: bytes | str) -> None:
        match msg:
            case AuthReply():
                self._on_auth(msg, now)
            case Pong():
                if self._remote(Input.PONG, now, text):
                    self._on_pong(msg, now)
            case SubscribeReply():
                if self._remote(Input.SUB_ACK, now, text):
                    self._on_sub_ack(msg, now)
            case OpReply() | TradeReply():
                self._problem(f"unexpected reply to op {msg.op!r}: {msg.ret_msg[:100]!r}", now, _sample(text))

    def _remote(self, event: Input, now: float, text: bytes | str) -> bool:
        """Check a remote input against the table; an illegal one is reported and changes nothing."""
        if self.machine.accepts(event):
            return True
        self._problem(f"unexpected {event.name.lower()} while {self.state.name}", now, _sample(text))
        return False

    def _on_pong(self, msg: Pong, now: float) -> None:
        self.machine.process(Input.PONG)
        self.counters.pongs += 1
        self.timers.cancel("pong")
        if self._ping_sent_at is not None:
            rtt = self.counters.last_pong_rtt = now - self._ping_sent_at
            self._ping_sent_at = None
            if msg.server_ms:  # private and option pongs carry the server's time: the clock-offset estimate
                self.latency.clock_sample(msg.server_ms, self._wall_ms(now), rtt)

    def _on_sub_ack(self, msg: SubscribeReply, now: float) -> None:
        self.machine.process(Input.SUB_ACK)
        self._report(
            self.subs.on_ack(
                msg.req_id, msg.success, msg.ret_msg, msg.success_topics, msg.fail_topics, now=now
            ),
            now,
        )
        self._reconcile(now)  # split halves go out at once; the ack deadline moves to the next oldest

    def _on_auth(self, msg: AuthReply, now: float) -> None:
        event = Input.AUTH_OK if msg.success else Input.AUTH_REFUSED
        if not self._remote(event, now, f"op auth success={msg.success} ret_msg={msg.ret_msg[:100]!r}"):
            return
        self.timers.cancel("auth")
        if msg.success:
            self.machine.process(Input.AUTH_OK)
            self._auth_failures = 0
            self._out.append(Authenticated(link=self.link, at=now))
            self._live(now)
            return
        # Jittered (equal jitter, seeded): a fleet of bots refused together (one bad clock) must not retry
        # in lock-step; never shorter than half the step, so a bad key never hammers the venue.
        delay = equal_jitter(
            self._t.auth_backoff_base, self._t.auth_backoff_cap, self._auth_failures, self._rng
        )
        self._auth_failures += 1
        reason = msg.ret_msg or "auth refused"
        self._out.append(
            AuthFailed(link=self.link, at=now, reason=reason, hint=auth_hint(reason), retry_in=delay)
        )
        self._down(now, Input.AUTH_REFUSED, f"auth refused: {reason}", delay=delay)

    def _report(self, outcomes: list[SubsOutcome], now: float) -> None:
        for outcome in outcomes:
            match outcome:
                case SubsConfirmed(topics=topics):
                    for topic in topics:
                        if topic not in self._nudged:
                            self._last_push[topic] = now  # a fresh subscription: its silence starts now
                    if any(t.startswith(_WATCHED_PREFIX) for t in topics):
                        self._arm_watch(now)
                    self._out.append(Subscribed(link=self.link, at=now, topics=topics))
                case SubsRemoved(topics=topics):
                    for topic in topics:
                        self._last_push.pop(topic, None)
                        if topic not in self.subs.desired:
                            self._nudged.pop(topic, None)
                    self._out.append(Unsubscribed(link=self.link, at=now, topics=topics))
                case SubsRejected(topic=topic, reason=reason, retry_in=retry_in, refusals=n, report=report):
                    self.counters.refused_at.append(now)  # every refusal counts for health, told or not
                    if report:
                        self._out.append(
                            SubscriptionFailed(
                                link=self.link,
                                at=now,
                                topic=topic,
                                reason=reason,
                                retry_in=retry_in,
                                refusals=n,
                            )
                        )
                case SubsProblem(detail=detail):
                    self._problem(detail, now)

    def _down(
        self, now: float, event: Input, reason: str, *, hangup: bool = True, delay: float | None = None
    ) -> None:
        was_live = self.state is LinkState.LIVE
        self.machine.process(event)
        if self._wire is not None:
            if event is not Input.LOST:
                self._wire.close(1000 if event is not Input.BROKEN else 1002)
                self._flush()
            self._wire = None
        if hangup:
            self._out.append(Hangup(link=self.link, reason=reason))
        for name in _CONNECTION_TIMERS:
            self.timers.cancel(name)
        self.subs.reset()
        self._last_push.clear()
        self._nudged.clear()
        self._ping_sent_at = None
        live_since, self.counters.live_since = self.counters.live_since, None
        if live_since is not None:
            self.counters.uptime += now - live_since
            self.counters.down_since = now
        if was_live and live_since is not None and now - live_since >= self._t.backoff_cap:
            self._backoff.reset()  # it stayed up: this drop is news, not part of a storm
        if delay is None:
            delay = self._backoff.next()
        self.timers.set("redial", now + delay)
        self.counters.downs += 1
        self._out.append(LinkDown(link=self.link, at=now, reason=reason, retry_in=delay))

    def _send(self, text: str) -> None:
        if self._wire is None or not self._wire.is_open:
            # The bytes that completed the upgrade also held a close or a broken frame: the wire is dead
            # already, and its terminal event, next in this same batch, takes the link down.
            return
        self._wire.send_text(text)
        self._flush()

    def _flush(self) -> None:
        if self._wire is not None:
            data = self._wire.data_to_send()
            if data:
                self._out.append(Send(link=self.link, data=data))

    def _problem(self, detail: str, now: float, sample: str = "") -> None:
        self.counters.problems += 1
        detail, sample = self._redact(detail[:300]), self._redact(sample[:200])
        self._out.append(ProtocolProblem(link=self.link, at=now, detail=detail, sample=sample))

    def _redact(self, text: str) -> str:
        """Legacy error replies echoed the request (BYBIT_V5.md section 2): never repeat key or signature."""
        if self._credentials is not None:
            text = text.replace(self._credentials.api_key, mask(self._credentials.api_key))
        return _HEX64.sub("***", text)


def _sample(text: bytes | str) -> str:
    """The start of a message as text, for a problem report (the error path only)."""
    if isinstance(text, str):
        return text[:400]
    return text[:400].decode("utf-8", "replace")
