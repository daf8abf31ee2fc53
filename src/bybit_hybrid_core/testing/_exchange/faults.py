"""Faults on request: the FakeExchange's methods that make links, auth, subscriptions and REST misbehave.

REST faults hit every request, or with `path` only one endpoint's: failures (HTTP 5xx or a retCode),
latency, forced rate-limit answers, and a tickers `markPrice` that disagrees with the stream.

`kind` names the connections a fault hits: "private", a category ("linear", "inverse", "spot", "option"),
"public" (every public category) or "all". Per-link faults hit the connections open now; a reconnect gets a
healthy link. `heal()` clears everything pending.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from wsproto.events import BytesMessage, TextMessage

from .conn import Phase, Poison, ServerConn
from .ops import ExchangeFaults
from .replies import KINDS, PUBLIC_KINDS
from .rest import RestHandler

__all__ = ["FaultsMixin"]


class _Restartable(Protocol):
    def restart(self, now: float) -> Any: ...


class FaultsMixin:
    """Fault injection; mixed into FakeExchange, which owns these attributes."""

    _conns: dict[int, ServerConn]
    _now: float
    faults: ExchangeFaults
    venue: Any
    _rest: RestHandler

    def _targets(self, kind: str) -> list[ServerConn]:
        kinds = {"all": KINDS, "public": PUBLIC_KINDS}.get(kind, (kind,))
        if not set(kinds) <= set(KINDS):
            raise ValueError(f"unknown link kind {kind!r}: use 'private', a category, 'public' or 'all'")
        return [c for c in self._conns.values() if c.phase is Phase.OPEN and c.kind in kinds]

    # ---------------------------------------------------------------------------------------------- links

    def drop_link(self, kind: str, close_frame: bool = True, code: int = 1001) -> int:
        """Close every connection of `kind`: with a close frame (code 1001, going away), or abruptly as
        Bybit's idle cut does (1006: no close frame). Returns how many were dropped."""
        targets = self._targets(kind)
        for conn in targets:
            conn.close(frame=close_frame, code=code)
        return len(targets)

    def half_open(self, kind: str) -> int:
        """The sockets of `kind` stay open but nothing flows either way until the client hangs up."""
        targets = [c for c in self._targets(kind) if not c.half_open]
        for conn in targets:
            conn.half_open = True
        return len(targets)

    def lose_pongs(self, kind: str, n: int = 1) -> None:
        """Swallow the next `n` JSON pongs on each connection of `kind`."""
        for conn in self._targets(kind):
            conn.lose_pongs += n

    def delay_pongs(self, kind: str, seconds: float) -> None:
        """Hold every JSON pong on the connections of `kind` for `seconds` (0 stops it)."""
        for conn in self._targets(kind):
            conn.pong_delay = seconds

    def duplicate(self, kind: str, n: int = 1, *, replies: bool = False) -> None:
        """Send each of the next `n` topic messages twice (acks and pongs too when `replies`)."""
        for conn in self._targets(kind):
            conn.duplicate += n
            conn.faults_on_replies |= replies

    def reorder(self, kind: str, n: int = 2, *, replies: bool = False) -> None:
        """Hold the next `n` topic messages and send them in reverse order (at most 0.25 s late)."""
        for conn in self._targets(kind):
            conn.reorder += n
            conn.faults_on_replies |= replies

    def poison(self, kind: str, field: str, value: str, n: int = 1, *, topic: str | None = None) -> None:
        """The next `n` topic messages on each connection of `kind` (only those of `topic`, when given)
        carry `value`, a raw JSON fragment inserted verbatim, as `field` of their data: the data object of a
        ticker or book, every row of a data array (position, order, trades). The field is added if the
        message lacks it. E.g. `poison("linear", "markPrice", "1e300", topic="tickers.BTCUSDT")`, a bare
        number where Bybit sends a string; `'"-5"'`, `'"NaN"'`; `poison("private", "size", '"-5"')`.
        Messages without a data object or rows (acks, pongs) pass untouched and are not counted."""
        if n < 1:
            raise ValueError("poison() takes n >= 1")
        for conn in self._targets(kind):
            conn.poisons.append(Poison(field=field, value=value, left=n, topic=topic))

    def send_garbage(self, kind: str, data: bytes | str, *, raw: bool = False) -> None:
        """Send `data` on each connection of `kind`: a text frame (str), a binary frame (bytes) or, with
        `raw`, bytes straight onto the socket, breaking the WebSocket framing (truncated frames)."""
        for conn in self._targets(kind):
            if conn.half_open:
                continue
            if raw:
                conn.send_raw(data.encode() if isinstance(data, str) else data)
            elif isinstance(data, str):
                conn.send_raw(conn.ws.send(TextMessage(data=data)))
            else:
                conn.send_raw(conn.ws.send(BytesMessage(data=data)))

    # ------------------------------------------------------------------------------------------- service

    def reject_auth(self, n: int | None = 1) -> None:
        """Refuse the next `n` auth requests with `Params Error` (None: every one until `heal()`)."""
        if n is None or self.faults.reject_auth is None:
            self.faults.reject_auth = None
        else:
            self.faults.reject_auth += n

    def fail_subscribe(self, topic: str, n: int | None = None) -> None:
        """Fail the next `n` subscribe requests that contain `topic` (None: all until `heal()`)."""
        self.faults.fail_topics[topic] = n

    def restart_service(self, now: float | None = None, *, drop_links: bool = False) -> None:
        """A service restart: fresh snapshots, order books from u=1 (BYBIT_V5.md section 5); optionally every
        link is cut without a close frame too."""
        self.venue.restart(self._now if now is None else now)
        if drop_links:
            self.drop_link("all", close_frame=False)

    def clock_skew(self, ms: int) -> None:
        """The exchange's clock runs `ms` ahead of the client's (negative: behind). Auth `expires` and REST
        timestamps are checked against it, and it stamps what the exchange sends: pongs, REST `time`, and
        the `ts` / `cts` / `creationTime` of every market and private message (sent from now on)."""
        self.faults.skew_ms = ms

    def geo_block(self, on: bool = True) -> None:
        """Answer every upgrade with HTTP 403, as Bybit does for blocked regions (BYBIT_V5.md section 8)."""
        self.faults.geo_block = on

    # ---------------------------------------------------------------------------------------------- REST

    def rest_fail(
        self, n: int = 1, status: int = 200, ret_code: int | None = 10016, *, path: str | None = None
    ) -> None:
        """Fail the next `n` REST requests (of `path` only, e.g. "/v5/market/tickers", when given): HTTP
        `status` (502, 503: a gateway page), or with status 200 a Bybit `retCode` error (10016: server
        error)."""
        if path is None:
            self.faults.rest_failures.extend([(status, ret_code)] * n)
        else:
            self._rest.rest_faults.failures.extend([(path, status, ret_code)] * n)

    def rest_delay(self, seconds: float, *, path: str | None = None) -> None:
        """REST requests (of `path` only, when given) reach the exchange `seconds` late, so their answers come
        that much later and show the market of then (0 stops it). Whoever carries the request waits: the
        served exchange sleeps before answering (`rest_latency`); the Simulation adds the delay without
        `path` to the trip of its position fetches."""
        if seconds < 0:
            raise ValueError("rest_delay takes seconds >= 0")
        if path is None:
            self.faults.rest_delay = seconds
        elif seconds:
            self._rest.rest_faults.delays[path] = seconds
        else:
            self._rest.rest_faults.delays.pop(path, None)

    def rest_rate_limit(self, n: int = 1, *, path: str | None = None) -> None:
        """Answer the next `n` REST requests (of `path` only, when given) as over their limit, whatever the
        count: a public market endpoint with the IP limit's HTTP 403 "access too frequent", a signed one with
        retCode 10006 "Too many visits!" and `X-Bapi-Limit-Status: 0`. No ban follows."""
        self._rest.rest_faults.limited.extend([path] * n)

    def rest_mark_divergence(
        self, symbol: str, percent: str | Decimal | float, category: str = "linear"
    ) -> None:
        """REST's `markPrice` of `symbol` (the tickers answer and the position list's rows) is off by
        `percent` (e.g. 2 or "-0.5", rounded to the tick) while the stream keeps pushing the true mark: a
        REST/stream disagreement. 0 clears it."""
        pct = Decimal(str(percent))
        if not pct.is_finite() or pct <= -100:
            raise ValueError(f"percent must be a finite number above -100, got {percent!r}")
        if category == "spot":
            raise ValueError("spot tickers have no markPrice")
        if pct == 0:
            self._rest.rest_faults.mark_divergence.pop((category, symbol), None)
        else:
            self._rest.rest_faults.mark_divergence[(category, symbol)] = pct

    def heal(self) -> None:
        """Clear every pending fault. Half-open sockets stay dead: the client must notice and redial."""
        self.faults.reject_auth = 0
        self.faults.fail_topics.clear()
        self.faults.geo_block = False
        self.faults.skew_ms = 0
        self.faults.rest_failures.clear()
        self.faults.rest_delay = 0.0
        self._rest.heal()  # endpoint faults, the REST mark divergence, an IP ban
        for conn in self._conns.values():
            conn.heal()
