"""The adapters notice a wall-clock step against their monotonic clock and tell the core."""

from __future__ import annotations

from bybit_hybrid._wallclock import WallClock


class FakeWall:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms * 1_000_000


def test_a_steady_clock_is_not_a_step_and_a_jump_is_reported_once() -> None:
    wall = FakeWall(1_700_000_000_000)
    clock = WallClock(10.0, wall)
    assert clock.wall_ms() == 1_700_000_000_000
    wall.ms += 5_000
    assert clock.stepped(15.0) is None  # both clocks moved 5 s
    wall.ms += 3_600_000 + 1_000  # an hour of suspend the monotonic clock did not count
    assert clock.stepped(16.0) == wall.ms
    assert clock.stepped(16.0) is None  # reported once; the new offset holds from here on
    wall.ms -= 30_000  # an NTP step back
    assert clock.stepped(16.0) == wall.ms


def test_scheduling_jitter_below_the_step_is_ignored() -> None:
    wall = FakeWall(0)
    clock = WallClock(0.0, wall)
    for i in range(1, 100):
        wall.ms = i * 100 + (37 if i % 2 else -41)  # the two clocks read a few ms apart
        assert clock.stepped(i * 0.1) is None
