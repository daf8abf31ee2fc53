"""The peers of `bench_core.py`: the same bytes, handled the way users of dict-based SDKs do it today.

Every peer frames with wsproto, the library the core frames with, fed the same reads (so framing is
*included equally*; the "framing" peer measures it alone, to subtract). Then, per complete text message:

* `DictPeer` ("dicts"): `json.loads`, then what a careful user writes on top of a pybit callback: merge a
  ticker delta into the cached ticker dict, apply book deltas to `{price: size}` dicts (strings, no
  ordering, no best price), hand trades on as they are, and recompute the position's PnL with `Decimal`
  from the merged `markPrice` when it moved.
* `PybitPeer` ("pybit"): what pybit 5.x itself does before the user's callback (its
  `_V5WebSocketManager._process_normal_message`, re-implemented here: books as lists of `[price, size]`
  string pairs searched linearly, `float(size) == 0` deletes, and a `copy.deepcopy` of every ticker and
  book message), then the same PnL step as `DictPeer`.
* `json.loads` alone, the floor of any dict-based client.

Neither peer checks anything (ordering, `u`, staleness, finite numbers, shapes) or types a field other than
the mark; the core does all of that and more (see docs/performance.md, "What is compared").
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from core_stream import Entry
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from bybit_hybrid_core import Link

__all__ = ["DictPeer", "PybitPeer", "feed", "loads_only", "no_op"]

Handler = Callable[[str], None]


def _client() -> WSConnection:
    """A wsproto CLIENT past its handshake (server frames are unmasked, so any open client reads them)."""
    client, server = WSConnection(ConnectionType.CLIENT), WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="stream.bybit.com", target="/v5/public/linear")))
    list(server.events())
    client.receive_data(server.send(AcceptConnection()))
    list(client.events())
    return client


def feed(handler: Handler) -> Callable[[Iterable[Entry]], None]:
    """A runner: wsproto per link over the entries, `handler(text)` per complete text message."""
    conns = {link: _client() for link in (Link.LINEAR, Link.PRIVATE)}
    partial: dict[Link, str] = dict.fromkeys(conns, "")

    def run(entries: Iterable[Entry]) -> None:
        for entry in entries:
            conn = conns[entry.link]
            conn.receive_data(entry.data)
            for event in conn.events():
                if type(event) is TextMessage:
                    if event.message_finished:
                        handler(partial[entry.link] + event.data if partial[entry.link] else event.data)
                        partial[entry.link] = ""
                    else:
                        partial[entry.link] += event.data

    return run


def no_op(text: str) -> None:
    """Framing alone."""


def loads_only(text: str) -> None:
    json.loads(text)


class _Pnl:
    """The user's own step: PnL of the one open position at the latest mark, with Decimal."""

    def __init__(self, symbol: str, side: str, size: Decimal, avg: Decimal) -> None:
        self.symbol = symbol
        self.size, self.avg, self.sign = size, avg, 1 if side == "Buy" else -1
        self.mark: str | None = None
        self.out: list[Any] = []

    def on_mark(self, mark: str) -> None:
        if mark != self.mark:
            self.mark = mark
            price = Decimal(mark)
            self.out.append((price, (price - self.avg) * self.size * self.sign))


class DictPeer(_Pnl):
    def __init__(self, symbol: str, side: str, size: Decimal, avg: Decimal) -> None:
        super().__init__(symbol, side, size, avg)
        self.tickers: dict[str, dict[str, Any]] = {}
        self.books: dict[str, tuple[dict[str, str], dict[str, str]]] = {}

    def __call__(self, text: str) -> None:
        msg = json.loads(text)
        topic = msg.get("topic")
        if topic is None:
            return  # pong
        data = msg["data"]
        if topic.startswith("tickers."):
            if msg["type"] == "snapshot":
                state = self.tickers[topic] = data
            else:
                state = self.tickers[topic]
                state.update(data)
            self.out.append(state)
            if data["symbol"] == self.symbol and "markPrice" in data:
                self.on_mark(state["markPrice"])
        elif topic.startswith("orderbook."):
            if msg["type"] == "snapshot":
                book = self.books[topic] = ({}, {})
            else:
                book = self.books[topic]
            for side, levels in zip(book, (data["b"], data["a"]), strict=True):
                for price, size in levels:
                    if size == "0":
                        side.pop(price, None)
                    else:
                        side[price] = size
            self.out.append(book)
        else:
            self.out.append(msg)


class PybitPeer(_Pnl):
    def __init__(self, symbol: str, side: str, size: Decimal, avg: Decimal) -> None:
        super().__init__(symbol, side, size, avg)
        self.data: dict[str, Any] = {}

    def __call__(self, text: str) -> None:
        message = json.loads(text)
        topic = message.get("topic")
        if topic is None:
            return  # pong (pybit answers it internally)
        if "orderbook" in topic:
            self._book(message, topic)
            callback_data = copy.deepcopy(message)
            callback_data["type"] = "snapshot"
            callback_data["data"] = self.data[topic]
        elif "tickers" in topic:
            if "snapshot" in message["type"]:
                self.data[topic] = message["data"]
            else:
                self.data[topic].update(message["data"])
            callback_data = copy.deepcopy(message)
            callback_data["type"] = "snapshot"
            callback_data["data"] = self.data[topic]
        else:
            callback_data = message
        self._callback(callback_data)

    def _callback(self, message: dict[str, Any]) -> None:
        self.out.append(message)
        data = message["data"]
        if message["topic"].startswith("tickers.") and data["symbol"] == self.symbol:
            self.on_mark(data["markPrice"])

    def _book(self, message: dict[str, Any], topic: str) -> None:
        if "snapshot" in message["type"]:
            self.data[topic] = message["data"]
            return
        book = self.data[topic]
        book["u"], book["seq"] = message["data"]["u"], message["data"]["seq"]
        for side in ("b", "a"):
            levels = book[side]
            for entry in message["data"][side]:
                if float(entry[1]) == 0:
                    levels.pop(next(i for i, level in enumerate(levels) if level[0] == entry[0]))
                    continue
                prices = [level[0] for level in levels]
                if entry[0] not in prices:
                    levels.append(entry)
                elif levels[prices.index(entry[0])][1] != entry[1]:
                    levels[prices.index(entry[0])] = entry
