"""FakeExchange: the server side of Bybit V5's WebSocket and REST APIs, sans-IO.

Theory of operation. Each transport connection (`accept`) gets a wsproto SERVER; its upgrade request's
path picks the endpoint (`/v5/public/{linear,inverse,spot,option}`, `/v5/private`; anything else is a
404). Requests are answered by `OpHandler` in the endpoint's real shape. Market pushes come from the
`Venue` (prices, books, trades), drawn every `publish_interval` seconds for the subscribed topics; private
pushes come from the venue when orders fill and go to authenticated private connections by topic. Like the
client core, it never reads a clock: time enters as `now`, and everything it wants to send waits in
`poll()`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from random import Random
from typing import Any, Protocol
from urllib.parse import urlsplit

from wsproto.events import BytesMessage, CloseConnection, Ping, Request, TextMessage
from wsproto.utilities import RemoteProtocolError

from ..._config import Credentials
from ..._events import Position, PositionKey
from .conn import Phase, ServerAction, ServerConn, route
from .faults import FaultsMixin
from .ops import ExchangeFaults, OpHandler
from .replies import PUBLIC_KINDS, ConnIds, dumps, private_variant, skewed
from .rest import IpLimit, RestHandler

__all__ = ["DEFAULT_START_MS", "DIAL_LIMIT", "DIAL_WINDOW", "FakeExchange", "VenueLike"]

DEFAULT_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: a fixed wall clock keeps runs reproducible
# Bybit: at most 500 new connections per 5 minutes per IP (BYBIT_V5.md section 4, "Limits").
DIAL_LIMIT = 500
DIAL_WINDOW = 300.0

Pushes = list[tuple[str, dict[str, Any]]]


class VenueLike(Protocol):
    """The markets and accounts behind the exchange (TEAM.md "Venue")."""

    def topic_exists(self, category: str, topic: str) -> bool: ...
    def snapshot(self, category: str, topic: str, now: float) -> dict[str, Any] | None: ...
    def publish(
        self, now: float, subscribed: Mapping[str, set[str]]
    ) -> list[tuple[str, str, dict[str, Any]]]: ...
    def place_order(self, category: str, symbol: str, side: str, qty: Decimal, now: float,
                    position_idx: int = 0, reduce_only: bool = False) -> Pushes: ...  # fmt: skip
    def open_position(self, category: str, symbol: str, side: str, size: Decimal, now: float,
                      price: Decimal | None = None, position_idx: int = 0) -> Pushes: ...  # fmt: skip
    def close_position(self, category: str, symbol: str, now: float, position_idx: int = 0) -> Pushes: ...
    def set_mark(self, category: str, symbol: str, price: Decimal) -> None: ...
    def mark(self, category: str, symbol: str) -> Decimal: ...
    def positions(self) -> dict[PositionKey, Position]: ...
    def rest_position_list(self, query: Mapping[str, str], now: float | None = None) -> dict[str, Any]: ...
    def restart(self, now: float) -> Any: ...


def _default_venue(seed: int, start_ms: int) -> VenueLike:
    from .._venue import Venue

    venue: VenueLike = Venue(seed, start_ms)
    return venue


class FakeExchange(FaultsMixin):
    """Bybit V5 in a box: public and private WebSocket endpoints, `GET /v5/position/list`, the signed
    trading endpoints and the public `GET /v5/market/tickers` and `GET /v5/market/time`.

    Args:
        seed: seeds the venue and the connection ids; the same seed and inputs give the same bytes out.
        api_key, api_secret: the one account's key; auth and REST signatures are checked against it.
        credentials: instead of `api_key`/`api_secret` (e.g. a `Config`'s).
        venue: the markets and accounts; a `Venue(seed, start_ms)` by default.
        start_ms: the exchange's wall clock at `now == 0`.
        publish_interval: how often (seconds) market pushes are drawn from the venue.
    """

    def __init__(
        self,
        seed: int = 0,
        api_key: str = "test-key",
        api_secret: str = "test-secret",
        *,
        credentials: Credentials | None = None,
        venue: VenueLike | None = None,
        start_ms: int = DEFAULT_START_MS,
        publish_interval: float = 0.1,
    ) -> None:
        self.credentials = credentials if credentials is not None else Credentials(api_key, api_secret)
        self.start_ms = start_ms
        self.venue: VenueLike = venue if venue is not None else _default_venue(seed, start_ms)
        self.publish_interval = publish_interval
        self.faults = ExchangeFaults()
        self.violations: list[str] = []  # requests a correct client never sends (see _exchange/ops.py)
        self.dials: list[float] = []  # when each connection was accepted
        self._ids = ConnIds(Random(seed))
        self._conns: dict[int, ServerConn] = {}
        self._out: list[ServerAction] = []
        self._next_id = 0
        self._now = 0.0
        self._next_publish: float | None = None
        self._ops = OpHandler(self.venue, self.credentials, self.faults, self.wall_ms, self.violations)
        self._rest = RestHandler(self.venue, self.credentials, self.faults, self.wall_ms, self._push_private)
        self._rest.catch_up = self._market_now

    def __repr__(self) -> str:
        return f"FakeExchange(conns={len(self._conns)}, now={self._now})"

    def wall_ms(self, now: float | None = None) -> int:
        """The exchange's wall clock in ms (skewed by `clock_skew`)."""
        return self.start_ms + round((self._now if now is None else now) * 1000) + self.faults.skew_ms

    # -------------------------------------------------------------------------------------- the transport

    def accept(self, now: float) -> int:
        """A new transport connection; its HTTP upgrade request arrives through `receive`."""
        self._advance(now)
        self._next_id += 1
        self._conns[self._next_id] = ServerConn(self._next_id, now, self._out)
        self.dials.append(now)
        return self._next_id

    def receive(self, conn: int, data: bytes, now: float) -> None:
        """Bytes from the client on `conn`; b"" is end of stream."""
        self._advance(now)
        c = self._conns.get(conn)
        if c is None or c.phase is Phase.CLOSED or c.half_open:
            return
        try:
            events = c.feed(data)
        except RemoteProtocolError as exc:
            self.violations.append(f"conn {conn} ({c.kind}): broken upgrade request: {exc}")
            c.close(frame=False)
            return
        for event in events:
            self._on_event(c, event, now)
        if not data:
            c.close(frame=False)
        self._schedule_publish(now)

    def disconnected(self, conn: int, now: float) -> None:
        """The transport of `conn` is gone (the client hung up or the network failed)."""
        self._advance(now)
        c = self._conns.pop(conn, None)
        if c is not None:
            c.phase = Phase.CLOSED

    def tick(self, now: float) -> None:
        """Time passed: publish market data, release delayed messages, cut idle links."""
        self._advance(now)

    def deadline(self) -> float | None:
        """When `tick` next has something to do."""
        times = [d for c in self._conns.values() if (d := c.deadline()) is not None]
        if self._next_publish is not None:
            times.append(self._next_publish)
        return min(times, default=None)

    def poll(self) -> list[ServerAction]:
        """Everything to write or close, in order."""
        out = list(self._out)
        self._out.clear()
        for cid in [cid for cid, c in self._conns.items() if c.phase is Phase.CLOSED]:
            del self._conns[cid]
        return out

    def rest(
        self, method: str, target: str, headers: Mapping[str, str], now: float, body: bytes = b""
    ) -> tuple[int, bytes]:
        """Answer one REST request (`target` = path + query, `body` a POST's JSON): `(status, body)`."""
        status, _, answer = self.rest_response(method, target, headers, now, body)
        return status, answer

    def rest_response(
        self, method: str, target: str, headers: Mapping[str, str], now: float, body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        """Like `rest`, with the response headers (the `X-Bapi-Limit*` rate-limit headers). The private
        pushes an order causes are queued before the answer is returned."""
        self._advance(now)
        return self._rest.respond(method, target, headers, now, body)

    def rest_latency(self, target: str) -> float:
        """How late a REST request for `target` (path + query) reaches the exchange, in seconds
        (`rest_delay`).

        Sans-IO, the exchange does not wait: whoever carries the request does, on its own clock, and then
        hands it to `rest_response` with the later `now` (the served exchange sleeps on its loop; the
        Simulation adds `faults.rest_delay`, the delay without a path, to the trip of its position
        fetches). The answer then shows the market of that moment."""
        return self._rest.rest_faults.delays.get(urlsplit(target).path, self.faults.rest_delay)

    def ip_rate_limit(self, requests: int = 600, window: float = 5.0, ban: float = 600.0) -> None:
        """Bybit's HTTP IP limit, counted over every REST request: `requests` per `window` seconds, then HTTP
        403 "access too frequent" for `ban` seconds (the defaults are Bybit's: 600 per 5 s, at least 10 min;
        `docs/v5/rate-limit/rate-limit.mdx`). `heal()` lifts a ban."""
        if requests < 1 or window <= 0 or ban < 0:
            raise ValueError("ip_rate_limit takes requests >= 1, window > 0 and ban >= 0")
        self._rest.ip_limit = IpLimit(requests, window, ban)

    def market_rest(self, path: str, query: str = "") -> dict[str, Any]:
        """Bybit's answer to a public market endpoint (`/v5/market/tickers`, `/v5/market/time`) as a dict,
        now: no IP limit and no faults but the REST mark divergence (the operator's look at REST)."""
        self._advance(self._now)
        return self._rest.market(path, query, self._now)

    def trade(self, method: str, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Call one trading endpoint (e.g. `"POST", "/v5/order/create"`) with Bybit's parameter names,
        unsigned and unlimited, as the venue's operator: Bybit's answer (`retCode`, `result`, ...) as a dict.
        Its private pushes go out exactly as for a signed REST request."""
        return self._rest.trade((method.upper(), path), params or {}, self._now)

    # ------------------------------------------------------------------------------------- introspection

    def connections(self, kind: str | None = None) -> list[int]:
        """Open connections (handshake done), optionally of one kind."""
        return [cid for cid, c in self._conns.items() if c.phase is Phase.OPEN and kind in (None, c.kind)]

    def kind_of(self, conn: int) -> str | None:
        c = self._conns.get(conn)
        return None if c is None else c.kind

    def topics(self, conn: int) -> frozenset[str]:
        """Topics confirmed on `conn`."""
        c = self._conns.get(conn)
        return frozenset() if c is None else frozenset(c.topics)

    def subscriptions(self, kind: str) -> frozenset[str]:
        """Topics confirmed on the live (not half-open) connections of `kind`."""
        return frozenset(t for c in self._conns.values() if c.live and c.kind == kind for t in c.topics)

    def authed(self, conn: int) -> bool:
        c = self._conns.get(conn)
        return c is not None and c.authed

    @property
    def next_publish_at(self) -> float | None:
        """When market pushes are next drawn from the venue (None: nothing public is subscribed)."""
        return self._next_publish

    @property
    def rest_requests(self) -> int:
        return self._rest.requests

    # --------------------------------------------------------------------------------------- passthroughs

    def open_position(
        self, symbol: str, side: str, size: str | Decimal, price: str | Decimal | None = None,
        category: str = "linear", position_idx: int = 0,
    ) -> None:  # fmt: skip
        """Open (or add to) a position at `price` (default: the market), pushing the private messages."""
        px = None if price is None else Decimal(str(price))
        pushes = self.venue.open_position(
            category, symbol, side, Decimal(str(size)), self._now, px, position_idx
        )
        self._push_private(pushes, self._now)

    def place_order(
        self, symbol: str, side: str, qty: str | Decimal, category: str = "linear",
        position_idx: int = 0, reduce_only: bool = False,
    ) -> None:  # fmt: skip
        """A market order that fills at once; its private messages are pushed."""
        pushes = self.venue.place_order(
            category,
            symbol,
            side,
            Decimal(str(qty)),
            self._now,
            position_idx=position_idx,
            reduce_only=reduce_only,
        )
        self._push_private(pushes, self._now)

    def close_position(self, symbol: str, category: str = "linear", position_idx: int = 0) -> None:
        """Close a position at the market, pushing the private messages."""
        self._push_private(self.venue.close_position(category, symbol, self._now, position_idx), self._now)

    def positions(self) -> dict[PositionKey, Position]:
        """The exchange's open positions."""
        return self.venue.positions()

    def mark(self, symbol: str, price: str | Decimal | None = None, category: str = "linear") -> Decimal:
        """The mark price of `symbol`; with `price`, set it first (pushed with the next ticker delta)."""
        if price is not None:
            self.venue.set_mark(category, symbol, Decimal(str(price)))
            self._drain_triggered(self._now)
        return self.venue.mark(category, symbol)

    # ------------------------------------------------------------------------------------------ internals

    def _on_event(self, c: ServerConn, event: object, now: float) -> None:
        match event:
            case Request(target=target):
                self._on_upgrade(c, target, now)
            case TextMessage() as part:
                text = c.text_part(part)
                if text is not None:
                    self._ops.handle(c, text, now)
            case BytesMessage(data=data):
                self._ops.handle(c, bytes(data).decode("utf-8", "replace"), now)
            case Ping() as ping:
                c.write_event(ping.response())
            case CloseConnection() as close:
                c.write_event(close.response())
                c.close(frame=False)

    def _on_upgrade(self, c: ServerConn, target: str, now: float) -> None:
        kind, max_active, problem = route(target)
        recent = sum(1 for t in self.dials if t > now - DIAL_WINDOW)
        if self.faults.geo_block:
            c.reject(403, b"<html><body><h1>403 Forbidden</h1></body></html>")
        elif recent > DIAL_LIMIT:
            self.violations.append(f"conn {c.id}: {recent} connections within {DIAL_WINDOW:.0f} s")
            c.reject(429, b"Too Many Requests")
        elif kind is None:
            c.reject(404, b"404 page not found")
        else:
            if problem:
                self.violations.append(f"conn {c.id} ({kind}): {problem}")
            c.open(kind, self._ids.new(kind), now, max_active)

    def _advance(self, now: float) -> None:
        now = max(now, self._now)
        self._now = now
        if self._next_publish is not None and now >= self._next_publish:
            self._publish(now)
        self._drain_triggered(now)
        for c in list(self._conns.values()):
            c.tick(now)

    def _public_subscriptions(self) -> dict[str, set[str]]:
        subscribed: dict[str, set[str]] = {}
        for c in self._conns.values():
            if c.phase is Phase.OPEN and c.kind in PUBLIC_KINDS and c.topics:
                subscribed.setdefault(c.kind or "", set()).update(c.topics)
        return subscribed

    def _schedule_publish(self, now: float) -> None:
        if self._next_publish is None and self._public_subscriptions():
            step = math.floor(now / self.publish_interval + 1e-9) + 1
            self._next_publish = round(step * self.publish_interval, 9)  # 3 * 0.1 is 0.30000000000000004

    def _publish(self, now: float) -> None:
        subscribed = self._public_subscriptions()
        self._next_publish = None
        if not subscribed:
            return
        for category, topic, message in self.venue.publish(now, subscribed):
            text = dumps(skewed(message, self.faults.skew_ms))
            for c in self._conns.values():
                if c.kind == category and topic in c.topics:
                    c.send_text(text, now, "data")
        self._schedule_publish(now)

    def _market_now(self, now: float) -> None:
        """Before a REST market answer: a market nobody streams has not stepped since it was last looked
        at, so step it up to `now` (the market moves whether or not anyone listens; see the venue). A
        streamed one is already there: `_advance` published every step due, so REST shows what the stream
        just sent."""
        if not self._public_subscriptions():
            self.venue.publish(now, {})
            self._drain_triggered(now)

    def _drain_triggered(self, now: float) -> None:
        """Push the fills the venue's mark triggered (resting limit orders, take profit / stop loss)."""
        take = getattr(self.venue, "take_private", None)
        if take is not None:
            pushes = take()
            if pushes:
                self._push_private(pushes, now)

    def _push_private(self, pushes: Pushes, now: float) -> None:
        for topic, message in pushes:
            message = skewed(message, self.faults.skew_ms)
            for c in self._conns.values():
                if not (c.live and c.kind == "private" and c.authed):
                    continue
                for sub in c.topics:
                    variant = private_variant(sub, topic, message)
                    if variant is not None:
                        c.send_text(dumps(variant), now, "data")
