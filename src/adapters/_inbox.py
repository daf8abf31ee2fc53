"""The async adapters' inbox: what their readers, fetches and commands post to their loop (the other
direction from `_queue`'s mailboxes), and the event protocol both sides sleep on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

__all__ = ["Inbox", "Signal"]


class Signal(Protocol):
    """`asyncio.Event` or `anyio.Event`; neither is imported here (`bybit_hybrid.asyncio` needs no anyio)."""

    def set(self) -> None: ...
    async def wait(self) -> object: ...


class _Timer(Protocol):
    def cancel(self) -> None: ...


class _CallAt(Protocol):
    """asyncio's `loop.call_at(when, callback, *args)`."""

    def __call__(self, when: float, callback: Callable[[Signal], None], arg: Signal, /) -> _Timer: ...


T = TypeVar("T")


class Inbox(Generic[T]):
    """An adapter loop's input queue on one event loop: readers (anyio's tasks, asyncio's protocols), fetches
    and commands post items; the loop waits for one and then takes everything posted so far, to feed it all
    before it polls the core once.

    Cheaper per read than an anyio memory object stream, whose `receive()` checkpoints (one more trip round
    the event loop) even when it is about to wait, and whose `send()` checkpoints before it hands over:
    here posting never yields and `wait()` yields only to sleep. Posters wait only past `limit` items; in
    practice the loop takes everything each time it runs, since a reader posts once per socket read.

    Args:
        limit: how many items may be pending before `post` waits (`post_nowait` never waits).
        signal: makes the event a sleeper waits on (`anyio.Event`, `asyncio.Event`); called on the event
            loop only.
    """

    __slots__ = ("_items", "_limit", "_ready", "_room", "_signal", "closed")

    def __init__(self, limit: int, signal: Callable[[], Signal]) -> None:
        self._items: list[T] = []
        self._limit = limit
        self._signal = signal
        self._ready: Signal | None = None  # the loop's, while it sleeps
        self._room: Signal | None = None  # the posters', while the inbox is full
        self.closed = False

    def __len__(self) -> int:
        return len(self._items)

    def post_nowait(self, item: T) -> None:
        """Add `item` and wake the loop; dropped once closed (nobody would take it)."""
        if self.closed:
            return
        self._items.append(item)
        if self._ready is not None:
            self._ready.set()
            self._ready = None

    async def post(self, item: T) -> None:
        """`post_nowait`, after waiting while `limit` items are pending (a loop that is behind)."""
        while len(self._items) >= self._limit and not self.closed:
            if self._room is None:
                self._room = self._signal()
            await self._room.wait()
        self.post_nowait(item)

    async def wait(self) -> None:
        """Return once something is pending or the inbox is closed (at once, without yielding, if so)."""
        if not self._items and not self.closed:
            self._ready = self._signal()
            await self._ready.wait()

    async def wait_until(self, deadline: float | None, call_at: _CallAt) -> None:
        """`wait()`, or until the event loop's clock reaches `deadline` (None: no deadline).

        `call_at` is asyncio's `loop.call_at`: one timer handle per sleep, where `asyncio.timeout_at` or an
        anyio cancel scope with a deadline cost several µs to enter and leave, at every sleep of the loop.
        """
        if self._items or self.closed:
            return
        ready = self._ready = self._signal()
        timer = call_at(deadline, self._expire, ready) if deadline is not None else None
        try:
            await ready.wait()
        finally:
            if timer is not None:
                timer.cancel()

    def _expire(self, ready: Signal) -> None:
        if self._ready is ready:
            self._ready = None
        ready.set()

    def take(self) -> list[T]:
        """Everything pending, oldest first (maybe nothing); the inbox is empty afterwards."""
        items, self._items = self._items, []
        if self._room is not None:
            self._room.set()
            self._room = None
        return items

    def close(self) -> None:
        """Drop whatever comes from now on and wake everyone waiting."""
        self.closed = True
        for signal in (self._ready, self._room):
            if signal is not None:
                signal.set()
        self._ready = self._room = None
