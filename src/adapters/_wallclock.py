"""Noticing the system clock step (a suspend, an NTP correction) so the core's wall time follows it.

The core derives wall time from `start()`'s `wall_ms` plus the monotonic `now`; monotonic clocks do not see
a suspend or an NTP step, so after one the core's idea of Unix time drifts and auth `expires` or REST
timestamps go wrong (Bybit refuses them). Each adapter loop asks `stepped(now)` on every wake-up (one
`time.time_ns()` call) and, when the wall clock moved against the monotonic one, tells the core
`core.clock(now, wall_ms)`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["WallClock"]


class WallClock:
    """The offset between the wall clock and the loop's monotonic clock, and when it jumps.

    Args:
        now: the loop clock's current reading (seconds).
        wall_ns: the wall clock (`time.time_ns`; tests pass their own).
        step_ms: how far the offset must move to count as a step (scheduling jitter is far smaller).
    """

    __slots__ = ("_offset", "_step", "_wall_ns")

    def __init__(
        self, now: float, wall_ns: Callable[[], int] = time.time_ns, step_ms: float = 1000.0
    ) -> None:
        self._wall_ns = wall_ns
        self._step = step_ms
        self._offset = self.wall_ms() - now * 1000.0

    def wall_ms(self) -> int:
        return self._wall_ns() // 1_000_000

    def stepped(self, now: float) -> int | None:
        """The wall time in ms when the clock stepped since the last look, else None."""
        wall = self.wall_ms()
        offset = wall - now * 1000.0
        if abs(offset - self._offset) <= self._step:
            return None
        self._offset = offset
        return wall
