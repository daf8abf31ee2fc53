"""The FakeExchange's trading endpoints: parameters in Bybit's names in, the venue's calls, `result` out.

Endpoints and their `result` shapes follow bybit-exchange/docs `docs/v5/order/{create-order,amend-order,
cancel-order,cancel-all,open-order}.mdx`, `docs/v5/position/{tpsl,leverage}.mdx` and
`docs/v5/account/wallet-balance.mdx`. A refusal is `Refused(retCode, retMsg)`; the venue's own refusals carry
`ret_code`/`ret_msg` (its `OrderRejected`) and are passed on unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["RATE_LIMITS", "TRADE_ROUTES", "Refused", "TradeRoutes"]

Json = dict[str, Any]
Pushes = list[tuple[str, Json]]

# (method, path) -> requests per second per UID (docs/v5/rate-limit.mdx, the "trade" and "position" rows)
RATE_LIMITS: dict[tuple[str, str], int] = {
    ("POST", "/v5/order/create"): 10,
    ("POST", "/v5/order/amend"): 10,
    ("POST", "/v5/order/cancel"): 10,
    ("POST", "/v5/order/cancel-all"): 1,
    ("GET", "/v5/order/realtime"): 50,
    ("POST", "/v5/position/trading-stop"): 10,
    ("POST", "/v5/position/set-leverage"): 10,
    ("GET", "/v5/account/wallet-balance"): 50,
    ("GET", "/v5/position/list"): 50,
}
TRADE_ROUTES = frozenset(k for k in RATE_LIMITS if k[1] != "/v5/position/list")
_CATEGORIES = ("linear", "inverse", "spot", "option")


class Refused(Exception):
    """A request Bybit answers with `ret_code` / `ret_msg` (HTTP 200)."""

    def __init__(self, ret_code: int, ret_msg: str) -> None:
        super().__init__(f"{ret_code}: {ret_msg}")
        self.ret_code = ret_code
        self.ret_msg = ret_msg


def _text(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name, "")
    return "" if value is None else str(value)


def _decimal(params: Mapping[str, Any], name: str, required: bool = False) -> Decimal | None:
    text = _text(params, name)
    if not text:
        if required:
            raise Refused(10001, f"params error: {name} is required")
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise Refused(10001, f"params error: {name} invalid") from None


def _category(params: Mapping[str, Any], allowed: tuple[str, ...] = _CATEGORIES) -> str:
    category = _text(params, "category")
    if category not in allowed:
        raise Refused(10001, "params error: Category is invalid")
    return category


def _symbol(params: Mapping[str, Any]) -> str:
    symbol = _text(params, "symbol")
    if not symbol:
        raise Refused(10001, "params error: symbol is required")
    return symbol


def _idx(params: Mapping[str, Any]) -> int:
    value = params.get("positionIdx", 0)
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise Refused(10001, "params error: positionIdx invalid") from None


def _bool(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name, False)
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("true", "1")


def _names(row: Json, order_id: str, link_id: str) -> bool:
    return bool(row["orderId"] == order_id or (link_id and row["orderLinkId"] == link_id))


class TradeRoutes:
    """One method per trading endpoint: `(params, now) -> (result, pushes)`."""

    def __init__(self, venue: Any) -> None:
        self._venue = venue
        self.routes: dict[tuple[str, str], Callable[[Mapping[str, Any], float], tuple[Json, Pushes]]] = {
            ("POST", "/v5/order/create"): self.create,
            ("POST", "/v5/order/amend"): self.amend,
            ("POST", "/v5/order/cancel"): self.cancel,
            ("POST", "/v5/order/cancel-all"): self.cancel_all,
            ("GET", "/v5/order/realtime"): self.realtime,
            ("POST", "/v5/position/trading-stop"): self.trading_stop,
            ("POST", "/v5/position/set-leverage"): self.set_leverage,
            ("GET", "/v5/account/wallet-balance"): self.wallet_balance,
        }

    def create(self, params: Mapping[str, Any], now: float) -> tuple[Json, Pushes]:
        """POST /v5/order/create: `{orderId, orderLinkId}`."""
        category, symbol = _category(params), _symbol(params)
        side, order_type = _text(params, "side"), _text(params, "orderType")
        if side not in ("Buy", "Sell"):
            raise Refused(10001, "params error: side invalid")
        if order_type not in ("Market", "Limit"):
            raise Refused(10001, "params error: orderType invalid")
        qty = _decimal(params, "qty", required=True)
        assert qty is not None
        link_id = _text(params, "orderLinkId")
        oid, pushes = self._venue.create_order(
            category, symbol, side, order_type, qty, now,
            price=_decimal(params, "price"), position_idx=_idx(params),
            reduce_only=_bool(params, "reduceOnly"), link_id=link_id,
            time_in_force=_text(params, "timeInForce"),
        )  # fmt: skip
        return {"orderId": oid, "orderLinkId": link_id}, pushes

    def _which(self, params: Mapping[str, Any]) -> tuple[str, str, str, str]:
        category, symbol = _category(params), _symbol(params)
        order_id, link_id = _text(params, "orderId"), _text(params, "orderLinkId")
        if not order_id and not link_id:
            raise Refused(10001, "params error: orderId or orderLinkId is required")
        return category, symbol, order_id, link_id

    def amend(self, params: Mapping[str, Any], now: float) -> tuple[Json, Pushes]:
        """POST /v5/order/amend: `{orderId, orderLinkId}`."""
        category, symbol, order_id, link_id = self._which(params)
        order, pushes = self._venue.amend_order(
            category, symbol, now, order_id=order_id, link_id=link_id,
            qty=_decimal(params, "qty"), price=_decimal(params, "price"),
        )  # fmt: skip
        return {"orderId": order.order_id, "orderLinkId": order.link_id}, pushes

    def cancel(self, params: Mapping[str, Any], now: float) -> tuple[Json, Pushes]:
        """POST /v5/order/cancel: `{orderId, orderLinkId}`."""
        category, symbol, order_id, link_id = self._which(params)
        order, pushes = self._venue.cancel_order(category, symbol, now, order_id=order_id, link_id=link_id)
        return {"orderId": order.order_id, "orderLinkId": order.link_id}, pushes

    def cancel_all(self, params: Mapping[str, Any], now: float) -> tuple[Json, Pushes]:
        """POST /v5/order/cancel-all: `{list: [{orderId, orderLinkId}], success: "1"}`."""
        category = _category(params)
        orders, pushes = self._venue.cancel_all(
            category, now, symbol=_text(params, "symbol"), base=_text(params, "baseCoin"),
            settle=_text(params, "settleCoin"),
        )  # fmt: skip
        listed = [{"orderId": o.order_id, "orderLinkId": o.link_id} for o in orders]
        return {"list": listed, "success": "1"}, pushes

    def realtime(self, params: Mapping[str, Any], now: float) -> tuple[Json, Pushes]:
        """GET /v5/order/realtime: open orders (and, by orderId/orderLinkId, recently closed ones)."""
        category = _category(params)
        symbol, base, settle = _text(params, "symbol"), _text(params, "baseCoin"), _text(params, "settleCoin")
        order_id, link_id = _text(params, "orderId"), _text(params, "orderLinkId")
        if category == "linear" and not (symbol or base or settle or order_id or link_id):
            raise Refused(
                10001, "Missing some parameters that must be filled in, symbol or settleCoin or baseCoin"
            )
        limit_text = _text(params, "limit") or "20"
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 50:
            raise Refused(10001, "params error: limit must be between 1 and 50")
        orders = self._venue.open_orders(
            category, symbol=symbol, base=base, settle=settle, order_id=order_id, link_id=link_id
        )
        rows: list[Json] = self._venue.order_rows(orders, now)
        if not rows and (order_id or link_id):
            closed = self._venue.account.closed.values()
            rows = [r for r in closed if r["category"] == category and _names(r, order_id, link_id)]
        return {"category": category, "list": rows[: int(limit_text)], "nextPageCursor": ""}, []

    def trading_stop(self, params: Mapping[str, Any], now: float) -> tuple[Json, Pushes]:
        """POST /v5/position/trading-stop (tpslMode Full): `{}`."""
        category, symbol = _category(params, ("linear", "inverse")), _symbol(params)
        mode = _text(params, "tpslMode") or "Full"
        if mode != "Full":
            raise Refused(10001, "params error: only tpslMode Full is supported by this venue")
        pushes = self._venue.set_trading_stop(
            category, symbol, now, position_idx=_idx(params), take_profit=_decimal(params, "takeProfit"),
            stop_loss=_decimal(params, "stopLoss"), trailing=_decimal(params, "trailingStop"),
        )  # fmt: skip
        return {}, pushes

    def set_leverage(self, params: Mapping[str, Any], now: float) -> tuple[Json, Pushes]:
        """POST /v5/position/set-leverage: `{}`."""
        category, symbol = _category(params, ("linear", "inverse")), _symbol(params)
        buy = _decimal(params, "buyLeverage", required=True)
        sell = _decimal(params, "sellLeverage", required=True)
        return {}, self._venue.set_leverage(category, symbol, buy, sell, now)

    def wallet_balance(self, params: Mapping[str, Any], now: float) -> tuple[Json, Pushes]:
        """GET /v5/account/wallet-balance (accountType UNIFIED): `{list: [account row]}`."""
        if _text(params, "accountType") != "UNIFIED":
            raise Refused(10001, "accountType only support UNIFIED.")
        coins = [c for c in _text(params, "coin").split(",") if c]
        return {"list": [self._venue.wallet_balance(coins, now)]}, []
