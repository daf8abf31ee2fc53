"""The FakeExchange's answers to client requests: auth, ping, subscribe, unsubscribe and everything else.

Rules enforced, each cited from `shared/protocol/BYBIT_V5.md`: the auth signature and `expires` (section 2);
private subscribes only after the auth ack (section 2); one ack per request, one bad topic failing the whole
public request and named first (section 4); spot's 10 args per request, 21,000 characters of args per public
connection, 2,000 args per option connection (section 4, "Limits"). A client that breaks one of these rules is
answered as Bybit would, and the breach is also recorded in `violations` for tests to assert on.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from ..._config import Credentials
from .conn import ServerConn
from .replies import (
    Json,
    auth_reply,
    bad_json_reply,
    batch_partial_text,
    dumps,
    invalid_op_reply,
    pong_reply,
    private_base,
    private_topic_ok,
    public_fail_text,
    skewed,
    subscribe_reply,
)

__all__ = ["ExchangeFaults", "OpHandler", "TopicSource"]

SPOT_ARGS_PER_REQUEST = 10
PUBLIC_ARGS_CHARS = 21_000
OPTION_ARGS_PER_CONN = 2_000
_MALFORMED_AUTH = "args must be [api_key, expires, signature]"


class TopicSource(Protocol):
    """The part of the venue the request handler needs."""

    def topic_exists(self, category: str, topic: str) -> bool: ...

    def snapshot(self, category: str, topic: str, now: float) -> dict[str, Any] | None: ...


@dataclass
class ExchangeFaults:
    """Faults that are not tied to one connection."""

    reject_auth: int | None = 0  # refuse this many auth attempts; None: every one
    fail_topics: dict[str, int | None] = field(default_factory=dict)  # topic -> subscribes left to fail
    geo_block: bool = False
    skew_ms: int = 0
    rest_failures: list[tuple[int, int | None]] = field(default_factory=list)  # (HTTP status, retCode)
    rest_delay: float = 0.0

    def take_auth_refusal(self) -> bool:
        if self.reject_auth is None:
            return True
        if self.reject_auth > 0:
            self.reject_auth -= 1
            return True
        return False

    def take_topic_failure(self, topic: str) -> bool:
        if topic not in self.fail_topics:
            return False
        left = self.fail_topics[topic]
        if left is not None:
            if left <= 1:
                del self.fail_topics[topic]
            else:
                self.fail_topics[topic] = left - 1
        return True


class _Request(msgspec.Struct):
    op: Any = None
    req_id: Any = None
    args: Any = None


class OpHandler:
    """Answers one connection's requests. `wall_ms(now)` is the exchange's (possibly skewed) clock."""

    def __init__(
        self,
        venue: TopicSource,
        credentials: Credentials,
        faults: ExchangeFaults,
        wall_ms: Callable[[float], int],
        violations: list[str],
    ) -> None:
        self._venue = venue
        self._credentials = credentials
        self._faults = faults
        self._wall_ms = wall_ms
        self.violations = violations

    def handle(self, conn: ServerConn, text: str, now: float) -> None:
        kind = conn.kind or "linear"
        try:
            req = msgspec.json.decode(text, type=_Request)
        except msgspec.DecodeError:
            self._violate(conn, f"unparseable request {text[:60]!r}")
            self._reply(conn, bad_json_reply(kind, text, conn.next_conn_id()), now)
            return
        req_id = None if req.req_id is None else str(req.req_id)
        op = req.op if isinstance(req.op, str) else ""
        if op == "ping":
            conn.last_ping = conn.last_activity = now
            conn.send_text(
                dumps(pong_reply(kind, req_id, conn.next_conn_id(), self._wall_ms(now))), now, "pong"
            )
        elif op == "auth" and kind == "private":
            self._auth(conn, req.args, req_id, now)
        elif op in ("subscribe", "unsubscribe") and isinstance(req.args, list):
            topics = [str(a) for a in req.args]
            if kind == "private":
                self._private_subscribe(conn, op, topics, req_id, now)
            else:
                self._public_subscribe(conn, op, topics, req_id, now)
        else:
            self._violate(conn, f"invalid op {op!r}")
            self._reply(conn, invalid_op_reply(kind, op, req_id, conn.next_conn_id()), now)

    # ---------------------------------------------------------------------------------------------- auth

    def _auth(self, conn: ServerConn, args: Any, req_id: str | None, now: float) -> None:
        problem = self._auth_problem(conn, args, now)
        refused = self._faults.take_auth_refusal()
        ok = not problem and not refused
        if problem in ("repeat auth", _MALFORMED_AUTH):  # a client bug; expiry and keys are config or skew
            self._violate(conn, f"auth refused: {problem}")
        # Every refusal is "Params Error": the only text captured on V5 private streams (BYBIT_V5.md s. 2).
        text = "" if ok else ("Repeat auth" if problem == "repeat auth" else "Params Error")
        conn.authed = conn.authed or ok
        self._reply(conn, auth_reply(ok, text, req_id, conn.next_conn_id()), now)

    def _auth_problem(self, conn: ServerConn, args: Any, now: float) -> str:
        if conn.authed:
            return "repeat auth"
        if not isinstance(args, list) or len(args) != 3:
            return _MALFORMED_AUTH
        key, expires, sig = args
        # expires is documented as a number; numeric strings work too (BYBIT_V5.md section 2).
        if isinstance(expires, str) and expires.isdigit():
            expires = int(expires)
        if not isinstance(expires, int) or isinstance(expires, bool):
            return "expires is not an integer of milliseconds"
        if key != self._credentials.api_key:
            return "unknown api key"
        if expires <= self._wall_ms(now):
            return f"expires {expires} is not in the future (server time {self._wall_ms(now)})"
        expected = self._credentials.sign(f"GET/realtime{expires}")
        if not isinstance(sig, str) or not hmac.compare_digest(sig, expected):
            return "bad signature"
        return ""

    # -------------------------------------------------------------------------------------- subscriptions

    def _public_subscribe(
        self, conn: ServerConn, op: str, topics: list[str], req_id: str | None, now: float
    ) -> None:
        kind = conn.kind or "linear"
        if kind == "spot" and len(topics) > SPOT_ARGS_PER_REQUEST:
            self._violate(conn, f"{len(topics)} args in one spot request")
            self._reply(
                conn, subscribe_reply(kind, op, req_id, conn.conn_id, "args size >10", success=False), now
            )
            return
        if op == "unsubscribe":
            for topic in topics:
                conn.topics.pop(topic, None)
            self._reply(conn, subscribe_reply(kind, op, req_id, conn.conn_id, ok_topics=topics), now)
            return
        bad = [
            t for t in topics if self._faults.take_topic_failure(t) or not self._venue.topic_exists(kind, t)
        ]
        new = [t for t in dict.fromkeys(topics) if t not in conn.topics and t not in bad]
        limit = self._limit_problem(conn, new)
        if limit:
            self._violate(conn, limit)
            self._reply(
                conn,
                subscribe_reply(kind, op, req_id, conn.conn_id, limit, success=False, bad_topics=new),
                now,
            )
            return
        if kind == "option":  # per-topic results in failTopics; the good ones are subscribed
            self._subscribe(conn, new, now, kind, req_id, bad)
            return
        if bad:  # one bad topic fails the whole request; the ack names the first (BYBIT_V5.md section 4)
            text = public_fail_text(kind, bad[0])
            self._reply(conn, subscribe_reply(kind, op, req_id, conn.conn_id, text, success=False), now)
            return
        dup = next((t for t in topics if t in conn.topics), None)
        self._subscribe(conn, new, now, kind, req_id, [], dup)

    def _subscribe(
        self, conn: ServerConn, new: list[str], now: float, kind: str, req_id: str | None,
        bad: list[str], dup: str | None = None,
    ) -> None:  # fmt: skip
        """Confirm `new`, ack the request, then send each new topic's snapshot after the ack."""
        conn.topics.update(dict.fromkeys(new))
        if dup is not None:
            # Duplicates are refused by name while the rest of the request is taken (an assumption: PROBE-PP
            # only saw single-topic duplicates; the core counts "already subscribed" as success).
            text = f"error:already subscribed,topic:{dup}"
            reply = subscribe_reply(kind, "subscribe", req_id, conn.conn_id, text, success=False)
        else:
            reply = subscribe_reply(
                kind, "subscribe", req_id, conn.conn_id, success=not bad, ok_topics=new, bad_topics=bad
            )
        self._reply(conn, reply, now)
        for topic in new:
            snap = self._venue.snapshot(kind, topic, now)
            if snap is not None:
                conn.send_text(dumps(skewed(snap, self._faults.skew_ms)), now, "data")

    def _limit_problem(self, conn: ServerConn, new: list[str]) -> str:
        chars = sum(len(t) for t in conn.topics) + sum(len(t) for t in new)
        if chars > PUBLIC_ARGS_CHARS:
            return f"args length >{PUBLIC_ARGS_CHARS}"  # invented text: no capture exists (open question 5)
        if conn.kind == "option" and len(conn.topics) + len(new) > OPTION_ARGS_PER_CONN:
            return f"args size >{OPTION_ARGS_PER_CONN}"  # invented text, in spot's style
        return ""

    def _private_subscribe(
        self, conn: ServerConn, op: str, topics: list[str], req_id: str | None, now: float
    ) -> None:
        if not conn.authed:  # nautilus_trader PR #2101 (BYBIT_V5.md section 2)
            self._violate(conn, f"private {op} before the auth ack: {topics}")
            reply = subscribe_reply(
                "private", op, req_id, conn.next_conn_id(), "Request not authorized", success=False
            )
            self._reply(conn, reply, now)
            return
        if op == "unsubscribe":
            for topic in topics:
                conn.topics.pop(topic, None)
            self._reply(conn, subscribe_reply("private", op, req_id, conn.next_conn_id()), now)
            return
        bases = [private_base(t) for t in topics]
        # The all-in-one topic and a categorised one cannot share a request (DOCS private/order.mdx).
        conflicts = {base for t, base in zip(topics, bases, strict=True) if t != base and base in topics}
        bad = [
            t for t, base in zip(topics, bases, strict=True)
            if not private_topic_ok(t) or self._faults.take_topic_failure(t) or base in conflicts
        ]  # fmt: skip
        ok = [t for t in dict.fromkeys(topics) if t not in bad]
        conn.topics.update(dict.fromkeys(ok))
        if bad:
            text = batch_partial_text(ok, bad)
            reply = subscribe_reply("private", op, req_id, conn.next_conn_id(), text, success=False)
        else:
            reply = subscribe_reply("private", op, req_id, conn.next_conn_id())
        self._reply(conn, reply, now)

    # ----------------------------------------------------------------------------------------------- misc

    def _reply(self, conn: ServerConn, body: Json, now: float) -> None:
        conn.send_text(dumps(body), now, "reply")

    def _violate(self, conn: ServerConn, what: str) -> None:
        self.violations.append(f"conn {conn.id} ({conn.kind}): {what}")
