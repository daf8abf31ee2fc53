"""How the CLI stops: on SIGINT (Ctrl-C) or SIGTERM the command unwinds with `KeyboardInterrupt` (sockets
closed, threads joined) and exits 0, whenever the signal comes.

What makes that hold at any moment, not just once a command is up:

* `stop_signals` installs both handlers itself, even over an inherited SIG_IGN. A shell without job
  control (a script, a CI step, `make`) starts `cmd &` with SIGINT and SIGQUIT ignored, and Python then
  leaves SIGINT ignored: `kill -INT` of a backgrounded `bybit-hybrid sim` or `demo` did nothing at all.
* The handler only records the request; every command's loop calls `raise_if_stopped` on each turn (at
  least every 0.2 s) and unwinds from there. A `KeyboardInterrupt` raised by the handler itself, at
  whatever bytecode the main thread is on, is not safe: run inside a weakref callback or a `__del__`
  (importlib's module-lock callback after an import) it is printed as "Exception ignored" and lost; ending
  a string `exec` (dataclasses and namedtuples are made that way) it makes CPython believe a Ctrl-C went
  unhandled, and `python -m` then exits by SIGINT (-2) although the program caught it; and it could cut
  a cleanup in half. Every wait the main thread makes without polling is short and bounded.
* `shielded` blocks both signals while worker threads are started: those threads (and every thread they
  start) never take them, so the kernel always hands them to the main thread, the one that handles them.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["STOP_SIGNALS", "raise_if_stopped", "shielded", "stop_signals"]

STOP_SIGNALS: tuple[signal.Signals, ...] = () if sys.platform == "win32" else (signal.SIGINT, signal.SIGTERM)


class _State:
    asked = False  # a stop signal came in since `stop_signals` began


def _handler(signum: int, frame: object) -> None:
    _State.asked = True


def raise_if_stopped() -> None:
    """Raise `KeyboardInterrupt` if a stop signal came in: the loops call this on every turn."""
    if _State.asked:
        raise KeyboardInterrupt


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """SIGINT and SIGTERM are recorded for `raise_if_stopped` while inside; the previous handlers come
    back after. Only the main thread can install handlers: elsewhere, and on Windows (where Ctrl-C raises
    `KeyboardInterrupt` by itself), this does nothing."""
    if not STOP_SIGNALS or not _in_main_thread():
        yield
        return
    _State.asked = False
    previous: dict[signal.Signals, Any] = {}
    try:
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, _handler)
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        _State.asked = False


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back in this thread while inside: threads started here inherit the block
    (so they never take those signals), and one that arrives meanwhile is handled when the block ends."""
    if not STOP_SIGNALS or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
