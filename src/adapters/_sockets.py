"""Non-blocking sockets in a `selectors` loop: the transport plumbing of the threaded adapter.

`dial()` connects and handshakes blocking (on a helper thread, so one slow host never stalls the loop) and
hands back a `Dialed` connection. `SelectorSocket` then lives in the loop thread: writes are buffered and
flushed as the socket accepts them, and a read takes everything the socket holds at once.

TLS runs through an `ssl.SSLObject` over memory BIOs (as asyncio's TLS layer does), not an `ssl.SSLSocket`:
an SSLSocket's `recv` hands back one TLS record per call, at two system calls a record, and a live venue
sends each message in its own record. Here one `recv` takes what the kernel holds, and every whole record
in it is decrypted before the core runs. A readable socket may hold no whole record (a TLS 1.3 session
ticket, half a record); that is "nothing yet", never an error.
"""

from __future__ import annotations

import selectors
import socket
import ssl
from typing import Any

from ._net import target

__all__ = ["Dialed", "SelectorSocket", "dial"]

_READ = 262_144  # per recv: a busy socket's backlog in one system call
_RETRY = (BlockingIOError, InterruptedError)


class Dialed:
    """A connected socket and, for wss://, its TLS session (handshake done, certificate verified)."""

    __slots__ = ("incoming", "outgoing", "sock", "tls")

    def __init__(
        self, sock: socket.socket, tls: ssl.SSLObject | None = None,
        incoming: ssl.MemoryBIO | None = None, outgoing: ssl.MemoryBIO | None = None,
    ) -> None:  # fmt: skip
        self.sock, self.tls, self.incoming, self.outgoing = sock, tls, incoming, outgoing

    def close(self) -> None:
        self.sock.close()


def dial(url: str, ssl_context: ssl.SSLContext, timeout: float) -> Dialed:
    """TCP to `url`'s host, then TLS (SNI, verification) for wss://; blocking, each step bounded by `timeout`.

    Returns the connection with its socket in non-blocking mode. Raises OSError (ssl.SSLError included) or
    ValueError.
    """
    where = target(url)
    sock = socket.create_connection((where.host, where.port), timeout=timeout)
    try:
        dialed = Dialed(sock)
        if where.tls:
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = ssl_context.wrap_bio(incoming, outgoing, server_hostname=where.host)
            _handshake(sock, tls, incoming, outgoing)
            dialed = Dialed(sock, tls, incoming, outgoing)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return dialed


def _handshake(
    sock: socket.socket, tls: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO
) -> None:
    """The TLS handshake over the blocking socket (its timeout bounds each step); verification included."""
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            if outgoing.pending:
                sock.sendall(outgoing.read())
            data = sock.recv(_READ)
            if not data:
                raise ConnectionResetError("closed by the server during the TLS handshake") from None
            incoming.write(data)
    if outgoing.pending:  # the client's Finished
        sock.sendall(outgoing.read())


class SelectorSocket:
    """One connected non-blocking connection registered with `selector` (its key's data is `owner`)."""

    __slots__ = ("_eof", "_out", "_owner", "_selector", "_wire", "sock")

    def __init__(self, selector: selectors.BaseSelector, wire: Dialed, owner: Any) -> None:
        self._selector, self._wire, self.sock, self._owner = selector, wire, wire.sock, owner
        self._out = bytearray()
        self._eof = False
        selector.register(self.sock, selectors.EVENT_READ, owner)

    def read(self, max_bytes: int = 4 * _READ) -> list[bytes]:
        """What arrived, as one chunk (none if no whole TLS record did); a last b"" means end of stream.
        Raises OSError (a TLS error included).

        At most about `max_bytes` per call, so a busy link cannot starve the core's answers or the other
        links; the selector reports the rest at once.
        """
        raw: list[bytes] = []
        got, eof = 0, False
        while not self._eof and got < max_bytes:
            try:
                data = self.sock.recv(_READ)
            except _RETRY:
                break
            if not data:
                eof = True
                break
            raw.append(data)
            got += len(data)
            if len(data) < _READ:  # the socket is empty now: spare the system call that would say so
                break
        chunks = raw if self._wire.tls is None else self._decrypt(raw)
        ended = eof or chunks[-1:] == [b""]  # the socket's end, or TLS's (a close_notify)
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        out = [data] if data else []
        if ended:
            out.append(b"")
            self._eof = True  # stop watching for reads; writes (a close frame) may still go out
            self._watch()
        return out

    def _decrypt(self, raw: list[bytes]) -> list[bytes]:
        """Every whole record `raw` completes, decrypted; a last b"" if the peer ended the session."""
        wire = self._wire
        assert wire.tls is not None and wire.incoming is not None
        for data in raw:
            wire.incoming.write(data)
        plain: list[bytes] = []
        try:
            while more := wire.tls.read(_READ):
                plain.append(more)
            plain.append(b"")  # close_notify
        except ssl.SSLWantReadError:  # the rest of a record is still on its way
            pass
        self._flush_tls()  # what reading made TLS want to say (a TLS 1.3 KeyUpdate)
        return plain

    def write(self, data: bytes) -> None:
        """Queue `data` and send what the socket takes now. Raises OSError."""
        if self._wire.tls is not None:
            self._wire.tls.write(data)
            self._flush_tls()
        else:
            self._out += data
            self.flush()

    def _flush_tls(self) -> None:
        outgoing = self._wire.outgoing
        if outgoing is not None and outgoing.pending:
            self._out += outgoing.read()
            self.flush()

    def flush(self) -> None:
        try:
            while self._out:
                del self._out[: self.sock.send(self._out[:65536])]
        except _RETRY:
            pass
        self._watch()

    def close(self) -> None:
        if self.sock in self._selector.get_map():
            self._selector.unregister(self.sock)
        self.sock.close()

    def _watch(self) -> None:
        events = (0 if self._eof else selectors.EVENT_READ) | (selectors.EVENT_WRITE if self._out else 0)
        key = self._selector.get_map().get(self.sock)
        if key is not None and not events:
            self._selector.unregister(self.sock)
        elif key is None and events:
            self._selector.register(self.sock, events, self._owner)
        elif key is not None and key.events != events:
            self._selector.modify(self.sock, events, self._owner)
