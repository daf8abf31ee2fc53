"""Each link's current connection and counters: bookkeeping the three adapters share (a helper, not a base).

An adapter makes one connection object per `Dial`, and its reader task (or dial thread) tags every report with
that object. A report from a connection that has been replaced (a redial) or hung up since is late: the core
has moved on, and hearing it as news of the link would tear down the new connection. So the adapter asks
`current()` before it feeds a report, and `report()` does so for the async adapters' inbox items.

Only the adapter's loop calls into a `Links` (it calls the core).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, Protocol, TypeVar

from bybit_hybrid_core import HybridCore, Link

from ._net import LinkStats

__all__ = ["Conn", "Links"]


class Conn(Protocol):
    """What `Links` needs of an adapter's connection object."""

    def close(self) -> None:
        """Stop the connection's reader and let go of its socket; called once, when it stops being current."""


C = TypeVar("C", bound=Conn)


class Links(Generic[C]):
    """The current connection of each link (dialing or open) and each link's `LinkStats`.

    Args:
        core: the adapter's core; `connected`, `received` and `lost` tell it, with the stats kept alongside.
    """

    __slots__ = ("_conns", "core", "stats")

    def __init__(self, core: HybridCore) -> None:
        self.core = core
        self.stats: dict[Link, LinkStats] = {link: LinkStats() for link in Link}
        self._conns: dict[Link, C] = {}

    def __iter__(self) -> Iterator[Link]:
        """The links that have a connection."""
        return iter(self._conns)

    def get(self, link: Link) -> C | None:
        return self._conns.get(link)

    def current(self, link: Link, conn: C) -> bool:
        """Whether `conn` is still `link`'s connection (else what it reports is late)."""
        return self._conns.get(link) is conn

    def dial(self, link: Link, conn: C) -> C:
        """Make `conn` the link's connection, closing the one it replaces; returns `conn`."""
        self.close(link)
        self._conns[link] = conn
        self.stats[link].dials += 1
        return conn

    def close(self, link: Link) -> None:
        """Forget the link's connection and close it (a no-op without one)."""
        conn = self._conns.pop(link, None)
        if conn is not None:
            conn.close()

    def close_all(self) -> None:
        for link in list(self._conns):
            self.close(link)

    def connected(self, link: Link, now: float) -> None:
        self.stats[link].connects += 1
        self.core.connected(link, now)

    def received(self, link: Link, data: bytes, now: float) -> None:
        """Bytes read on the link; b"" is end of stream (the core hangs up and redials)."""
        stats = self.stats[link]
        stats.bytes_in += len(data)
        stats.last_receive = now
        self.core.receive(link, data, now)

    def lost(self, link: Link, now: float, reason: str) -> None:
        """The link's connection failed (dial, read or write): close it and tell the core why."""
        self.close(link)
        self.core.lost(link, now, reason)

    def feed(self, kind: str, link: Any, conn: Any, payload: Any, now: float) -> None:
        """One item of an async adapter's inbox: a reader's report (`report`), a REST answer ("rest": `conn`
        is the request, `payload` its `(status, body)`) or a wake-up after a command ("poll": nothing)."""
        if kind == "rest":
            self.core.rest_answer(conn, payload[0], payload[1], now)
        elif kind != "poll":
            self.report(kind, link, conn, payload, now)

    def report(self, kind: str, link: Link, conn: C, payload: Any, now: float) -> None:
        """A reader task's report on `conn`: "up", "data" (bytes) or "lost" (a reason); late ones dropped."""
        if not self.current(link, conn):
            return
        if kind == "up":
            self.connected(link, now)
        elif kind == "data":
            self.received(link, payload, now)
        else:
            self.lost(link, now, payload)
