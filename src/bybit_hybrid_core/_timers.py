"""Named deadlines (aioquic style): timers are data, not callbacks.

The core keeps one `Deadlines` per owner; `earliest()` feeds `Output.deadline` and `due(now)` hands back
the keys whose time has come, earliest first. A key is a name (`"ping"`) or a tuple that says what the timer
is for (`("stale", "linear", "BTCUSDT")`): never a string joined from parts and split again.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["Deadlines", "earliest"]

K = TypeVar("K", bound=Hashable)


class Deadlines(Generic[K]):
    """A mapping of timer key to absolute monotonic time."""

    __slots__ = ("_at",)

    def __init__(self) -> None:
        self._at: dict[K, float] = {}

    def set(self, name: K, when: float) -> None:
        self._at[name] = when

    def cancel(self, name: K) -> None:
        self._at.pop(name, None)

    def get(self, name: K) -> float | None:
        return self._at.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._at

    def earliest(self) -> float | None:
        return min(self._at.values()) if self._at else None

    def due(self, now: float) -> Iterator[K]:
        """Pop and yield every timer whose deadline is at or before `now`, earliest first."""
        while self._at:
            name, when = min(self._at.items(), key=lambda item: item[1])
            if when > now:
                return
            del self._at[name]
            yield name

    def clear(self) -> None:
        self._at.clear()


def earliest(queues: tuple[Deadlines[Any], ...]) -> float | None:
    """The earliest deadline of all `queues` (None: none is set), in one pass: the data plane asks this of
    its timer queues at every `poll()`, where a call per queue cost more than the answer."""
    soonest = None
    for queue in queues:
        at = queue._at
        if at:
            when = min(at.values())
            if soonest is None or when < soonest:
                soonest = when
    return soonest
