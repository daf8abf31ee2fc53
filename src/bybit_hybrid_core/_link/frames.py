"""Server-to-client WebSocket frames, read without wsproto: bytes in, text payloads and control signals out.

Why our own reader: wsproto costs about 8 µs per inbound frame (a Buffer, a Header and a Frame tuple, an
incremental UTF-8 decoder, an event object), more than the codec spends decoding the message. Frames a
server sends are unmasked and simple (RFC 6455 section 5.2), so the common case, whole unfragmented text
frames in one read, is sliced straight out of the read in a handful of Python operations. wsproto keeps
everything else: the HTTP upgrade, the close handshake's state and every outbound frame (see `wire.py`).

What this reader checks, in the order wsproto checks it (so a stream gets the same verdict from both):
reserved opcodes, fragmented control frames, control frames over 125 bytes, non-minimal 16- and 64-bit
lengths, a 64-bit length with its top bit set, RSV bits (no extension is ever negotiated), a masked frame
(RFC 6455 5.1: a client must fail the connection), a continuation with no message to continue or a new
message while one is unfinished, and a close frame's code and UTF-8 reason (section 7.4).

Where it deliberately differs from wsproto (tests/test_frame_reader.py checks each difference):

* Text payloads are handed up as `bytes`, undecoded. Invalid UTF-8 in a text message is wsproto's
  protocol failure (close 1007); here the message is delivered, its decode fails in the codec (msgspec
  validates UTF-8 as it decodes bytes), and the link reports a `ProtocolProblem` and survives. One bad
  message from the venue is not worth a reconnect, and validating twice would double the hot path.
* A message may hold at most `limit` payload *bytes* (not characters: counting characters would mean
  decoding). The limit applies to binary messages too, and a frame whose header alone declares too much
  fails at once, before its payload is buffered; wsproto has no limit.
* Errors that depend on the message state (an orphan continuation...) are found at the frame's header;
  wsproto finds them at its first payload byte. Only a stream cut off inside that frame tells the two apart.
  Likewise `Binary` comes once the binary message's first frame is whole; wsproto's `BytesMessage` comes
  with its first payload byte.

Sans-IO: no sockets, clock or threads; any chunking of the input gives the same output (a frame split at
every byte included), because nothing is decided before the bytes it depends on have arrived.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Binary", "Broken", "Close", "FrameReader", "Ping", "Signal"]

_TEXT, _BINARY, _CONTINUATION, _CLOSE, _PING, _PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
_KNOWN_OPCODES = frozenset((_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG))
_FIN_TEXT = 0x81  # FIN, no RSV bits, opcode text: nearly every frame Bybit sends starts with this byte
_NO_MESSAGE = -1

# RFC 6455 7.4.1/7.4.2 as wsproto applies them: 1000-2999 only where defined, never the local-only codes
# (1005 no status, 1006 abnormal, 1015 TLS), and 3000-4999 freely.
_DEFINED_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013))
_NO_STATUS = 1005


@dataclass(frozen=True, slots=True)
class Ping:
    """A ping frame: the wire answers it with a pong carrying the same payload."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """A valid close frame (code 1005 when it had no payload); `frame` is the frame itself, unmasked."""

    code: int
    reason: str
    frame: bytes


@dataclass(frozen=True, slots=True)
class Binary:
    """A binary message began (its payload is dropped: Bybit speaks text)."""


@dataclass(frozen=True, slots=True)
class Broken:
    """The server broke the framing protocol; the reader reads nothing more."""

    detail: str


Signal = Ping | Close | Binary | Broken


class _Failure(Exception):
    """Raised inside the reader only; `feed` turns it into a `Broken` signal."""


class FrameReader:
    """Reads the frames a server sends, after the upgrade; one per connection.

    Args:
        limit: the most payload bytes one message may hold.

    Attributes:
        signals: how many items of the last `feed` were not text payloads (0 on the hot path, so the
            caller can hand the list on untouched).
    """

    __slots__ = ("_buf", "_done", "_limit", "_need", "_opcode", "_parts", "_size", "signals")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buf = bytearray()  # the start of a frame that has not arrived whole
        self._need = 0  # bytes `_buf` must hold before it is worth parsing again
        self._opcode = _NO_MESSAGE  # the opcode of the fragmented message under way
        self._parts: list[bytes] = []  # its text payloads so far
        self._size = 0  # its payload bytes so far
        self._done = False  # a close frame or a failure: nothing more is read
        self.signals = 0

    def feed(self, data: bytes) -> list[bytes | Signal]:
        """Read more bytes; return, in order, each complete text message's payload and each signal."""
        out: list[bytes | Signal] = []
        self.signals = 0
        if self._done:
            return out
        if self._buf:
            self._buf += data
            if len(self._buf) < self._need:
                return out  # still inside one frame: O(1) per read, however finely the bytes are cut
            data = bytes(self._buf)
            self._buf.clear()
        append = out.append
        limit = self._limit
        n = len(data)
        pos = 0
        try:
            while pos < n:
                # The hot path: a whole unfragmented text frame with a 7- or 16-bit length, sliced out as is.
                if data[pos] == _FIN_TEXT and self._opcode < 0 and pos + 1 < n:
                    size = data[pos + 1]
                    if size < 126:
                        end = pos + 2 + size
                        if end <= n:
                            append(data[pos + 2 : end])
                            pos = end
                            continue
                    elif size == 126 and pos + 3 < n:
                        size = (data[pos + 2] << 8) | data[pos + 3]
                        end = pos + 4 + size
                        if end <= n and 125 < size <= limit:
                            append(data[pos + 4 : end])
                            pos = end
                            continue
                pos = self._frame(data, pos, n, out)  # anything else, and the frame a read cuts in two
        except _Failure as exc:
            self._stop(out, Broken(str(exc)))
        return out

    # ------------------------------------------------------------------------------------------ internals

    def _frame(self, data: bytes, pos: int, n: int, out: list[bytes | Signal]) -> int:
        """Read the one frame at `pos`; return where the next one starts (`n` once the rest is kept)."""
        head = _header(data, pos, n)
        if head < 0:  # the header itself is cut: wait for all of it (2, 4 or 10 bytes)
            return self._keep(data, pos, n, -head)
        b0 = data[pos]
        opcode = b0 & 0x0F
        size = _length(data, pos)
        if opcode < _CLOSE:
            self._check_data(opcode, size)
        end = pos + head + size
        if end > n:
            return self._keep(data, pos, n, head + size)
        payload = data[pos + head : end]
        fin = b0 & 0x80
        if opcode == _TEXT or (opcode == _CONTINUATION and self._opcode == _TEXT):
            self._text(payload, fin, out)
        elif opcode in (_BINARY, _CONTINUATION):  # a continuation of a binary message
            self._binary(opcode, size, fin, out)
        elif opcode == _PING:
            self.signals += 1
            out.append(Ping(payload))
        elif opcode == _CLOSE:
            self._stop(out, _close(payload))
            return n
        # a pong: nothing to do (the link's liveness check is Bybit's own JSON ping)
        return end

    def _check_data(self, opcode: int, size: int) -> None:
        if opcode == _CONTINUATION:
            if self._opcode < 0:
                raise _Failure("a continuation frame with no message to continue")
        elif self._opcode >= 0:
            raise _Failure("a new message began before the last one was finished")
        if self._size + size > self._limit:
            raise _Failure(f"a message longer than {self._limit} bytes")

    def _text(self, payload: bytes, fin: int, out: list[bytes | Signal]) -> None:
        if fin and self._opcode < 0:
            out.append(payload)  # whole in one frame, but it came the slow way (cut by a read, or big)
            return
        self._parts.append(payload)
        if fin:
            out.append(b"".join(self._parts))
            self._end_message()
        else:
            self._opcode = _TEXT
            self._size += len(payload)

    def _binary(self, opcode: int, size: int, fin: int, out: list[bytes | Signal]) -> None:
        if opcode == _BINARY:
            self.signals += 1
            out.append(Binary())
        if fin:
            self._end_message()
        else:
            self._opcode = _BINARY
            self._size += size

    def _end_message(self) -> None:
        self._opcode = _NO_MESSAGE
        self._parts = []
        self._size = 0

    def _keep(self, data: bytes, pos: int, n: int, need: int) -> int:
        self._buf += data[pos:n]
        self._need = need
        return n

    def _stop(self, out: list[bytes | Signal], last: Close | Broken) -> None:
        self.signals += 1
        out.append(last)
        self._done = True
        self._buf.clear()
        self._end_message()


def _header(data: bytes, pos: int, n: int) -> int:
    """The header's length once it has all arrived and is valid, else minus the length it will have.

    Raises `_Failure` for a broken header, checking in wsproto's order, each as soon as its bytes are here.
    """
    if n - pos < 2:
        return -2
    b0, b1 = data[pos], data[pos + 1]
    opcode = b0 & 0x0F
    if opcode not in _KNOWN_OPCODES:
        raise _Failure(f"a frame with the reserved opcode {opcode:#x}")
    short = b1 & 0x7F
    if opcode >= _CLOSE:
        if not b0 & 0x80:
            raise _Failure("a fragmented control frame")
        if short > 125:
            raise _Failure("a control frame longer than 125 bytes")
    head = 2 if short < 126 else 4 if short == 126 else 10
    if n - pos < head:
        return -head
    size = _length(data, pos)
    if short == 126 and size < 126:
        raise _Failure("a frame length in 2 bytes that fits in 1")
    if short == 127:
        if size <= 0xFFFF:
            raise _Failure("a frame length in 8 bytes that fits in 2")
        if size >> 63:
            raise _Failure("a frame length with its top bit set")
    if b0 & 0x70:
        raise _Failure("a frame with RSV bits set, and no extension was negotiated")
    if b1 & 0x80:
        raise _Failure("a masked frame from the server")
    return head


def _length(data: bytes, pos: int) -> int:
    """The payload length of the (complete) header at `pos`."""
    short = data[pos + 1] & 0x7F
    if short < 126:
        return short
    if short == 126:
        return int.from_bytes(data[pos + 2 : pos + 4], "big")
    return int.from_bytes(data[pos + 2 : pos + 10], "big")


def _close(payload: bytes) -> Close:
    """Validate a close frame's payload (RFC 6455 7.1.5, 7.4) as wsproto does, in our own words."""
    frame = bytes((0x80 | _CLOSE, len(payload))) + payload
    if not payload:
        return Close(_NO_STATUS, "", frame)
    if len(payload) == 1:
        raise _Failure("a close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if not (code in _DEFINED_CLOSE_CODES or 3000 <= code <= 4999):
        raise _Failure(f"a close frame with the code {code}, which a server may not send")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise _Failure("a close frame whose reason is not UTF-8") from None
    return Close(code, reason, frame)
