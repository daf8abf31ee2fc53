"""The `bybit-hybrid` command line: demo, watch, positions, shadow, sim, record, replay.

    bybit-hybrid demo                       # everything on an embedded FakeExchange, no account needed
    bybit-hybrid watch BTCUSDT ETHUSDT      # live public tickers from Bybit
    bybit-hybrid positions --testnet        # your positions priced at the live mark (keys from the env)

Each command is a thin layer over the threaded adapter and `ServedExchange`; `bybit-hybrid CMD --help`
shows its options, examples and exit codes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from .errors import EXIT_CODES_HELP, EXIT_OK, SHADOW_EXIT_CODES_HELP, CliError
from .signals import raise_if_stopped, stop_signals

__all__ = ["build_parser", "main"]

_FORMATTER = argparse.RawDescriptionHelpFormatter

DEMO_HELP = """\
Starts the FakeExchange on 127.0.0.1 and a hybrid stream against it, then runs a script: opens and closes
positions (one-way and hedge, linear and inverse), moves a mark and injects faults (dropped links, a
half-open link, a service restart). The view shows each position with side, size, entry, live mark, PnL at
the mark and mark age, and the health of each link; reconnects and resyncs appear under RECENT.
When stdout is not a terminal, events and a position summary are printed as lines instead.

examples:
  bybit-hybrid demo
  bybit-hybrid demo --duration 20
  bybit-hybrid demo --duration 5 --json | grep PositionUpdate
  bybit-hybrid demo --tls --seed 7
  bybit-hybrid demo --metrics-port 9464       # Prometheus text at http://127.0.0.1:9464/metrics

--json prints one JSON object per event (NDJSON, {"type": "PositionUpdate", ...}, money as strings);
what the demo does is said on stderr."""

WATCH_HELP = """\
Live public tickers from Bybit: last, mark and index price, best bid/ask, 24 h change, funding rate and
the age of each ticker. No API key is needed.

examples:
  bybit-hybrid watch BTCUSDT ETHUSDT
  bybit-hybrid watch BTCUSD --category inverse
  bybit-hybrid watch BTCUSDT --testnet --json --duration 10
  bybit-hybrid watch BTCUSDT --ws-url ws://127.0.0.1:8765      # against `bybit-hybrid sim`"""

POSITIONS_HELP = """\
The hybrid stream of your account: every open position (linear and inverse) with side, size, entry, the
live mark price, PnL at that mark and the mark's age, kept live between trades. Reads the API key from
BYBIT_API_KEY and BYBIT_API_SECRET (a read-only key is enough); nothing secret is ever printed.

examples:
  export BYBIT_API_KEY=... BYBIT_API_SECRET=...
  bybit-hybrid positions
  bybit-hybrid positions --testnet
  bybit-hybrid positions --demo --json
  BYBIT_API_KEY=test-key BYBIT_API_SECRET=test-secret bybit-hybrid positions --ws-url ws://127.0.0.1:8765"""

SIM_HELP = """\
Serves the FakeExchange (Bybit V5 public and private WebSocket endpoints, and GET /v5/position/list) for
a bot's own tests. Prints the URLs and the test credentials, then reads commands from stdin, one per
line. After end of input it keeps serving until Ctrl-C (or --duration).

examples:
  bybit-hybrid sim
  bybit-hybrid sim --port 0 --tls
  printf 'open BTCUSDT Buy 0.5\\nmark BTCUSDT 68000\\n' | bybit-hybrid sim --duration 60
  bybit-hybrid sim --metrics-port 9465        # the FakeExchange's own counters for Prometheus

{commands}"""

RECORD_HELP = """\
Records the raw inbound bytes of a stream with timestamps to FILE (NDJSON: a header, then
{{"t": seconds, "link": "linear", "kind": "up"|"data"|"down"|"rest", "data": base64, ...}} per line), for bug
reports and benchmarks. `replay FILE` runs them through the core again. With --private the account's
stream is recorded too (keys from BYBIT_API_KEY/BYBIT_API_SECRET; the key is blanked in the file, the
secret never leaves this machine, but positions and orders are in it: share with care).

examples:
  bybit-hybrid record btc.ndjson tickers.BTCUSDT orderbook.50.BTCUSDT --duration 60
  bybit-hybrid record account.ndjson --private --testnet --duration 120"""

SHADOW_HELP = """\
The rollout's parallel step, watched: the stream runs beside REST polling of your positions and every
REST poll's mark is compared with the stream's mark of that moment. Per symbol the view shows the last
stream and REST marks, their divergence, how many comparisons and divergences (over --threshold) and the
largest divergence seen. At the end (--duration or Ctrl-C) a summary and the verdict as the exit code.
The mode is parallel, or HYBRID_MODE's when it is parallel, cutover or production (HYBRID_SHARE: the
cutover share). Keys from BYBIT_API_KEY and BYBIT_API_SECRET (read-only is enough), or --sim: the
FakeExchange on 127.0.0.1 with open positions, and --diverge SYMBOL:PCT to see the check catch a REST mark
PCT % off.

examples:
  bybit-hybrid shadow --sim --duration 30
  HYBRID_MODE=production bybit-hybrid shadow --sim --diverge BTCUSDT:5 --duration 30   # exits 1
  export BYBIT_API_KEY=... BYBIT_API_SECRET=...
  bybit-hybrid shadow --testnet --duration 600 --threshold 0.5
  bybit-hybrid shadow --duration 3600 --json | grep MarksCompared"""

REPLAY_HELP = """\
Feeds a recording made by `record` into a fresh core at the recorded times (no sockets, no sleeping) and
prints the events: the same file always gives the same output.

examples:
  bybit-hybrid replay btc.ndjson
  bybit-hybrid replay account.ndjson --json --types PositionUpdate,PositionClosed"""


def _add_output(
    p: argparse.ArgumentParser, duration_help: str = "stop after SECONDS (default: Ctrl-C)"
) -> None:
    p.add_argument("--duration", type=float, metavar="SECONDS", help=duration_help)
    p.add_argument(
        "--json", action="store_true", help="print one JSON object per event (NDJSON) instead of the view"
    )
    p.add_argument("--interval", type=float, default=1.0, metavar="SECONDS", help=argparse.SUPPRESS)


def _add_endpoints(p: argparse.ArgumentParser, demo: bool) -> None:
    env = p.add_mutually_exclusive_group()
    env.add_argument("--testnet", action="store_true", help="Bybit testnet (testnet keys)")
    if demo:
        env.add_argument(
            "--demo", action="store_true", help="Bybit demo trading (demo keys; public data is mainnet's)"
        )
    adv = p.add_argument_group("advanced (proxies, regional hosts, test servers)")
    adv.add_argument(
        "--ws-url",
        metavar="URL",
        help="WebSocket base instead of Bybit's, e.g. wss://host or ws://127.0.0.1:8765",
    )
    adv.add_argument("--rest-url", metavar="URL", help="REST base (default: derived from --ws-url)")
    adv.add_argument(
        "--cafile", metavar="FILE", help="trust this CA bundle (PEM) instead of the system roots"
    )


def _add_metrics(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--metrics-port", type=int, metavar="N",
        help=f"serve {what} for Prometheus on http://127.0.0.1:N/metrics (0 = any free port; "
        "needs bybit-hybrid[metrics])",
    )  # fmt: skip


def _sub(
    subs: Any, name: str, summary: str, description: str, run: Callable[[Any], int],
    epilog: str = EXIT_CODES_HELP,
) -> argparse.ArgumentParser:  # fmt: skip
    p: argparse.ArgumentParser = subs.add_parser(
        name, help=summary, description=description, epilog=epilog, formatter_class=_FORMATTER
    )
    p.set_defaults(run=run)
    return p


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bybit-hybrid")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    from .sim import COMMANDS_HELP

    parser = argparse.ArgumentParser(
        prog="bybit-hybrid", formatter_class=_FORMATTER, description=__doc__.split("\n\n")[1],
        epilog="run `bybit-hybrid COMMAND --help` for examples\n\n" + EXIT_CODES_HELP,
    )  # fmt: skip
    parser.add_argument("--version", action="version", version=f"bybit-hybrid {_version()}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = _sub(
        subs, "demo", "the hybrid stream against an embedded FakeExchange (no account)", DEMO_HELP, _demo
    )
    _add_output(p)
    p.add_argument("--tls", action="store_true", help="serve wss:// with a throwaway CA (needs trustme)")
    p.add_argument("--seed", type=int, default=0, help="the FakeExchange's market seed (default 0)")
    _add_metrics(p, "the stream's metrics")

    p = _sub(subs, "watch", "live public tickers from Bybit (no keys)", WATCH_HELP, _watch)
    p.add_argument("symbols", nargs="+", metavar="SYMBOL")
    p.add_argument("--category", default="linear", choices=("linear", "inverse", "spot", "option"))
    _add_output(p)
    _add_endpoints(p, demo=False)

    p = _sub(subs, "positions", "your positions priced at the live mark (keys from the env)", POSITIONS_HELP,
             _positions)  # fmt: skip
    _add_output(p)
    _add_endpoints(p, demo=True)

    p = _sub(subs, "shadow", "compare REST marks with the stream's (the rollout's parallel step)",
             SHADOW_HELP, _shadow, epilog=SHADOW_EXIT_CODES_HELP)  # fmt: skip
    _add_output(p)
    _add_endpoints(p, demo=True)
    p.add_argument(
        "--sim",
        action="store_true",
        help="against the FakeExchange on 127.0.0.1 with open positions (no keys)",
    )
    p.add_argument(
        "--diverge", action="append", metavar="SYMBOL:PCT",
        help="with --sim: the REST mark of SYMBOL is PCT %% off the stream's (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--threshold", type=Decimal, default=Decimal(1), metavar="PCT",
        help="a comparison over PCT %% is a divergence (default 1)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="with --sim: the market seed (default 0)")
    p.add_argument("--poll-interval", type=float, metavar="SECONDS", help=argparse.SUPPRESS)

    p = _sub(subs, "sim", "serve the FakeExchange for a bot's tests; commands on stdin",
             SIM_HELP.format(commands=COMMANDS_HELP), _sim)  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any free port)")
    p.add_argument(
        "--tls", action="store_true", help="wss:// and https:// with a throwaway CA (prints its file)"
    )
    p.add_argument("--seed", type=int, default=0, help="the market seed (default 0)")
    p.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop after SECONDS (default: quit or Ctrl-C)"
    )
    _add_metrics(p, "the FakeExchange's counters (connections, REST requests, violations)")

    p = _sub(subs, "record", "record raw inbound frames with timestamps to FILE", RECORD_HELP, _record)
    p.add_argument("file", metavar="FILE")
    p.add_argument("topics", nargs="*", metavar="TOPIC", help="public topics, e.g. tickers.BTCUSDT")
    p.add_argument("--category", default="linear", choices=("linear", "inverse", "spot", "option"))
    p.add_argument(
        "--private", action="store_true", help="record the account's stream too (keys from the env)"
    )
    _add_output(p)
    _add_endpoints(p, demo=True)

    p = _sub(subs, "replay", "replay a recording through the core; print its events", REPLAY_HELP, _replay)
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print NDJSON instead of lines")
    p.add_argument("--types", metavar="TYPE,...", help="only these event types, e.g. PositionUpdate,LinkDown")
    return parser


# Each command's module is imported when it runs, so `--help` stays fast and `sim` needs no client code.


def _demo(args: Any) -> int:
    from .demo import run_demo

    return run_demo(args)


def _watch(args: Any) -> int:
    from .commands import run_watch

    return run_watch(args)


def _positions(args: Any) -> int:
    from .commands import run_positions

    return run_positions(args)


def _shadow(args: Any) -> int:
    from .shadow import run_shadow

    return run_shadow(args)


def _sim(args: Any) -> int:
    from .sim import run_sim

    return run_sim(args)


def _record(args: Any) -> int:
    from .commands import run_record

    return run_record(args)


def _replay(args: Any) -> int:
    from .record import run_replay
    from .view import JsonLines, event_line

    if args.json:
        lines = JsonLines(sys.stdout.buffer)
        return run_replay(args, lines.write)
    return run_replay(args, lambda event: print(event_line(event), flush=False))


def _check_numbers(args: Any) -> None:
    duration = getattr(args, "duration", None)
    if duration is not None and not duration > 0:
        raise CliError(
            f"--duration must be a positive number of seconds, got {duration}", "e.g. --duration 10"
        )
    if getattr(args, "interval", 1.0) <= 0:
        raise CliError("--interval must be positive")
    port = getattr(args, "port", 0)
    if not 0 <= port <= 65535:
        raise CliError(f"--port must be between 0 and 65535, got {port}")
    metrics_port = getattr(args, "metrics_port", None)
    if metrics_port is not None and not 0 <= metrics_port <= 65535:
        raise CliError(f"--metrics-port must be between 0 and 65535, got {metrics_port}")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (see `EXIT_CODES_HELP`).

    Ctrl-C (SIGINT) and SIGTERM end every command with 0 from here on, also when SIGINT was inherited as
    ignored (`bybit-hybrid sim &` in a script): the handlers record them and each command's loop stops
    (see `cli.signals`)."""
    try:
        with stop_signals():
            return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C is how the live commands are meant to end
        return EXIT_OK


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, already printed by argparse)
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    try:
        _check_numbers(args)
        raise_if_stopped()  # a signal while the parser was built
        code: int = args.run(args)
        sys.stdout.flush()
        return code
    except CliError as exc:
        print(exc.line(), file=sys.stderr, flush=True)
        return exc.code
    except BrokenPipeError:  # `... | head`: the reader left; say nothing more
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
