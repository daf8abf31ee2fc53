"""The FakeExchange's REST side: `GET /v5/position/list` and the trading endpoints (`orders.py`), signed as
Bybit V5 requires, and the public market data `GET /v5/market/tickers` and `GET /v5/market/time`.

Signature (Bybit V5 REST guide, `docs/v5/guide.mdx`): `X-BAPI-SIGN = hex(HMAC_SHA256(secret, timestamp +
api_key + recv_window + payload))`, the payload being the query string of a GET and the JSON body of a POST,
with `X-BAPI-API-KEY`, `X-BAPI-TIMESTAMP` and `X-BAPI-RECV-WINDOW` headers. The timestamp must satisfy
`server_time - recv_window <= timestamp < server_time + 1000`. Error codes and texts are Bybit's
(`docs/v5/error.mdx`).

Rate limits (`docs/v5/rate-limit.mdx`): each endpoint allows `RATE_LIMITS[(method, path)]` requests per
second of exchange time; every signed answer carries `X-Bapi-Limit` (the limit), `X-Bapi-Limit-Status`
(requests left in the window) and `X-Bapi-Limit-Reset-Timestamp` (ms when the window ends); one request over
the limit is answered with retCode 10006.

Public market data (`GET /v5/market/tickers`, `GET /v5/market/time`) needs no signature, as on Bybit. It is
limited per IP only (`docs/v5/rate-limit/rate-limit.mdx`, "HTTP IP limit": 600 requests within a 5-second
window per IP, counted over all traffic to the REST host; over it, "403, access too frequent" and the IP
must wait at least 10 minutes). The fake counts every REST request in that window (`IpLimit`, configurable),
answers a request over it, and every request during the ban after it, with HTTP 403, and puts the window's
figures in the `X-Bapi-Limit*` headers of its public answers.
"""

from __future__ import annotations

import hmac
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import msgspec

from ..._config import Credentials
from .ops import ExchangeFaults
from .orders import RATE_LIMITS, Refused, TradeRoutes
from .replies import server_time_result, ticker_row

__all__ = ["IpLimit", "MarketSource", "PositionSource", "RestFaults", "RestHandler"]

Pushes = list[tuple[str, dict[str, Any]]]

POSITION_LIST = "/v5/position/list"
MARKET_TICKERS = "/v5/market/tickers"
MARKET_TIME = "/v5/market/time"
PUBLIC_ROUTES = frozenset({("GET", MARKET_TICKERS), ("GET", MARKET_TIME)})
_CATEGORIES = ("linear", "inverse", "spot", "option")
_TEXTS = {
    10001: "params error",
    10002: "invalid request, please check your server timestamp or recv_window param",
    10003: "API key is invalid.",
    10004: "Error sign, please check your signature generation algorithm.",
    10006: "Too many visits!",
    10016: "Server error.",
    110001: "order not exists or too late to cancel",
}
_HTTP_BODIES = {
    403: b"<html><body><h1>403 Forbidden</h1></body></html>",
    404: b"404 page not found",
    502: b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    503: b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
}
# The docs quote only the text ("403, access too frequent"); the exact bytes of the body are not documented.
_IP_LIMITED = b"access too frequent"


class PositionSource(Protocol):
    def rest_position_list(self, query: Mapping[str, str], now: float | None = None) -> dict[str, Any]: ...


class MarketSource(Protocol):
    """The part of the venue the public market endpoints read (`Venue` has it; a stub venue may not)."""

    def symbols(self, category: str) -> list[str]: ...
    def ticker(self, category: str, symbol: str) -> dict[str, str]: ...
    def instrument(self, category: str, symbol: str) -> Any: ...  # an Instrument: its `tick`


@dataclass
class IpLimit:
    """Bybit's HTTP IP limit: `requests` per `window` seconds, then a ban of `ban` seconds (exchange time)."""

    requests: int = 600
    window: float = 5.0
    ban: float = 600.0


@dataclass
class RestFaults:
    """REST faults scoped to an endpoint, and the REST mark that disagrees with the stream (`faults.py`)."""

    failures: list[tuple[str, int, int | None]] = field(default_factory=list)  # (path, HTTP status, retCode)
    limited: list[str | None] = field(default_factory=list)  # forced over-limit answers: path (None: any)
    delays: dict[str, float] = field(default_factory=dict)  # path -> seconds late
    mark_divergence: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # (category, symbol) -> %

    def clear(self) -> None:
        self.failures.clear()
        self.limited.clear()
        self.delays.clear()
        self.mark_divergence.clear()

    def take_failure(self, path: str) -> tuple[int, int | None] | None:
        for i, (where, status, ret_code) in enumerate(self.failures):
            if where == path:
                del self.failures[i]
                return status, ret_code
        return None

    def take_limited(self, path: str) -> bool:
        for i, where in enumerate(self.limited):
            if where is None or where == path:
                del self.limited[i]
                return True
        return False


class RestHandler:
    """Answers REST requests: `(status, body)`."""

    def __init__(
        self,
        venue: PositionSource,
        credentials: Credentials,
        faults: ExchangeFaults,
        wall_ms: Callable[[float], int],
        push: Callable[[Pushes, float], None] | None = None,
    ) -> None:
        self._venue = venue
        self._credentials = credentials
        self._faults = faults
        self._wall_ms = wall_ms
        self._push = push
        self._trade = TradeRoutes(venue) if hasattr(venue, "create_order") else None
        self.rate_limits = dict(RATE_LIMITS)  # tests may lower one to see retCode 10006
        self._windows: dict[tuple[str, str], tuple[int, int]] = {}  # route -> (window start ms, count)
        self.requests = 0
        self.ip_limit = IpLimit()
        self.rest_faults = RestFaults()
        self._ip_window: deque[float] = deque()  # `now` of each request counted in the IP window
        self._banned_until: float | None = None
        market = venue if hasattr(venue, "ticker") and hasattr(venue, "symbols") else None
        self._market: MarketSource | None = market  # type: ignore[assignment]  # duck-typed just above
        # Set by the exchange: bring a market nobody streams up to `now` before it is quoted over REST.
        self.catch_up: Callable[[float], None] | None = None

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], now: float, body: bytes = b""
    ) -> tuple[int, bytes]:
        """`(status, body)` of one request (see `respond` for the headers too)."""
        status, _, answer = self.respond(method, target, headers, now, body)
        return status, answer

    def respond(
        self, method: str, target: str, headers: Mapping[str, str], now: float, body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        """`(status, response headers, body)` of one request; the pushes it causes go out first."""
        self.requests += 1
        parts = urlsplit(target)
        route = (method.upper(), parts.path)
        failure = self.rest_faults.take_failure(parts.path)
        if failure is None and self._faults.rest_failures:
            failure = self._faults.rest_failures.pop(0)
        if failure is not None:
            status, ret_code = failure
            if status != 200:
                return status, {}, _HTTP_BODIES.get(status, b"")
            return 200, {}, self._error(ret_code or 10016, now)
        ip_headers, ip_ok = self._ip(now)
        if not ip_ok:
            return 403, {}, _IP_LIMITED
        public = route in PUBLIC_ROUTES and (self._market is not None or route[1] == MARKET_TIME)
        known = (
            public
            or route == ("GET", POSITION_LIST)
            or (self._trade is not None and route in self._trade.routes)
        )
        if not known:
            return 404, {}, _HTTP_BODIES[404]
        if self.rest_faults.take_limited(parts.path):  # forced: the answer this endpoint gives over its limit
            if public:
                return 403, {}, _IP_LIMITED
            limit = str(self.rate_limits.get(route, 50))
            stamp = str(self._wall_ms(now) + 1000)
            over = {"X-Bapi-Limit": limit, "X-Bapi-Limit-Status": "0", "X-Bapi-Limit-Reset-Timestamp": stamp}
            return 200, over, self._error(10006, now)
        if public:
            return 200, ip_headers, msgspec.json.encode(self.market(route[1], parts.query, now))
        text = body.decode("utf-8", "replace")
        payload = parts.query if route[0] == "GET" else text
        code = self._auth_code(payload, {k.lower(): v for k, v in headers.items()}, now)
        if code:
            return 200, {}, self._error(code, now)
        limit_headers, allowed = self._rate(route, now)
        if not allowed:
            return 200, limit_headers, self._error(10006, now)
        if route == ("GET", POSITION_LIST):
            return 200, limit_headers, self._position_list(parts.query, now)
        assert self._trade is not None
        if route[0] == "GET":
            params: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
        else:
            try:
                decoded = msgspec.json.decode(text or "{}")
            except msgspec.DecodeError:
                return 200, limit_headers, self._error(10001, now, "params error: the body is not JSON")
            if not isinstance(decoded, dict):
                return 200, limit_headers, self._error(10001, now, "params error: the body is not an object")
            params = decoded
        return 200, limit_headers, msgspec.json.encode(self.trade(route, params, now))

    def trade(self, route: tuple[str, str], params: Mapping[str, Any], now: float) -> dict[str, Any]:
        """Run one trading endpoint on already-checked `params` (no signature, no rate limit): Bybit's
        answer as a dict; the private pushes it causes go out first."""
        if self._trade is None or route not in self._trade.routes:
            raise KeyError(f"no trading endpoint {route} on this venue")
        try:
            result, pushes = self._trade.routes[route](params, now)
        except Refused as exc:
            return self._error_body(exc.ret_code, now, exc.ret_msg)
        except Exception as exc:  # the venue's OrderRejected (duck-typed: testing/_exchange imports no venue)
            ret_code, ret_msg = getattr(exc, "ret_code", None), getattr(exc, "ret_msg", None)
            if ret_code is None:
                raise
            return self._error_body(int(ret_code), now, str(ret_msg))
        if pushes and self._push is not None:
            self._push(pushes, now)
        return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": self._wall_ms(now)}

    def _position_list(self, query_text: str, now: float) -> bytes:
        # Parameter checks (category, settleCoin, limit, cursor) and their texts are the venue's.
        query = dict(parse_qsl(query_text, keep_blank_values=True))
        answer = dict(self._venue.rest_position_list(query, now))
        if "retCode" not in answer:  # the venue may hand back only the `result` part
            answer = {
                "retCode": 0,
                "retMsg": "OK",
                "result": answer,
                "retExtInfo": {},
                "time": self._wall_ms(now),
            }
        result = answer.get("result")
        if self.rest_faults.mark_divergence and isinstance(result, dict):
            category = str(result.get("category") or query.get("category", ""))
            for row in result.get("list") or ():
                if isinstance(row, dict) and row.get("markPrice"):
                    row["markPrice"] = self._diverged(category, str(row.get("symbol", "")), row["markPrice"])
        return msgspec.json.encode(answer)

    # ----------------------------------------------------------------------------- public market data

    def market(self, path: str, query_text: str, now: float) -> dict[str, Any]:
        """Bybit's answer to a public market endpoint (`path` one of `PUBLIC_ROUTES`) as a dict."""
        if path == MARKET_TIME:
            return self._ok(server_time_result(self._wall_ns(now)), now)
        if path != MARKET_TICKERS or self._market is None:
            raise KeyError(f"no public market endpoint {path} on this venue")
        query = dict(parse_qsl(query_text, keep_blank_values=True))
        category = query.get("category", "")
        if category not in _CATEGORIES:
            # the real answer to a bad category on V5 market and trade endpoints (several client fixtures)
            return self._error_body(10001, now, "Illegal category")
        if self.catch_up is not None:
            self.catch_up(now)
        listed = self._market.symbols(category)
        symbol, base, expiry = query.get("symbol", ""), query.get("baseCoin", ""), query.get("expDate", "")
        if symbol:
            if symbol not in listed:
                # {"retCode":10001,"retMsg":"Not supported symbols","result":{},...}: Bybit's answer for a
                # symbol it does not list (ccxt/ccxt ts/src/bybit.ts, its exceptions table, quotes a 2024-09
                # one); the same for every category
                return self._error_body(10001, now, "Not supported symbols")
            symbols = [symbol]
        elif category == "option":
            if not base:
                # the docs: "If category=option, symbol or baseCoin must be passed"; the text is *invented*
                return self._error_body(10001, now, "params error: symbol or baseCoin is required")
            symbols = [s for s in listed if s.split("-")[0] == base and expiry in ("", s.split("-")[1])]
        else:
            symbols = listed
        rows = [self._ticker(category, s) for s in symbols]
        return self._ok({"category": category, "list": rows}, now)

    def _ticker(self, category: str, symbol: str) -> dict[str, str]:
        assert self._market is not None
        row = ticker_row(category, self._market.ticker(category, symbol))
        if row.get("markPrice"):
            row["markPrice"] = self._diverged(category, symbol, row["markPrice"])
        return row

    def _diverged(self, category: str, symbol: str, mark: str) -> str:
        """A REST `markPrice` (tickers and position rows alike) off by the `rest_mark_divergence` percent of
        the symbol, on the tick; the stream keeps the true mark."""
        percent = self.rest_faults.mark_divergence.get((category, symbol))
        if percent is None or self._market is None:
            return mark
        tick = Decimal(str(self._market.instrument(category, symbol).tick))
        off = Decimal(mark) * (1 + percent / 100)
        return str((off / tick).to_integral_value() * tick)

    def _ip(self, now: float) -> tuple[dict[str, str], bool]:
        """Count one request in the IP window: the limit headers, and False when it is refused (over the
        limit, which starts the ban, or during the ban)."""
        limit, window = self.ip_limit, self._ip_window
        if self._banned_until is not None and now < self._banned_until:
            return {}, False
        self._banned_until = None
        while window and window[0] <= now - limit.window:
            window.popleft()
        if len(window) >= limit.requests:
            self._banned_until = now + limit.ban
            return {}, False
        window.append(now)
        reset = self._wall_ms(window[0] + limit.window)
        return {
            "X-Bapi-Limit": str(limit.requests),
            "X-Bapi-Limit-Status": str(limit.requests - len(window)),
            "X-Bapi-Limit-Reset-Timestamp": str(reset),
        }, True

    def heal(self) -> None:
        """Clear the REST faults and lift an IP ban (the limit itself stays as configured)."""
        self.rest_faults.clear()
        self._ip_window.clear()
        self._banned_until = None

    @property
    def ip_banned_until(self) -> float | None:
        """The `now` at which the IP ban ends (None: not banned)."""
        return self._banned_until

    def _wall_ns(self, now: float) -> int:
        # the same millisecond as `time` (the docs' example: time 1688639403423, timeNano 16886394034232...),
        # with the sub-millisecond part of `now` below it
        sub = round(now * 1e9) - round(now * 1000) * 1_000_000
        return self._wall_ms(now) * 1_000_000 + min(max(sub, 0), 999_999)

    def _ok(self, result: dict[str, Any], now: float) -> dict[str, Any]:
        return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": self._wall_ms(now)}

    # -------------------------------------------------------------------------------------- limits, auth

    def _rate(self, route: tuple[str, str], now: float) -> tuple[dict[str, str], bool]:
        """Count one request of `route` in its one-second window: the limit headers and whether it is in."""
        limit = self.rate_limits.get(route, 50)
        wall = self._wall_ms(now)
        start, count = self._windows.get(route, (wall, 0))
        if wall >= start + 1000:
            start, count = wall, 0
        count += 1
        self._windows[route] = (start, count)
        headers = {
            "X-Bapi-Limit": str(limit),
            "X-Bapi-Limit-Status": str(max(0, limit - count)),
            "X-Bapi-Limit-Reset-Timestamp": str(start + 1000),
        }
        return headers, count <= limit

    def _auth_code(self, payload: str, headers: Mapping[str, str], now: float) -> int:
        key = headers.get("x-bapi-api-key", "")
        stamp = headers.get("x-bapi-timestamp", "")
        window = headers.get("x-bapi-recv-window", "5000")
        sign = headers.get("x-bapi-sign", "")
        if key != self._credentials.api_key:
            return 10003
        if not stamp.isdigit() or not window.isdigit():
            return 10001
        server = self._wall_ms(now)
        if not server - int(window) <= int(stamp) < server + 1000:
            return 10002
        expected = self._credentials.sign(f"{stamp}{key}{window}{payload}")
        return 0 if hmac.compare_digest(sign, expected) else 10004

    def _error(self, code: int, now: float, text: str | None = None) -> bytes:
        return msgspec.json.encode(self._error_body(code, now, text))

    def _error_body(self, code: int, now: float, text: str | None = None) -> dict[str, Any]:
        return {
            "retCode": code,
            "retMsg": text if text is not None else _TEXTS.get(code, "error"),
            "result": {},
            "retExtInfo": {},
            "time": self._wall_ms(now),
        }
