"""One link's client WebSocket: bytes in and out, text payloads and wire events up.

This is the bottom layer of a link (wsproto's own split: bytes -> frames -> messages). It knows nothing of
Bybit: it performs the HTTP upgrade for the link's URL, reassembles text messages from frames however the
bytes were chunked, answers protocol pings, completes the close handshake, and reports a refused upgrade
with its HTTP status. Protocol errors never leave this module as exceptions: they become a `WireFailed`
event, and the wire is dead from then on (every later input is ignored).

Two readers share the work (issue 14). wsproto does the HTTP upgrade, the close handshake's state and
every outbound frame (masked client text, pongs, close frames). After the 101, inbound frames go to our
own `FrameReader` (`frames.py`), which slices text payloads straight out of each read: `receive` hands a
complete text message up as `bytes`, undecoded (the codec validates UTF-8 as it decodes), and everything
else as a `WireEvent`. wsproto's frame parser only ever sees a server close frame the reader has already
validated (so its state machine answers it) and the end of stream; `frames.py` says where the verdicts of
the two readers deliberately differ. One difference is the wire's own: a protocol error after our close
frame went out is a `WireFailed` as well (with wsproto alone it came up as a `WireClosed`).

wsproto masks client frames with `os.urandom` keys and picks the handshake nonce the same way, so the
bytes this module produces are not reproducible; what it *means* (the decoded frames) is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import TypeVar, cast
from urllib.parse import urlsplit

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import ProtocolError

from .._errors import LocalProtocolError
from . import frames

__all__ = [
    "MAX_MESSAGE_CHARS",
    "Wire",
    "WireClosed",
    "WireEvent",
    "WireFailed",
    "WireNotice",
    "WireRefused",
    "WireUpgraded",
]

# The largest Bybit message is an orderbook.1000 snapshot (~100 kB); anything far beyond that is garbage
# that would otherwise grow a buffer without bound. Counted in payload *bytes* since the frame reader
# (counting characters would mean decoding on the hot path); Bybit's JSON is ASCII, so the two agree.
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


WireEvent = WireUpgraded | WireRefused | WireClosed | WireFailed | WireNotice
_Final = TypeVar("_Final", WireRefused, WireClosed, WireFailed)

_ABNORMAL_CLOSURE = 1006
_PROTOCOL_ERROR = 1002
# Where h11 ends a response head: the first blank line, bare LF allowed (h11/_receivebuffer.py). The upgrade
# is fed to wsproto up to there only, so the frames that follow it in the same read reach our reader.
_HEAD_END = re.compile(b"\n\r?\n")


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

    __slots__ = ("_binary_seen", "_conn", "_dead", "_head", "_host", "_out", "_reader", "_target")

    def __init__(self, url: str) -> None:
        self._host, self._target = _split_url(url)
        self._conn = WSConnection(ConnectionType.CLIENT)
        self._out = bytearray()
        self._head = bytearray()  # what arrived before the upgrade completed
        self._reader: frames.FrameReader | None = None  # set by the 101
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

    def receive(self, data: bytes) -> list[bytes | WireEvent]:
        """Feed bytes from the socket (b"" = end of stream) and return what they completed, in order.

        A `bytes` item is one complete text message's payload, not yet decoded; anything else is a
        `WireEvent`.
        """
        reader = self._reader
        if reader is not None and data and not self._dead:
            items = reader.feed(data)
            if not reader.signals:
                # The hot path: only text payloads, handed on as they are.
                return cast("list[bytes | WireEvent]", items)
            return self._signals(items, [])
        if self._dead:
            return []
        if not data and self._conn.state is ConnectionState.CONNECTING:
            # h11 calls an end of stream before the response "Bad HTTP message"; it is just a hang-up.
            return [self._finish(WireClosed(_ABNORMAL_CLOSURE, "end of stream before the upgrade"))]
        events: list[bytes | WireEvent] = []
        rest = b""
        if data and reader is None:
            data, rest = self._split_head(data)
        self._wsproto(data if data else None, events)
        if rest and not self._dead:
            # The head ended, so wsproto accepted (a refusal or a failure is dead): the rest is frames.
            assert self._reader is not None
            self._signals(self._reader.feed(rest), events)
        return events

    # ------------------------------------------------------------------------------------------ internals

    def _split_head(self, data: bytes) -> tuple[bytes, bytes]:
        """(what wsproto gets, what follows the response head) of a read before the upgrade."""
        before = len(self._head)
        self._head += data
        end = _HEAD_END.search(self._head)
        if end is None:
            return data, b""
        cut = end.end() - before
        self._head.clear()
        return data[:cut], data[cut:]

    def _wsproto(self, data: bytes | None, events: list[bytes | WireEvent]) -> None:
        try:
            self._conn.receive_data(data)
            for event in self._conn.events():
                self._handle(event, events)
                if self._dead:
                    break
        except (ProtocolError, h11.ProtocolError) as exc:  # wsproto's or h11's: the remote's fault here
            events.append(self._fail(f"WebSocket protocol error: {exc}"))

    def _handle(self, event: object, events: list[bytes | WireEvent]) -> None:
        match event:
            case AcceptConnection():
                self._reader = frames.FrameReader(MAX_MESSAGE_CHARS)
                events.append(WireUpgraded())
            case RejectConnection(status_code=status):
                events.append(self._finish(WireRefused(status, _phrase(status))))
            case CloseConnection(code=code, reason=reason):
                # Past the upgrade wsproto parses only a close frame our reader validated, or the end of
                # stream (1006), so this is the remote's close, never a frame it could not parse.
                self.close(code if code not in (1005, 1006, 1015) else 1000)  # answer a remote close
                reason = reason or ("end of stream" if code == _ABNORMAL_CLOSURE else "")
                events.append(self._finish(WireClosed(code, reason)))
        # Nothing else reaches here: a refusal's body is never fed (the wire is dead at its head), and
        # pings and pongs go to our reader.

    def _signals(
        self, items: list[bytes | frames.Signal], events: list[bytes | WireEvent]
    ) -> list[bytes | WireEvent]:
        """Hand text payloads on and act on the reader's signals, in order."""
        for item in items:
            match item:
                case bytes():
                    events.append(item)
                case frames.Ping(payload=payload):
                    if self._conn.state is ConnectionState.OPEN:  # not once our own close is sent
                        self._out += self._conn.send(Pong(payload=payload))
                case frames.Binary():
                    # Bybit speaks text only; say so once and carry on (the link stays usable).
                    if not self._binary_seen:
                        self._binary_seen = True
                        events.append(WireNotice("unexpected binary message (ignored)"))
                case frames.Close(frame=frame):
                    self._wsproto(frame, events)  # wsproto's state machine answers it and closes
                case frames.Broken(detail=detail):
                    events.append(self._fail(f"bad frame from the server: {detail}"))
        return events

    def _fail(self, detail: str) -> WireFailed:
        self.close(_PROTOCOL_ERROR, "protocol error")
        return self._finish(WireFailed(detail))

    def _finish(self, event: _Final) -> _Final:
        self._dead = True
        return event


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
