"""The FakeExchange's REST side: `GET /v5/position/list`, signed as Bybit V5 requires.

Signature (Bybit V5 REST guide, `docs/v5/guide.mdx`): `X-BAPI-SIGN = hex(HMAC_SHA256(secret, timestamp +
api_key + recv_window + query_string))`, with `X-BAPI-API-KEY`, `X-BAPI-TIMESTAMP` and `X-BAPI-RECV-WINDOW`
headers. The timestamp must satisfy `server_time - recv_window <= timestamp < server_time + 1000`.
Error codes and texts are Bybit's (`docs/v5/error.mdx`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import msgspec

from ..._config import Credentials
from .ops import ExchangeFaults

__all__ = ["PositionSource", "RestHandler"]

POSITION_LIST = "/v5/position/list"
_TEXTS = {
    10001: "params error",
    10002: "invalid request, please check your server timestamp or recv_window param",
    10003: "API key is invalid.",
    10004: "Error sign, please check your signature generation algorithm.",
    10006: "Too many visits!",
    10016: "Server error.",
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
    ) -> None:
        self._venue = venue
        self._credentials = credentials
        self._faults = faults
        self._wall_ms = wall_ms
        self.requests = 0

    def handle(self, method: str, target: str, headers: Mapping[str, str], now: float) -> tuple[int, bytes]:
        self.requests += 1
        if self._faults.rest_failures:
            status, ret_code = self._faults.rest_failures.pop(0)
            if status != 200:
                return status, _HTTP_BODIES.get(status, b"")
            return 200, self._error(ret_code or 10016, now)
        parts = urlsplit(target)
        if method.upper() != "GET" or parts.path != POSITION_LIST:
            return 404, _HTTP_BODIES[404]
        code = self._auth_code(parts.query, {k.lower(): v for k, v in headers.items()}, now)
        if code:
            return 200, self._error(code, now)
        # Parameter checks (category, settleCoin, limit, cursor) and their texts are the venue's.
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        answer = dict(self._venue.rest_position_list(query, now))
        if "retCode" not in answer:  # the venue may hand back only the `result` part
            answer = {
                "retCode": 0,
                "retMsg": "OK",
                "result": answer,
                "retExtInfo": {},
                "time": self._wall_ms(now),
            }
        return 200, msgspec.json.encode(answer)

    def _auth_code(self, query: str, headers: Mapping[str, str], now: float) -> int:
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
        expected = self._credentials.sign(f"{stamp}{key}{window}{query}")
        return 0 if hmac.compare_digest(sign, expected) else 10004

    def _error(self, code: int, now: float) -> bytes:
        body = {
            "retCode": code,
            "retMsg": _TEXTS.get(code, "error"),
            "result": {},
            "retExtInfo": {},
            "time": self._wall_ms(now),
        }
        return msgspec.json.encode(body)
