"""Non-blocking sockets in a `selectors` loop: the transport plumbing of the threaded adapter.

`dial()` connects and handshakes blocking (on a helper thread, so one slow host never stalls the loop) and
hands back a non-blocking socket. `SelectorSocket` then lives in the loop thread: writes are buffered and
flushed as the socket accepts them, reads go until the socket would block. TLS needs care here: a readable
socket may hold no application data (a TLS 1.3 session ticket), and a TLS write may want a read; both are
"try again later" (`_RETRY`), never an error.
"""

from __future__ import annotations

import selectors
import socket
import ssl
from typing import Any

from ._net import target

__all__ = ["SelectorSocket", "dial"]

_RETRY = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def dial(url: str, ssl_context: ssl.SSLContext, timeout: float) -> socket.socket:
    """TCP to `url`'s host, then TLS (SNI, verification) for wss://; blocking, bounded by `timeout`.

    Returns the socket in non-blocking mode. Raises OSError (ssl.SSLError included) or ValueError.
    """
    where = target(url)
    sock = socket.create_connection((where.host, where.port), timeout=timeout)
    try:
        if where.tls:
            sock = ssl_context.wrap_socket(sock, server_hostname=where.host)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class SelectorSocket:
    """One connected non-blocking socket registered with `selector` (its key's data is `owner`)."""

    __slots__ = ("_eof", "_out", "_owner", "_selector", "sock")

    def __init__(self, selector: selectors.BaseSelector, sock: socket.socket, owner: Any) -> None:
        self._selector, self.sock, self._owner = selector, sock, owner
        self._out = bytearray()
        self._eof = False
        selector.register(sock, selectors.EVENT_READ, owner)

    def read(self, max_reads: int = 16) -> list[bytes]:
        """What arrived, until the socket would block; a last b"" means end of stream. Raises OSError.

        At most `max_reads` chunks, so a busy link cannot starve the core's answers or the other links.
        """
        chunks: list[bytes] = []
        while not self._eof and len(chunks) < max_reads:
            try:
                data = self.sock.recv(65536)
            except _RETRY:
                break
            chunks.append(data)
            if not data:  # stop watching for reads; writes (a close frame) may still go out
                self._eof = True
                self._watch()
        return chunks

    def write(self, data: bytes) -> None:
        """Queue `data` and send what the socket takes now. Raises OSError."""
        self._out += data
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
