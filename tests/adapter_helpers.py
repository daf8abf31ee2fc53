"""Helpers shared by the adapter, server and bot tests: a stand-in exchange and leak checks."""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Send:
    conn: int
    data: bytes


@dataclass(frozen=True)
class Close:
    conn: int


@dataclass
class EchoExchange:
    """Just enough of the FakeExchange's shape to test the server's socket plumbing: echoes every byte
    (the upgrade request included), closes on b"quit", answers REST with what it was asked."""

    out: list[Send | Close] = field(default_factory=list)
    received: dict[int, bytes] = field(default_factory=dict)
    gone: list[int] = field(default_factory=list)
    rest_calls: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    rest_answer: tuple[int, bytes] = (200, b'{"retCode":0}')
    ticks: int = 0
    next_conn: int = 0

    def accept(self, now: float) -> int:
        self.next_conn += 1
        self.received[self.next_conn] = b""
        return self.next_conn

    def receive(self, conn: int, data: bytes, now: float) -> None:
        self.received[conn] += data
        if data.strip() == b"quit":
            self.out.append(Close(conn))
        elif data:
            self.out.append(Send(conn, data))

    def disconnected(self, conn: int, now: float) -> None:
        self.gone.append(conn)

    def tick(self, now: float) -> None:
        self.ticks += 1

    def deadline(self) -> float | None:
        return None

    def poll(self) -> list[Send | Close]:
        out, self.out = self.out, []
        return out

    def rest(self, method: str, target: str, headers: Mapping[str, str], now: float) -> tuple[int, bytes]:
        self.rest_calls.append((method, target, {k: headers[k] for k in headers}))
        return self.rest_answer


def open_fds() -> set[str]:
    """This process's open socket file descriptors (Linux)."""
    fds = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                fds.add(fd)
    return fds


@contextlib.contextmanager
def no_leaks(settle: float = 2.0) -> Iterator[None]:
    """Fail if the block leaves threads or sockets behind (waits up to `settle` s for them to go)."""
    gc.collect()
    threads, fds = set(threading.enumerate()), open_fds()
    yield
    deadline = time.monotonic() + settle
    while True:
        gc.collect()
        extra_threads = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
        extra_fds = open_fds() - fds
        if not extra_threads and not extra_fds:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"leaked threads {extra_threads} and sockets {sorted(extra_fds)}")
        time.sleep(0.02)


def _trio_works_with_anyio() -> bool:
    # anyio >= 4.12 calls trio.CancelScope.cancel(reason), which trio < 0.32 does not take: on such a machine
    # every anyio-on-trio test would fail inside anyio, whatever the adapter does.
    try:
        import inspect

        import trio
    except ImportError:
        return False
    return "reason" in inspect.signature(trio.CancelScope.cancel).parameters


TRIO_WORKS = _trio_works_with_anyio()
TRIO_SKIP = "installed trio is older than this anyio needs (trio.CancelScope.cancel has no `reason`)"
