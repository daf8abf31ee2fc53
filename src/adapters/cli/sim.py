"""`bybit-hybrid sim`: serve the FakeExchange for a bot's own tests, driven by commands on stdin.

Each command line gets one reply line, `ok: ...` or `error: ...` (several lines for `positions`, `status`
and `help`), so a test harness can write a command and read until the reply.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from ..server import ServedExchange
from .errors import EXIT_NETWORK, EXIT_OK, CliError
from .signals import raise_if_stopped, shielded

__all__ = ["COMMANDS_HELP", "SimShell", "run_sim", "serve", "serve_metrics"]

COMMANDS_HELP = """\
commands (one per line on stdin; each answers 'ok: ...' or 'error: ...'):
  open SYMBOL Buy|Sell SIZE [CATEGORY] [IDX]  open or add at the market; IDX 1 or 2 = hedge legs
                                              (switches SYMBOL to hedge mode); CATEGORY default linear
  close SYMBOL [CATEGORY] [IDX]               close at the market (every open leg when IDX is left out)
  mark SYMBOL PRICE [CATEGORY]                put the mark (and index, last, book top) at PRICE
  order SYMBOL Buy|Sell QTY [price=P] [CATEGORY] [IDX] [reduce]
                                              place an order as POST /v5/order/create does: a limit
                                              order at P (rests until the mark reaches it), else market
  amend SYMBOL ORDER_ID [price=P] [qty=Q] [CATEGORY]  change an open order (POST /v5/order/amend)
  cancel SYMBOL ORDER_ID|all [CATEGORY]       cancel one open order or all of SYMBOL's
  orders [SYMBOL] [CATEGORY]                  the open orders, one per line
  stop SYMBOL [tp=P] [sl=P] [trail=D] [CATEGORY] [IDX]
                                              a position's take profit, stop loss, trailing stop (0: unset)
  leverage SYMBOL BUY [SELL] [CATEGORY]       set the leverage (POST /v5/position/set-leverage)
  positions                                   the exchange's open positions, one per line
  status                                      open WebSocket connections by kind, REST requests served
  drop LINK [abrupt]                          close LINK's connections (close frame 1001; abrupt: none)
  half-open LINK                              LINK's sockets stay open but go silent both ways
  lose-pongs LINK [N]                         swallow the next N (1) JSON pongs on LINK
  reject-auth [N|always]                      refuse the next N (1) auth requests with 'Params Error'
  skew MS                                     the exchange's clock runs MS ms ahead (negative: behind)
  geo-block on|off                            answer every WebSocket upgrade with HTTP 403
  fail-subscribe TOPIC                        refuse every subscribe to TOPIC (until heal)
  rest-fail [N] [STATUS]                      fail the next N REST requests (HTTP STATUS; 200 = retCode 10016)
  restart [drop]                              service restart: fresh snapshots (drop: every link cut too)
  kill | revive                               stop listening and drop every connection | listen again
  heal                                        clear every pending fault
  help                                        this list
  quit                                        stop serving and exit 0
LINK: private, linear, inverse, spot, option, public (every public link) or all."""

_POLL = 0.2  # seconds the command loop waits at most before it looks for a stop signal again
_LINKS = ("private", "linear", "inverse", "spot", "option", "public", "all")
_CATEGORIES = ("linear", "inverse", "spot", "option")


class Usage(Exception):
    """A command line that does not parse: the reply names the right form."""


def _decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise Usage(f"{what} must be a number, got {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise Usage(f"{what} must be positive, got {text!r}")
    return value


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise Usage(f"{what} must be an integer, got {text!r}") from None


def _link(words: list[str]) -> str:
    if not words or words[0] not in _LINKS:
        raise Usage(f"LINK must be one of {', '.join(_LINKS)}")
    return words[0]


def _category_idx(words: list[str]) -> tuple[str, int | None]:
    category, idx = "linear", None
    for word in words:
        if word in _CATEGORIES:
            category = word
        elif word in ("0", "1", "2"):
            idx = int(word)
        else:
            raise Usage(
                f"expected a category ({', '.join(_CATEGORIES)}) or a position index 0/1/2, got {word!r}"
            )
    return category, idx


class SimShell:
    """The commands, run on the served exchange's thread. `execute(line)` returns the reply lines."""

    def __init__(self, served: ServedExchange) -> None:
        self.served = served
        self.commands: dict[str, Callable[[list[str]], str]] = {
            "open": self.open, "close": self.close, "mark": self.mark, "positions": self.positions,
            "status": self.status, "drop": self.drop, "half-open": self.half_open,
            "lose-pongs": self.lose_pongs,
            "reject-auth": self.reject_auth, "skew": self.skew, "geo-block": self.geo_block,
            "fail-subscribe": self.fail_subscribe, "rest-fail": self.rest_fail, "restart": self.restart,
            "kill": self.kill, "revive": self.revive, "heal": self.heal, "help": lambda _: COMMANDS_HELP,
            "order": self.order, "amend": self.amend, "cancel": self.cancel, "orders": self.orders,
            "stop": self.stop, "leverage": self.leverage,
        }  # fmt: skip

    def execute(self, line: str) -> str:
        words = line.split()
        if not words or words[0].startswith("#"):
            return ""
        command = self.commands.get(words[0].lower())
        if command is None:
            return f"error: unknown command {words[0]!r} (type help)"
        try:
            return command(words[1:])
        except Usage as exc:
            return f"error: {exc}"
        except Exception as exc:  # e.g. the venue refusing an order: say so, keep serving
            return f"error: {type(exc).__name__}: {exc}"

    def _call(self, fn: Callable[[Any], object]) -> Any:
        return self.served.call(fn)

    def open(self, words: list[str]) -> str:
        if len(words) < 3 or words[1] not in ("Buy", "Sell"):
            raise Usage("open SYMBOL Buy|Sell SIZE [CATEGORY] [IDX]")
        symbol, side, size = words[0].upper(), words[1], _decimal(words[2], "SIZE")
        category, idx = _category_idx(words[3:])

        def run(ex: Any) -> None:
            if idx in (1, 2):
                ex.venue.set_hedge_mode(category, symbol)
            ex.open_position(symbol, side, size, category=category, position_idx=idx or 0)

        self._call(run)
        return f"ok: {category}/{symbol}/{idx or 0} {side} {size}"

    def close(self, words: list[str]) -> str:
        if not words:
            raise Usage("close SYMBOL [CATEGORY] [IDX]")
        symbol = words[0].upper()
        category, idx = _category_idx(words[1:])

        def run(ex: Any) -> list[str]:
            keys = [k for k in sorted(ex.positions()) if k[:2] == (category, symbol) and idx in (None, k[2])]
            for cat, sym, i in keys:
                ex.close_position(sym, category=cat, position_idx=i)
            return [f"{c}/{s}/{i}" for c, s, i in keys]

        closed = self._call(run)
        return f"ok: closed {', '.join(closed)}" if closed else f"error: no open {category}/{symbol} position"

    def mark(self, words: list[str]) -> str:
        if len(words) < 2:
            raise Usage("mark SYMBOL PRICE [CATEGORY]")
        symbol, price = words[0].upper(), _decimal(words[1], "PRICE")
        category, _ = _category_idx(words[2:])
        mark = self._call(lambda ex: ex.mark(symbol, price, category=category))
        return f"ok: {category}/{symbol} mark {mark}"

    def _trade(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self._call(lambda ex: ex.trade(method, path, params))
        if answer["retCode"] != 0:
            raise Usage(f"retCode {answer['retCode']}: {answer['retMsg']}")
        return answer

    def order(self, words: list[str]) -> str:
        if len(words) < 3 or words[1] not in ("Buy", "Sell"):
            raise Usage("order SYMBOL Buy|Sell QTY [price=P] [CATEGORY] [IDX] [reduce]")
        symbol, side, qty = words[0].upper(), words[1], _decimal(words[2], "QTY")
        rest = words[3:]
        reduce = "reduce" in rest
        prices = [w.removeprefix("price=") for w in rest if w.startswith("price=")]
        price = _decimal(prices[0], "PRICE") if prices else None
        category, idx = _category_idx([w for w in rest if w != "reduce" and not w.startswith("price=")])
        params: dict[str, Any] = {
            "category": category, "symbol": symbol, "side": side, "qty": str(qty),
            "orderType": "Limit" if price is not None else "Market", "positionIdx": idx or 0,
            "reduceOnly": reduce,
        }  # fmt: skip
        if price is not None:
            params["price"] = str(price)
        oid = self._trade("POST", "/v5/order/create", params)["result"]["orderId"]
        kind = f"Limit @ {price}" if price is not None else "Market"
        return f"ok: order {oid} {category}/{symbol}/{idx or 0} {side} {qty} {kind}"

    def amend(self, words: list[str]) -> str:
        fields = {k: v for k, _, v in (w.partition("=") for w in words[2:] if "=" in w)}
        if len(words) < 3 or not fields or set(fields) - {"price", "qty"}:
            raise Usage("amend SYMBOL ORDER_ID [price=P] [qty=Q] [CATEGORY]")
        category, _ = _category_idx([w for w in words[2:] if "=" not in w])
        params = {"category": category, "symbol": words[0].upper(), "orderId": words[1]}
        params.update({k: str(_decimal(v, k.upper())) for k, v in fields.items()})
        self._trade("POST", "/v5/order/amend", params)
        return f"ok: amended {words[1]}"

    def cancel(self, words: list[str]) -> str:
        if len(words) < 2:
            raise Usage("cancel SYMBOL ORDER_ID|all [CATEGORY]")
        symbol, which = words[0].upper(), words[1]
        category, _ = _category_idx(words[2:])
        params = {"category": category, "symbol": symbol}
        if which == "all":
            listed = self._trade("POST", "/v5/order/cancel-all", params)["result"]["list"]
            return f"ok: cancelled {len(listed)} order(s)"
        self._trade("POST", "/v5/order/cancel", {**params, "orderId": which})
        return f"ok: cancelled {which}"

    def orders(self, words: list[str]) -> str:
        symbol = words[0].upper() if words and words[0] not in _CATEGORIES else ""
        category, _ = _category_idx(words[1:] if symbol else words)
        params = {"category": category, "symbol": symbol} if symbol else {"category": category}
        if category == "linear" and not symbol:
            params["settleCoin"] = "USDT"
        rows = self._trade("GET", "/v5/order/realtime", {**params, "limit": "50"})["result"]["list"]
        lines = [
            f"  {r['orderId']} {category}/{r['symbol']}/{r['positionIdx']} {r['side']} {r['qty']} "
            f"{r['orderType']} @ {r['price']}" + (" reduce-only" if r["reduceOnly"] else "")
            for r in rows
        ]
        return "\n".join([f"ok: {len(rows)} open order(s)", *lines])

    def stop(self, words: list[str]) -> str:
        names = {"tp": "takeProfit", "sl": "stopLoss", "trail": "trailingStop"}
        fields = {k: v for k, _, v in (w.partition("=") for w in words[1:] if "=" in w)}
        if not words or not fields or set(fields) - set(names):
            raise Usage("stop SYMBOL [tp=P] [sl=P] [trail=D] [CATEGORY] [IDX]")
        category, idx = _category_idx([w for w in words[1:] if "=" not in w])
        params: dict[str, Any] = {"category": category, "symbol": words[0].upper(), "positionIdx": idx or 0}
        for key, value in fields.items():
            if value != "0":
                _decimal(value, key)
            params[names[key]] = value
        self._trade("POST", "/v5/position/trading-stop", params)
        shown = " ".join(f"{k}={v}" for k, v in fields.items())
        return f"ok: {category}/{words[0].upper()}/{idx or 0} {shown}"

    def leverage(self, words: list[str]) -> str:
        if len(words) < 2:
            raise Usage("leverage SYMBOL BUY [SELL] [CATEGORY]")
        buy = _decimal(words[1], "BUY")
        more = words[2:]
        sell = _decimal(more.pop(0), "SELL") if more and more[0] not in _CATEGORIES else buy
        category, _ = _category_idx(more)
        params = {"category": category, "symbol": words[0].upper(), "buyLeverage": str(buy),
                  "sellLeverage": str(sell)}  # fmt: skip
        self._trade("POST", "/v5/position/set-leverage", params)
        return f"ok: {category}/{words[0].upper()} leverage {buy}/{sell}"

    def positions(self, words: list[str]) -> str:
        def run(ex: Any) -> list[str]:
            return [
                f"  {c}/{s}/{i} {p.side} {p.size} @ {p.avg_price} mark {ex.mark(s, category=c)}"
                for (c, s, i), p in sorted(ex.positions().items())
            ]

        rows = self._call(run)
        return "\n".join([f"ok: {len(rows)} open position(s)", *rows])

    def status(self, words: list[str]) -> str:
        def run(ex: Any) -> list[str]:
            kinds = [ex.kind_of(c) for c in ex.connections()]
            return [f"  {kind}: {kinds.count(kind)}" for kind in sorted(set(kinds), key=str)]

        rows = self._call(run)
        served = self.served
        head = f"ok: {served.connections} connection(s), {served.rest_requests} REST request(s)"
        return "\n".join([head, *rows])

    def drop(self, words: list[str]) -> str:
        link, abrupt = _link(words), words[1:2] == ["abrupt"]
        n = self._call(lambda ex: ex.drop_link(link, close_frame=not abrupt))
        return f"ok: dropped {n} {link} connection(s)" + (" without a close frame" if abrupt else "")

    def half_open(self, words: list[str]) -> str:
        link = _link(words)
        return f"ok: {self._call(lambda ex: ex.half_open(link))} {link} connection(s) half-open"

    def lose_pongs(self, words: list[str]) -> str:
        link, n = _link(words), _int(words[1], "N") if len(words) > 1 else 1
        self._call(lambda ex: ex.lose_pongs(link, n))
        return f"ok: the next {n} pong(s) on {link} will be lost"

    def reject_auth(self, words: list[str]) -> str:
        n = None if words[:1] == ["always"] else _int(words[0], "N") if words else 1
        self._call(lambda ex: ex.reject_auth(n))
        return (
            "ok: every auth will be refused until heal" if n is None else f"ok: the next {n} auth(s) refused"
        )

    def skew(self, words: list[str]) -> str:
        if len(words) != 1:
            raise Usage("skew MS")
        ms = _int(words[0], "MS")
        self._call(lambda ex: ex.clock_skew(ms))
        return f"ok: the exchange clock is {ms} ms off"

    def geo_block(self, words: list[str]) -> str:
        if words not in (["on"], ["off"]):
            raise Usage("geo-block on|off")
        self._call(lambda ex: ex.geo_block(words[0] == "on"))
        return f"ok: geo-block {words[0]}"

    def fail_subscribe(self, words: list[str]) -> str:
        if len(words) != 1:
            raise Usage("fail-subscribe TOPIC")
        self._call(lambda ex: ex.fail_subscribe(words[0]))
        return f"ok: subscribes to {words[0]} will fail"

    def rest_fail(self, words: list[str]) -> str:
        n = _int(words[0], "N") if words else 1
        status = _int(words[1], "STATUS") if len(words) > 1 else 200
        self._call(lambda ex: ex.rest_fail(n, status))
        return f"ok: the next {n} REST request(s) fail" + (f" with HTTP {status}" if status != 200 else "")

    def restart(self, words: list[str]) -> str:
        drop = words[:1] == ["drop"]
        self._call(lambda ex: ex.restart_service(drop_links=drop))
        return "ok: service restarted" + (", every link cut" if drop else "")

    def kill(self, words: list[str]) -> str:
        self.served.kill()
        return f"ok: not listening on port {self.served.port}; every connection dropped"

    def revive(self, words: list[str]) -> str:
        self.served.revive()
        return f"ok: listening again on port {self.served.port}"

    def heal(self, words: list[str]) -> str:
        self._call(lambda ex: ex.heal())
        return "ok: every pending fault cleared"


def banner(served: ServedExchange, metrics_url: str | None = None) -> str:
    lines = [
        f"FakeExchange (Bybit V5) serving on {served.host}:{served.port}; test values only",
        f"  public   {served.ws_url}/v5/public/linear   (also inverse, spot, option)",
        f"  private  {served.ws_url}/v5/private",
        f"  rest     {served.rest_url}   (GET /v5/position/list, /v5/order/*, trading-stop, ...)",
        f"  api key  {served.api_key}",
        f"  secret   {served.api_secret}",
    ]
    if served.ca_file:
        lines.append(f"  ca file  {served.ca_file}   (trust it: cafile=... or --cafile)")
    if metrics_url:
        lines.append(f"  metrics  {metrics_url}   (the FakeExchange's counters, Prometheus text)")
    lines.append(
        f'  python   HybridStream("{served.api_key}", "{served.api_secret}", '
        f'endpoints=Endpoints.custom("{served.ws_url}")' + (", cafile=CA_FILE)" if served.ca_file else ")")
    )
    lines.append("type 'help' for the commands; 'quit' or Ctrl-C stops")
    return "\n".join(lines)


def _read_lines(stream: IO[str], lines: queue.SimpleQueue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def serve(tls: bool, host: str = "127.0.0.1", port: int = 0, seed: int = 0) -> ServedExchange:
    """A started `ServedExchange`; a port in use or a missing TLS helper become one-line errors."""
    served = ServedExchange(tls=tls, host=host, port=port, seed=seed)
    try:
        return served.start()
    except ImportError:
        raise CliError("--tls needs the trustme package", "pip install 'bybit-hybrid[sim]'") from None
    except RuntimeError as exc:
        raise CliError(
            f"cannot serve on {host}:{port}: {exc}",
            "is the port in use? pick another with --port (0 = any free port)",
            EXIT_NETWORK,
        ) from None


def serve_metrics(port: int, target: Any) -> tuple[str, Callable[[], None]]:
    """Serve `bybit_hybrid.metrics` for `target` (a stream or a `ServedExchange`) on 127.0.0.1:`port` (0: any
    free port) in a registry of its own; returns the URL and what stops it."""
    try:
        from .. import metrics
    except ImportError:
        hint = "pip install 'bybit-hybrid[metrics]'"
        raise CliError("--metrics-port needs prometheus_client", hint) from None
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)  # only ours: no process or GC metrics of this CLI
    metrics.register(target, registry)
    try:
        server, thread = metrics.serve(registry, port)
    except OSError as exc:
        raise CliError(
            f"cannot serve metrics on 127.0.0.1:{port}: {exc}", "pick another --metrics-port", EXIT_NETWORK
        ) from None

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return f"http://127.0.0.1:{server.server_port}/metrics", stop


def run_sim(args: Any, stdin: IO[str] | None = None, out: IO[str] | None = None) -> int:
    """The `sim` command (see `cli.py` for its arguments)."""
    stdin, out = stdin or sys.stdin, out or sys.stdout
    served = serve(args.tls, args.host, args.port, args.seed)
    stop_metrics: Callable[[], None] | None = None
    try:
        url = None
        if getattr(args, "metrics_port", None) is not None:
            url, stop_metrics = serve_metrics(args.metrics_port, served)
        print(banner(served, url), file=out, flush=True)
        _serve(SimShell(served), stdin, out, args.duration)
    finally:
        if stop_metrics is not None:
            stop_metrics()
        served.stop()
    return EXIT_OK


def _serve(shell: SimShell, stdin: IO[str], out: IO[str], duration: float | None) -> None:
    """Run commands until quit, --duration, or Ctrl-C; after EOF on stdin just keep serving."""
    lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    reader = threading.Thread(target=_read_lines, args=(stdin, lines), name="sim-stdin", daemon=True)
    with shielded():  # Ctrl-C must reach this thread, not the reader's
        reader.start()
    end = None if duration is None else time.monotonic() + duration
    while True:
        raise_if_stopped()  # Ctrl-C or SIGTERM, recorded by `cli.signals`
        left = None if end is None else end - time.monotonic()
        if left is not None and left <= 0:
            return
        try:  # a bounded wait, so that a stop signal is acted on within _POLL
            line = lines.get(timeout=_POLL if left is None else min(_POLL, left))
        except queue.Empty:
            continue
        if line is None:
            print(
                "stdin closed: serving until Ctrl-C" + (" or --duration" if end else ""), file=out, flush=True
            )
            while end is None or time.monotonic() < end:
                raise_if_stopped()
                time.sleep(0.2 if end is None else max(0.0, min(0.2, end - time.monotonic())))
            return
        if line.strip().lower() in ("quit", "exit"):
            print("ok: bye", file=out, flush=True)
            return
        reply = shell.execute(line)
        if reply:
            print(reply, file=out, flush=True)
