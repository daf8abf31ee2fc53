"""Running a live stream for a CLI command: the threaded `HybridStream`, its events to NDJSON or a board,
fatal start-up failures to a `CliError`, and a clean stop at `--duration`, Ctrl-C or an error.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import IO, Any, Protocol

from bybit_hybrid_core import Endpoints, Event, Link, LinkStatus, LocalProtocolError

from .._log import LIFECYCLE_LOGGER
from .._startup import StartupWatch
from ..threaded import HybridStream
from .errors import EXIT_OK, EXIT_USAGE, CliError, cli_error
from .signals import raise_if_stopped, shielded
from .view import JsonLines, LiveView

__all__ = ["Board", "LiveRun", "endpoint_options", "open_stream"]

DRAW_EVERY = 0.2  # terminal redraws per second: 5 is smooth enough for marks that move every 100 ms


class Board(Protocol):
    origin: float

    def apply(self, event: Event) -> str | None: ...
    def note(self, now: float, text: str) -> str: ...
    def lines(self, now: float, status: dict[Link, LinkStatus]) -> list[str]: ...
    def summary(self, now: float) -> list[str]: ...


def endpoint_options(args: Any) -> dict[str, Any]:
    """`--ws-url`, `--rest-url`, `--cafile`, `--testnet`, `--demo` as `HybridStream` keyword arguments."""
    options: dict[str, Any] = {}
    ws_url, rest_url = getattr(args, "ws_url", None), getattr(args, "rest_url", None)
    if rest_url and not ws_url:
        raise CliError("--rest-url needs --ws-url too", "give both, e.g. --ws-url ws://127.0.0.1:8765")
    if ws_url:
        try:
            options["endpoints"] = Endpoints.custom(ws_url, rest_url)
        except LocalProtocolError as exc:
            raise CliError(str(exc), "e.g. --ws-url wss://stream.bybit.com") from None
    if getattr(args, "cafile", None):
        options["cafile"] = args.cafile
    # Flags given on the command line win; otherwise BYBIT_TESTNET / BYBIT_DEMO apply (bybit_hybrid.config).
    if getattr(args, "testnet", False):
        options["testnet"] = True
    if getattr(args, "demo", False):
        options["demo"] = True
    return options


def open_stream(api_key: str, api_secret: str, **options: Any) -> HybridStream:
    """A configured (not started) threaded stream; configuration mistakes become usage errors."""
    try:
        return HybridStream(api_key, api_secret, **options)
    except (LocalProtocolError, ValueError) as exc:
        raise CliError(str(exc), code=EXIT_USAGE) from None
    except (FileNotFoundError, OSError) as exc:  # --cafile that cannot be read
        raise CliError(f"cannot use the CA file: {exc}", "--cafile takes a PEM bundle") from None


class _LogTap(logging.Handler):
    """The adapters' log records, kept for the loop to show (a stray stderr line would tear the view)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: deque[str] = deque(maxlen=100)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == LIFECYCLE_LOGGER:
            return  # a link or health change: the view shows the event itself
        self.lines.append(f"{record.levelname.lower()}: {record.getMessage()}")


@contextlib.contextmanager
def _tapped_logs() -> Iterator[_LogTap]:
    logger = logging.getLogger("bybit_hybrid")
    tap, propagate = _LogTap(), logger.propagate
    logger.addHandler(tap)
    logger.propagate = False
    try:
        yield tap
    finally:
        logger.removeHandler(tap)
        logger.propagate = propagate


class LiveRun:
    """Drive `stream` until `duration` passes (None: until Ctrl-C), showing its events.

    Args:
        stream: a threaded stream, started by `run` and stopped when it ends.
        board: what to show without `json`.
        json: print every event as NDJSON instead of the view.
        tty: redraw the board in place; otherwise print notable events and a summary every `interval`.
        on_tick: called with the monotonic time on every turn of the loop (the demo's scenario).
        check: called with every event; a `CliError` it returns ends the run (after the start-up checks).
    """

    def __init__(
        self,
        stream: HybridStream,
        board: Board,
        *,
        json: bool = False,
        tty: bool = False,
        duration: float | None = None,
        interval: float = 1.0,
        on_tick: Callable[[float], None] | None = None,
        check: Callable[[Event], CliError | None] | None = None,
        out: IO[str] | None = None,
    ) -> None:
        self.stream, self.board = stream, board
        self.json = JsonLines(sys.stdout.buffer) if json else None
        self.out = out if out is not None else sys.stdout
        self.tty, self.duration, self.interval = tty and not json, duration, interval
        self.on_tick, self.check = on_tick, check
        self.watch = StartupWatch(stream.settings.config)  # the rules wait_live() uses too
        self.started = time.monotonic()

    def note(self, text: str, now: float | None = None) -> None:
        """A line of our own (e.g. what the demo just did): in the log, or on stderr with --json."""
        line = self.board.note(time.monotonic() if now is None else now, text)
        if self.json is not None:
            print(text, file=sys.stderr, flush=True)
        elif not self.tty:
            print(line, file=self.out, flush=True)

    def run(self) -> int:
        self.started = self.board.origin = time.monotonic()
        screen = LiveView(self.out) if self.tty else None
        end = None if self.duration is None else self.started + self.duration
        summary: list[str] | None = None
        try:
            with shielded():  # its threads never take Ctrl-C (one pressed meanwhile is seen right after)
                self.stream.start()
            with _tapped_logs() as tap:
                try:
                    self._loop(screen, end, tap)
                except KeyboardInterrupt:  # Ctrl-C ends a run as --duration does: with its summary
                    summary = self._summary()
                    raise
                summary = self._summary()
        finally:
            if screen is not None:
                screen.close()
            self.stream.stop()
            if summary:
                self._print_summary(screen, summary)
        return EXIT_OK

    def _summary(self) -> list[str] | None:
        """The board's end-of-run summary (None for a board without one), taken before the stream stops."""
        final = getattr(self.board, "final_lines", None)
        if final is None:
            return None
        try:
            status = self.stream.call(lambda core: core.status())
        except Exception:  # a stream that cannot answer any more: the summary goes without its links
            status = {}
        lines: list[str] = final(time.monotonic(), status)
        return lines

    def _print_summary(self, screen: LiveView | None, lines: list[str]) -> None:
        """Under the last frame on a terminal; as lines otherwise; on stderr with --json (stdout: NDJSON)."""
        if screen is not None:
            screen.print_lines(lines)
            return
        out = sys.stderr if self.json is not None else self.out
        print("\n".join(lines), file=out, flush=True)

    def _loop(self, screen: LiveView | None, end: float | None, tap: _LogTap) -> None:
        next_draw = time.monotonic()
        while True:
            raise_if_stopped()  # Ctrl-C or SIGTERM, recorded by `cli.signals`
            now = time.monotonic()
            if end is not None and now >= end:
                return
            wait = DRAW_EVERY if end is None else max(0.0, min(DRAW_EVERY, end - now))
            for event in self.stream.next_batch(wait):
                self._take(event)
            while tap.lines:
                self.note(tap.lines.popleft())
            now = time.monotonic()
            if self.on_tick is not None:
                self.on_tick(now)
            if self.json is None and now >= next_draw:
                self._draw(screen, now)
                next_draw = now + (DRAW_EVERY if screen is not None else self.interval)

    def _take(self, event: Event) -> None:
        failure = self.watch.check(event)
        error = cli_error(failure) if failure is not None else self.check(event) if self.check else None
        if error is not None:
            raise error
        if self.json is not None:
            self.json.write(event)
            return
        line = self.board.apply(event)
        if line is not None and not self.tty:
            print(line, file=self.out, flush=True)

    def _draw(self, screen: LiveView | None, now: float) -> None:
        if screen is not None:
            status = self.stream.call(lambda core: core.status())
            screen.draw(self.board, now, status)
        else:
            for line in self.board.summary(now):
                print(line, file=self.out, flush=True)
