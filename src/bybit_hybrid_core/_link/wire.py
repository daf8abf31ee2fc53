"""One link's client WebSocket over wsproto: bytes in and out, text messages and wire events up.

This is the bottom layer of a link (wsproto's own split: bytes -> frames -> messages). It knows nothing of
Bybit: it performs the HTTP upgrade for the link's URL, reassembles text messages from frames however the
bytes were chunked, answers protocol pings, completes the close handshake, and reports a refused upgrade
with its HTTP status. wsproto's exceptions never leave this module: they become a `WireFailed` event, and
the wire is dead from then on (every later input is ignored).

wsproto masks client frames with `os.urandom` keys and picks the handshake nonce the same way, so the
bytes this module produces are not reproducible; what it *means* (the decoded frames) is.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import TypeVar
from urllib.parse import urlsplit

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import ProtocolError

from .._errors import LocalProtocolError

__all__ = [
    "MAX_MESSAGE_CHARS",
    "Wire",
    "WireClosed",
    "WireEvent",
    "WireFailed",
    "WireNotice",
    "WireRefused",
    "WireText",
    "WireUpgraded",
]

# The largest Bybit message is an orderbook.1000 snapshot (~100 kB); anything far beyond that is garbage
# that would otherwise grow a buffer without bound.
MAX_MESSAGE_CHARS = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class WireUpgraded:
    """The server accepted the upgrade (HTTP 101)."""


@dataclass(frozen=True, slots=True)
class WireRefused:
    """The server answered the upgrade with another HTTP status (403 geo-block, 404, 502...)."""

    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class WireText:
    """One complete text message."""

    text: str


@dataclass(frozen=True, slots=True)
class WireClosed:
    """The remote closed: a close frame (answered already) or end of stream (code 1006, no frame)."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class WireFailed:
    """The remote broke the WebSocket or HTTP protocol; a close frame is queued where one is allowed."""

    detail: str


@dataclass(frozen=True, slots=True)
class WireNotice:
    """Something odd but harmless (a binary message); the wire stays usable."""

    detail: str


WireEvent = WireUpgraded | WireRefused | WireText | WireClosed | WireFailed | WireNotice
_Final = TypeVar("_Final", WireRefused, WireClosed, WireFailed)

_ABNORMAL_CLOSURE = 1006
_PROTOCOL_ERROR = 1002


def _split_url(url: str) -> tuple[str, str]:
    """(Host header, request target) of a ws:// or wss:// URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise LocalProtocolError(f"a link URL must be ws://host/path or wss://host/path, got {url!r}")
    host = parts.netloc.rpartition("@")[2]  # never send userinfo in the Host header
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return host, target


class Wire:
    """The client side of one WebSocket connection (one per dial).

    Args:
        url: the link's URL; its host goes into the Host header and its path and query form the target.
    """

    __slots__ = ("_binary_seen", "_conn", "_dead", "_host", "_out", "_partial", "_partial_len", "_target")

    def __init__(self, url: str) -> None:
        self._host, self._target = _split_url(url)
        self._conn = WSConnection(ConnectionType.CLIENT)
        self._out = bytearray()
        self._partial: list[str] = []
        self._partial_len = 0
        self._dead = False
        self._binary_seen = False

    @property
    def host(self) -> str:
        return self._host

    @property
    def is_open(self) -> bool:
        """True while text may be sent: upgraded, not closing, not failed."""
        return not self._dead and self._conn.state is ConnectionState.OPEN

    def initiate(self) -> None:
        """Queue the HTTP upgrade request."""
        self._out += self._conn.send(Request(host=self._host, target=self._target))

    def send_text(self, text: str) -> None:
        """Queue one text message. The caller checks `is_open` first; sending on a closed wire is a bug."""
        if not self.is_open:
            raise LocalProtocolError("cannot send on a WebSocket that is not open")
        self._out += self._conn.send(TextMessage(data=text))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start (or answer) the close handshake if the protocol still allows a close frame."""
        if self._dead or self._conn.state not in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            return
        self._out += self._conn.send(CloseConnection(code=code, reason=reason))

    def data_to_send(self) -> bytes:
        """Drain the bytes queued for the socket."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def receive(self, data: bytes) -> list[WireEvent]:
        """Feed bytes from the socket (b"" = end of stream) and return what they completed."""
        if self._dead:
            return []
        if not data and self._conn.state is ConnectionState.CONNECTING:
            # h11 calls an end of stream before the response "Bad HTTP message"; it is just a hang-up.
            return [self._finish(WireClosed(_ABNORMAL_CLOSURE, "end of stream before the upgrade"))]
        events: list[WireEvent] = []
        try:
            self._conn.receive_data(data if data else None)
            for event in self._conn.events():
                self._handle(event, events)
                if self._dead:
                    break
        except (ProtocolError, h11.ProtocolError) as exc:  # wsproto's or h11's: the remote's fault here
            events.append(self._fail(f"WebSocket protocol error: {exc}"))
        return events

    # ------------------------------------------------------------------------------------------ internals

    def _handle(self, event: object, events: list[WireEvent]) -> None:
        match event:
            case TextMessage(data=text, message_finished=finished):  # first: nearly every event is one
                self._text(text, finished, events)
            case AcceptConnection():
                events.append(WireUpgraded())
            case RejectConnection(status_code=status):
                events.append(self._finish(WireRefused(status, _phrase(status))))
            case BytesMessage():
                # Bybit speaks text only; say so once and carry on (the link stays usable).
                if not self._binary_seen:
                    self._binary_seen = True
                    events.append(WireNotice("unexpected binary message (ignored)"))
            case Ping() if self._conn.state is ConnectionState.OPEN:
                self._out += self._conn.send(event.response())
            case CloseConnection(code=code, reason=reason):
                self._closed(code, reason or "", events)
            case _:  # RejectData (a refusal's body) and Pong: nothing to do
                pass

    def _text(self, text: str, finished: bool, events: list[WireEvent]) -> None:
        if finished and not self._partial and len(text) <= MAX_MESSAGE_CHARS:
            events.append(WireText(text))  # a whole message in one piece: nothing to join
            return
        self._partial.append(text)
        self._partial_len += len(text)
        if self._partial_len > MAX_MESSAGE_CHARS:
            events.append(self._fail(f"message longer than {MAX_MESSAGE_CHARS} characters"))
        elif finished:
            whole = "".join(self._partial)
            self._partial.clear()
            self._partial_len = 0
            events.append(WireText(whole))

    def _closed(self, code: int, reason: str, events: list[WireEvent]) -> None:
        if self._conn.state is ConnectionState.OPEN:
            # wsproto reports a frame it could not parse as a CloseConnection while staying OPEN.
            events.append(self._fail(f"bad frame from the server: {reason} (code {code})"))
            return
        self.close(code if code not in (1005, 1006, 1015) else 1000)  # answer a remote close
        events.append(self._finish(WireClosed(code, reason or ("end of stream" if code == 1006 else ""))))

    def _fail(self, detail: str) -> WireFailed:
        self.close(_PROTOCOL_ERROR, "protocol error")
        return self._finish(WireFailed(detail))

    def _finish(self, event: _Final) -> _Final:
        self._dead = True
        self._partial.clear()
        return event


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
