"""Helpers for driving the FakeExchange by hand: a raw wsproto client per connection, and a tiny venue.

`StubVenue` is deliberately small and fully predictable (one ticker delta per publish, one position push per
order) so protocol tests can assert exact sequences without depending on the real venue's market model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    RejectConnection,
    Request,
    TextMessage,
)

from bybit_hybrid_core._events import Position, PositionKey
from bybit_hybrid_core.testing._exchange.conn import ServerClose, ServerSend
from bybit_hybrid_core.testing._exchange.exchange import FakeExchange

KEY, SECRET = "test-key", "test-secret"
SYMBOLS = ("BTCUSDT", "ETHUSDT")


class StubVenue:
    """Just enough of the Venue contract for protocol tests."""

    def __init__(self) -> None:
        self.marks = {("linear", s): Decimal("100") for s in SYMBOLS}
        self.open: dict[PositionKey, Position] = {}
        self.seq = 1000
        self.restarts: list[float] = []
        self.queries: list[Mapping[str, str]] = []

    def topic_exists(self, category: str, topic: str) -> bool:
        family, _, symbol = topic.rpartition(".")
        return symbol in SYMBOLS and family in ("tickers", "orderbook.1", "orderbook.50", "publicTrade")

    def snapshot(self, category: str, topic: str, now: float) -> dict[str, Any] | None:
        if not topic.startswith("tickers."):
            return None
        symbol = topic.split(".")[1]
        data = {
            "symbol": symbol,
            "markPrice": str(self.marks.get(("linear", symbol), 100)),
            "lastPrice": "100",
        }
        return {"topic": topic, "type": "snapshot", "data": data, "cs": 1, "ts": int(now * 1000)}

    def publish(
        self, now: float, subscribed: Mapping[str, set[str]]
    ) -> list[tuple[str, str, dict[str, Any]]]:
        out = []
        for category, topics in sorted(subscribed.items()):
            for topic in sorted(topics):
                if topic.startswith("tickers."):
                    symbol = topic.split(".")[1]
                    data = {"symbol": symbol, "markPrice": str(self.marks.get((category, symbol), 100))}
                    out.append(
                        (
                            category,
                            topic,
                            {"topic": topic, "type": "delta", "data": data, "ts": int(now * 1000)},
                        )
                    )
        return out

    def place_order(
        self, category: str, symbol: str, side: str, qty: Decimal, now: float,
        position_idx: int = 0, reduce_only: bool = False,
    ) -> list[tuple[str, dict[str, Any]]]:  # fmt: skip
        self.seq += 1
        key = (category, symbol, position_idx)
        held = self.open.get(key)
        signed = (held.size if held and held.side == "Buy" else -(held.size if held else 0)) + (
            qty if side == "Buy" else -qty
        )
        if signed == 0:
            self.open.pop(key, None)
            row_side, size = "", Decimal(0)
        else:
            row_side, size = ("Buy" if signed > 0 else "Sell"), abs(signed)
            self.open[key] = Position(
                category=category, symbol=symbol, position_idx=position_idx, side=row_side, size=size,
                avg_price=self.marks.get((category, symbol), Decimal(100)), seq=self.seq,
            )  # fmt: skip
        row = {"category": category, "symbol": symbol, "side": row_side, "size": str(size),
               "positionIdx": position_idx, "seq": self.seq}  # fmt: skip
        fast = {"category": category, "symbol": symbol, "execQty": str(qty), "seq": self.seq}
        return [
            ("execution.fast", {"topic": "execution.fast", "creationTime": 1, "data": [fast]}),
            ("position", {"id": "p", "topic": "position", "creationTime": 1, "data": [row]}),
        ]

    def open_position(
        self, category: str, symbol: str, side: str, size: Decimal, now: float,
        price: Decimal | None = None, position_idx: int = 0,
    ) -> list[tuple[str, dict[str, Any]]]:  # fmt: skip
        if price is not None:
            self.marks[(category, symbol)] = price
        return self.place_order(category, symbol, side, size, now, position_idx)

    def close_position(
        self, category: str, symbol: str, now: float, position_idx: int = 0
    ) -> list[tuple[str, dict[str, Any]]]:
        held = self.open[(category, symbol, position_idx)]
        return self.place_order(
            category, symbol, "Sell" if held.side == "Buy" else "Buy", held.size, now, position_idx
        )

    def set_mark(self, category: str, symbol: str, price: Decimal) -> None:
        self.marks[(category, symbol)] = price

    def mark(self, category: str, symbol: str) -> Decimal:
        return self.marks[(category, symbol)]

    def positions(self) -> dict[PositionKey, Position]:
        return dict(self.open)

    def rest_position_list(self, query: Mapping[str, str], now: float | None = None) -> dict[str, Any]:
        self.queries.append(dict(query))
        rows = [{"symbol": p.symbol, "side": p.side, "size": str(p.size)} for p in self.open.values()]
        return {"category": query["category"], "list": rows, "nextPageCursor": ""}

    def restart(self, now: float) -> None:
        self.restarts.append(now)


class Client:
    """A raw wsproto client on one FakeExchange connection."""

    def __init__(self, net: Net, path: str, now: float = 0.0) -> None:
        self.net = net
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.conn = net.ex.accept(now)
        self.events: list[Any] = []
        self.closed = False
        net.clients[self.conn] = self
        net.ex.receive(self.conn, self.ws.send(Request(host="fake.bybit", target=path)), now)
        net.pump()

    @property
    def accepted(self) -> bool:
        return any(isinstance(e, AcceptConnection) for e in self.events)

    @property
    def rejected(self) -> int | None:
        return next((e.status_code for e in self.events if isinstance(e, RejectConnection)), None)

    def messages(self) -> list[Any]:
        """Every JSON message received so far (parsed), in order; non-JSON text as str."""
        out: list[Any] = []
        for e in self.events:
            if isinstance(e, TextMessage):
                try:
                    out.append(json.loads(e.data))
                except ValueError:
                    out.append(e.data)
        return out

    def take(self) -> list[Any]:
        """Messages received since the last `take`."""
        msgs = self.messages()
        new = msgs[getattr(self, "_taken", 0) :]
        self._taken = len(msgs)
        return new

    def send(self, obj: Any, now: float = 0.0) -> list[Any]:
        """Send a JSON request (or raw text) and return the messages it brought."""
        text = obj if isinstance(obj, str) else json.dumps(obj)
        self.net.ex.receive(self.conn, self.ws.send(TextMessage(data=text)), now)
        self.net.pump()
        return self.take()

    def closes(self) -> list[CloseConnection]:
        return [e for e in self.events if isinstance(e, CloseConnection)]

    def feed(self, data: bytes | None) -> None:
        self.ws.receive_data(data)
        self.events.extend(self.ws.events())


class Net:
    """Routes `FakeExchange.poll()` output to the test's clients."""

    def __init__(self, ex: FakeExchange | None = None) -> None:
        self.ex = ex if ex is not None else FakeExchange(api_key=KEY, api_secret=SECRET, venue=StubVenue())
        self.clients: dict[int, Client] = {}

    def pump(self) -> None:
        for action in self.ex.poll():
            client = self.clients[action.conn]
            if isinstance(action, ServerSend):
                client.feed(action.data)
            elif isinstance(action, ServerClose):
                client.closed = True
                client.feed(None)

    def advance(self, now: float) -> None:
        """Tick the exchange at every deadline up to `now`."""
        while (d := self.ex.deadline()) is not None and d <= now:
            self.ex.tick(d)
            self.pump()
        self.ex.tick(now)
        self.pump()
