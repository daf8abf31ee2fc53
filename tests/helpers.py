"""Test helpers: a tiny fake Bybit per link, on a wsproto SERVER connection (h11's ConnectionPair idea).

Client frames are masked with random keys, so tests assert on what `FakeBybit` *decodes*, never on bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)

from conftest import SAMPLES

__all__ = ["FakeBybit", "sample", "sample_text"]


def sample(name: str) -> Any:
    """A real Bybit payload from the shared samples directory, parsed."""
    return json.loads((SAMPLES / name).read_text())


def sample_text(name: str) -> str:
    return Path(SAMPLES / name).read_text()


class FakeBybit:
    """The server end of one WebSocket: feed it the client's bytes, read back what it decoded.

    Attributes:
        request: the upgrade request once it arrived (host, target).
        messages: every text message the client sent, JSON-decoded when possible, in order.
        pings / pongs / closes: protocol-level frames seen from the client.
    """

    def __init__(self) -> None:
        self.ws = WSConnection(ConnectionType.SERVER)
        self.request: Request | None = None
        self.messages: list[Any] = []
        self.pings: list[bytes] = []
        self.pongs: list[bytes] = []
        self.closes: list[tuple[int, str]] = []
        self._partial = ""

    def feed(self, data: bytes) -> list[Any]:
        """Take bytes the client sent; return the JSON messages they completed."""
        new: list[Any] = []
        if self.ws.state is ConnectionState.CLOSED:
            return new
        self.ws.receive_data(data or None)
        for event in self.ws.events():
            match event:
                case Request():
                    self.request = event
                case TextMessage(data=text, message_finished=finished):
                    self._partial += text
                    if finished:
                        whole, self._partial = self._partial, ""
                        try:
                            new.append(json.loads(whole))
                        except ValueError:
                            new.append(whole)
                case Ping(payload=payload):
                    self.pings.append(bytes(payload))
                case Pong(payload=payload):
                    self.pongs.append(bytes(payload))
                case CloseConnection(code=code, reason=reason):
                    self.closes.append((code, reason or ""))
        self.messages.extend(new)
        return new

    def accept(self) -> bytes:
        assert self.request is not None, "the client has not sent its upgrade request yet"
        return self.ws.send(AcceptConnection())

    def reject(self, status: int, body: bytes = b"") -> bytes:
        data = self.ws.send(RejectConnection(status_code=status, has_body=bool(body)))
        if body:
            from wsproto.events import RejectData

            data += self.ws.send(RejectData(data=body))
        return data

    def send(self, payload: Any) -> bytes:
        """A text frame: a str as is, anything else JSON-encoded."""
        text = payload if isinstance(payload, str) else json.dumps(payload)
        return self.ws.send(TextMessage(data=text))

    def send_fragmented(self, text: str, parts: int) -> bytes:
        step = max(1, len(text) // parts)
        chunks = [text[i : i + step] for i in range(0, len(text), step)] or [""]
        out = b""
        for i, chunk in enumerate(chunks):
            out += self.ws.send(TextMessage(data=chunk, message_finished=i == len(chunks) - 1))
        return out

    def ping(self, payload: bytes = b"hi") -> bytes:
        return self.ws.send(Ping(payload=payload))

    def close(self, code: int = 1000, reason: str = "") -> bytes:
        return self.ws.send(CloseConnection(code=code, reason=reason))

    def ops(self, op: str) -> list[dict[str, Any]]:
        """Decoded client messages with this `op`."""
        return [m for m in self.messages if isinstance(m, dict) and m.get("op") == op]
