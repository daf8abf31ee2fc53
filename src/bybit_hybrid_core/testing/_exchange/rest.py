"""The FakeExchange's REST side: `GET /v5/position/list` and the trading endpoints (`orders.py`), signed as
Bybit V5 requires.

Signature (Bybit V5 REST guide, `docs/v5/guide.mdx`): `X-BAPI-SIGN = hex(HMAC_SHA256(secret, timestamp +
api_key + recv_window + payload))`, the payload being the query string of a GET and the JSON body of a POST,
with `X-BAPI-API-KEY`, `X-BAPI-TIMESTAMP` and `X-BAPI-RECV-WINDOW` headers. The timestamp must satisfy
`server_time - recv_window <= timestamp < server_time + 1000`. Error codes and texts are Bybit's
(`docs/v5/error.mdx`).

Rate limits (`docs/v5/rate-limit.mdx`): each endpoint allows `RATE_LIMITS[(method, path)]` requests per
second of exchange time; every signed answer carries `X-Bapi-Limit` (the limit), `X-Bapi-Limit-Status`
(requests left in the window) and `X-Bapi-Limit-Reset-Timestamp` (ms when the window ends); one request over
the limit is answered with retCode 10006.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import msgspec

from ..._config import Credentials
from .ops import ExchangeFaults
from .orders import RATE_LIMITS, Refused, TradeRoutes

__all__ = ["PositionSource", "RestHandler"]

Pushes = list[tuple[str, dict[str, Any]]]

POSITION_LIST = "/v5/position/list"
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


class PositionSource(Protocol):
    def rest_position_list(self, query: Mapping[str, str], now: float | None = None) -> dict[str, Any]: ...


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
        if self._faults.rest_failures:
            status, ret_code = self._faults.rest_failures.pop(0)
            if status != 200:
                return status, {}, _HTTP_BODIES.get(status, b"")
            return 200, {}, self._error(ret_code or 10016, now)
        parts = urlsplit(target)
        route = (method.upper(), parts.path)
        known = route == ("GET", POSITION_LIST) or (self._trade is not None and route in self._trade.routes)
        if not known:
            return 404, {}, _HTTP_BODIES[404]
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
        return msgspec.json.encode(answer)

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
