"""What the FakeExchange says: Bybit V5's reply shapes and texts, per endpoint.

Every shape here is copied from a real or documented payload in `shared/bybit-v5-samples/` (file names in the
comments) or from `shared/protocol/BYBIT_V5.md`; the few texts that no capture shows are marked *invented*.
Key order follows the samples, because msgspec keeps dict order and a reader compares by eye.
"""

from __future__ import annotations

from collections.abc import Iterable
from random import Random
from typing import Any

import msgspec

__all__ = [
    "KINDS",
    "PRIVATE_TOPICS",
    "PUBLIC_KINDS",
    "ConnIds",
    "auth_reply",
    "bad_json_reply",
    "batch_partial_text",
    "dumps",
    "invalid_op_reply",
    "pong_reply",
    "private_base",
    "private_topic_ok",
    "private_variant",
    "public_fail_text",
    "server_time_result",
    "skewed",
    "subscribe_reply",
    "ticker_row",
]

Json = dict[str, Any]

PUBLIC_KINDS: tuple[str, ...] = ("linear", "inverse", "spot", "option")
KINDS: tuple[str, ...] = (*PUBLIC_KINDS, "private")

# BYBIT_V5.md section 6: all-in-one private topics and their per-category variants.
_PRIVATE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "position": ("linear", "inverse", "option"),
    "order": ("spot", "linear", "inverse", "option"),
    "execution": ("spot", "linear", "inverse", "option"),
    "execution.fast": ("spot", "linear", "inverse", "option"),
}
PRIVATE_TOPICS: frozenset[str] = frozenset(
    {
        *_PRIVATE_CATEGORIES,
        *(f"{base}.{cat}" for base, cats in _PRIVATE_CATEGORIES.items() for cat in cats),
        "wallet",
        "greeks",
        "dcp.future",
        "dcp.spot",
        "dcp.option",
    }
)
# Spot answers "Invalid symbol" for a known topic family with an unknown symbol (BYBIT_V5.md section 4).
_PUBLIC_FAMILIES = ("tickers.", "orderbook.", "publicTrade.", "kline.", "allLiquidation.", "liquidation.")


def private_topic_ok(topic: str) -> bool:
    return topic in PRIVATE_TOPICS


def private_base(topic: str) -> str:
    """`position.linear` -> `position`; `execution.fast.spot` -> `execution.fast`; `wallet` -> `wallet`."""
    head, _, tail = topic.rpartition(".")
    return head if head in _PRIVATE_CATEGORIES and tail in _PRIVATE_CATEGORIES[head] else topic


# Envelope fields that carry the exchange's clock: public `ts` (a book's `cts` too), private `creationTime`.
_STAMPS = ("ts", "cts", "creationTime")


def skewed(message: Json, skew_ms: int) -> Json:
    """`message` with its envelope timestamps moved by `skew_ms` (a copy; the venue's own is untouched).

    The venue stamps messages from its unskewed clock; a real exchange whose clock is off stamps every
    message with that clock, so `clock_skew` must move these too, or a client's clock-offset estimate
    (from pongs) and its latency (from `ts`) would disagree. Row fields (`updatedTime`, `execTime`, trade
    `T`) are the venue's business data and stay as they are."""
    if not skew_ms:
        return message
    out = dict(message)
    for name in _STAMPS:
        value = out.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            out[name] = value + skew_ms
    return out


def dumps(obj: Json) -> str:
    """Compact JSON as Bybit's Go servers write it: `<`, `>` and `&` escaped (sample
    `subscribe-failure-args-size-spot.json` shows `\\u003e`). Those bytes never occur outside strings."""
    text = msgspec.json.encode(obj).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class ConnIds:
    """Connection ids in Bybit's observed formats (BYBIT_V5.md section 8), drawn from a seeded Random.

    Public: `xxxxxxxxxxxxxxxxxxxx-xxxxx` (2026 style). Option: long hex-dash. Private: the same base with a
    suffix that changes on every response, as captured (`...-97x2` then `...-98gm` on one connection).
    """

    _ALPHABET = "0123456789abcdefghijklmnopqrstuv"

    def __init__(self, rng: Random) -> None:
        self._rng = rng

    def _word(self, n: int, alphabet: str) -> str:
        return "".join(self._rng.choice(alphabet) for _ in range(n))

    def new(self, kind: str) -> str:
        if kind == "option":
            hexa = "0123456789abcdef"
            return "-".join(self._word(n, hexa) for n in (16, 8, 8, 16, 8))
        if kind == "private":
            return self._word(20, self._ALPHABET)
        return f"{self._word(20, self._ALPHABET)}-{self._word(5, self._ALPHABET)}"

    @staticmethod
    def private_suffix(base: str, counter: int) -> str:
        digits = ""
        n = counter + 36**2
        while n:
            n, r = divmod(n, 36)
            digits = "0123456789abcdefghijklmnopqrstuvwxyz"[r] + digits
        return f"{base}-{digits}"


def _with_req_id(req_id: str | None, body: Json, *, always: bool = False) -> Json:
    if req_id is None and not always:
        return body
    return {"req_id": req_id or "", **body}


def pong_reply(kind: str, req_id: str | None, conn_id: str, wall_ms: int) -> Json:
    """The five pong shapes (BYBIT_V5.md section 3); trade's is not served here."""
    if kind == "option":  # pong-public-option-spread.json: args + op only
        return {"args": [str(wall_ms)], "op": "pong"}
    if kind == "private":  # pong-private*.json: req_id absent when none was sent
        return _with_req_id(req_id, {"op": "pong", "args": [str(wall_ms)], "conn_id": conn_id})
    body: Json = {"success": True, "ret_msg": "pong", "conn_id": conn_id}
    if kind == "spot":  # pong-public-spot*.json: req_id only when sent
        if req_id is not None:
            body["req_id"] = req_id
    else:  # pong-public-linear*.json: req_id "" when none was sent
        body["req_id"] = req_id or ""
    body["op"] = "ping"
    return body


def auth_reply(success: bool, ret_msg: str, req_id: str | None, conn_id: str) -> Json:
    """auth-success*.json / auth-failure-params-error*.json."""
    return _with_req_id(req_id, {"success": success, "ret_msg": ret_msg, "op": "auth", "conn_id": conn_id})


def subscribe_reply(
    kind: str,
    op: str,
    req_id: str | None,
    conn_id: str,
    ret_msg: str = "",
    *,
    success: bool = True,
    ok_topics: Iterable[str] = (),
    bad_topics: Iterable[str] = (),
) -> Json:
    """One ack per request, in the endpoint's shape (BYBIT_V5.md section 4)."""
    if kind == "option":  # subscribe-success-public-option*.json: no op, ret_msg or req_id
        data = {"failTopics": list(bad_topics), "successTopics": list(ok_topics)}
        return {"success": success, "conn_id": conn_id, "data": data, "type": "COMMAND_RESP"}
    if kind == "private":  # subscribe-success-private*.json
        return _with_req_id(req_id, {"success": success, "ret_msg": ret_msg, "op": op, "conn_id": conn_id})
    if kind == "spot" and success and op == "subscribe":
        ret_msg = "subscribe"  # subscribe-success-public-spot*.json
    body: Json = {"success": success, "ret_msg": ret_msg, "conn_id": conn_id}
    if kind != "spot" or req_id is not None:  # linear/inverse: req_id "" when none was sent
        body["req_id"] = req_id or ""
    body["op"] = op
    return body


def public_fail_text(kind: str, topic: str) -> str:
    """Why a public subscribe failed (BYBIT_V5.md section 4)."""
    if kind == "spot" and topic.startswith(_PUBLIC_FAMILIES):
        return f"Invalid symbol :[{topic}]"
    return f"error:handler not found,topic:{topic}"


def batch_partial_text(ok: Iterable[str], bad: Iterable[str]) -> str:
    """subscribe-failure-private-unknown-or-conflict.json, verbatim apart from the lists."""
    return (
        "Batch subscription partially succeeded and partially failed."
        f"Successful subscriptions are as follows:[{','.join(ok)}]. "
        "Subscription to the following topics failed because the topic does not exist or there is a "
        f"subscription conflict:[{','.join(bad)}]."
    )


def invalid_op_reply(kind: str, op: str, req_id: str | None, conn_id: str) -> Json:
    """Unknown op: public `error:invalid op` (BYBIT_V5.md section 8); private `Params Error`
    (private-order-create-on-private-stream-params-error.json)."""
    if kind == "private":
        return _with_req_id(
            req_id, {"op": op, "success": False, "conn_id": conn_id, "ret_msg": "Params Error"}
        )
    body: Json = {"success": False, "ret_msg": "error:invalid op", "conn_id": conn_id}
    if kind in ("linear", "inverse") or req_id is not None:
        body["req_id"] = req_id or ""
    body["op"] = op
    return body


def bad_json_reply(kind: str, text: str, conn_id: str) -> Json:
    """Unparseable input. Public: the decoder's text, socket kept open (PROBE-PP; the envelope was not
    captured, so it is *invented* as the smallest failure shape). Private: `Params Error` (believed)."""
    if kind == "private":
        return {"success": False, "ret_msg": "Params Error", "op": "", "conn_id": conn_id}
    found = text.lstrip()[:1] or "EOF"
    ret_msg = (
        "Failed to decode incoming data:readObjectStart: expect { or n, but found "
        f"{found}, error found in #1 byte of ...|{text[:10]}|..., bigger context ...|{text[:40]}|..."
    )
    return {"success": False, "ret_msg": ret_msg, "conn_id": conn_id}


def private_variant(sub: str, topic: str, msg: Json) -> Json | None:
    """What a connection subscribed to `sub` receives of a private push on `topic`: the message itself, the
    rows of one category under the categorised topic (`order.spot` in private-order-spot-real-2023.json),
    or nothing."""
    if sub == topic:
        return msg
    if private_base(sub) != topic:
        return None
    category = sub.rpartition(".")[2]
    rows = [row for row in msg.get("data", ()) if isinstance(row, dict) and row.get("category") == category]
    if not rows:
        return None
    return {**msg, "topic": sub, "data": rows}


# ------------------------------------------------------------------------------------- REST market data

# GET /v5/market/tickers rows, per category, in Bybit's key order (bybit-exchange/docs
# docs/v5/market/tickers.mdx, the response examples and tables; the linear/inverse order is the 2025-10
# page's, which a real BTCUSDT answer of 2025-11 repeats key for key). REST is not the stream's shape: no
# `tickDirection` or `singleOpenInterest*` on linear; option says `bid1Price`/`bid1Iv`/`markIv` where its
# stream says `bidPrice`/`bidIv`/`markPriceIv`; spot carries the top of book its stream lacks.
_DERIVATIVE_ROW = (
    "symbol", "lastPrice", "indexPrice", "markPrice", "prevPrice24h", "price24hPcnt", "highPrice24h",
    "lowPrice24h", "prevPrice1h", "openInterest", "openInterestValue", "turnover24h", "volume24h",
    "fundingRate", "nextFundingTime", "predictedDeliveryPrice", "basisRate", "deliveryFeeRate",
    "deliveryTime", "ask1Size", "bid1Price", "ask1Price", "bid1Size", "basis", "preOpenPrice", "preQty",
    "curPreListingPhase", "fundingIntervalHour", "basisRateYear", "fundingCap",
)  # fmt: skip
_OPTION_ROW = (
    "symbol", "bid1Price", "bid1Size", "bid1Iv", "ask1Price", "ask1Size", "ask1Iv", "lastPrice",
    "highPrice24h", "lowPrice24h", "markPrice", "indexPrice", "markIv", "underlyingPrice", "openInterest",
    "turnover24h", "volume24h", "totalVolume", "totalTurnover", "delta", "gamma", "vega", "theta",
    "predictedDeliveryPrice", "change24h",
)  # fmt: skip
_SPOT_ROW = (
    "symbol", "bid1Price", "bid1Size", "ask1Price", "ask1Size", "lastPrice", "prevPrice24h", "price24hPcnt",
    "highPrice24h", "lowPrice24h", "turnover24h", "volume24h", "usdIndexPrice",
)  # fmt: skip
_ROWS = {"linear": _DERIVATIVE_ROW, "inverse": _DERIVATIVE_ROW, "option": _OPTION_ROW, "spot": _SPOT_ROW}
_OPTION_NAMES = {"bid1Iv": "bidIv", "ask1Iv": "askIv", "markIv": "markPriceIv"}  # REST name -> stream name
# What a perpetual shows for the dated-futures fields: "" except `deliveryTime` "0" (the real answers above);
# an option's `predictedDeliveryPrice` is "0" until 30 min before delivery (the docs' example).
_DERIVATIVE_BLANKS = {"deliveryTime": "0"}
_OPTION_BLANKS = {"predictedDeliveryPrice": "0"}


def ticker_row(category: str, fields: Json) -> dict[str, str]:
    """One `result.list` row of GET /v5/market/tickers from the venue's ticker `fields` (its stream's names
    plus `bid1Price`/`bid1Size`/`ask1Price`/`ask1Size`); a field the venue does not model is Bybit's blank."""
    keys = _ROWS[category]
    names = _OPTION_NAMES if category == "option" else {}
    blanks = _OPTION_BLANKS if category == "option" else _DERIVATIVE_BLANKS
    return {key: str(fields.get(names.get(key, key), blanks.get(key, ""))) for key in keys}


def server_time_result(wall_ns: int) -> dict[str, str]:
    """The `result` of GET /v5/market/time (docs/v5/market/time.mdx): seconds and nanoseconds, as strings."""
    return {"timeSecond": str(wall_ns // 1_000_000_000), "timeNano": str(wall_ns)}
