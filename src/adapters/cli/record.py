"""`bybit-hybrid record` and `replay`: raw inbound bytes with timestamps, and a deterministic replay.

The file is NDJSON, one record per line, `t` in seconds since the recording started:

    {"kind": "start", "t": 0.0, "format": "bybit-hybrid-record/1", "wall_ms": ..., "config": {...}}
    {"kind": "up",   "t": 0.012, "link": "linear"}                      transport up (TCP + TLS)
    {"kind": "data", "t": 0.015, "link": "linear", "data": "<base64>"}  bytes as read ("" = end of stream)
    {"kind": "down", "t": 9.5,   "link": "linear", "reason": "..."}     transport lost, or a dial failed
    {"kind": "rest", "t": 0.2,   "link": "private", "category": "linear", "settle_coin": "USDT",
     "cursor": "", "purpose": "snapshot", "symbol": "", "status": 200,
     "data": "<base64 body>"}                                           answer to any REST call
    {"kind": "end",  "t": 30.0}

Recording wraps the stream's `HybridCore` (`RecordingCore`), so it captures exactly what the core was fed.
Replaying feeds a fresh core the same inputs at the same `now` and runs its timers at their deadlines: no
socket, no sleep, the same output for the same file. The one thing rewritten is the upgrade response's
`Sec-WebSocket-Accept`, which answers a random nonce (wsproto's) that differs in every run.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import IO, Any

from bybit_hybrid_core import (
    Config,
    Credentials,
    Dial,
    Endpoints,
    Event,
    Hangup,
    HealthRules,
    HybridCore,
    Link,
    LocalProtocolError,
    RestCall,
    RestRequest,
    Rollout,
    Send,
    Timings,
)

from .errors import EXIT_FAILURE, EXIT_OK, CliError
from .signals import raise_if_stopped

__all__ = ["FORMAT", "RecordingCore", "Replay", "read_records", "run_replay"]

FORMAT = "bybit-hybrid-record/1"
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class RecordingCore(HybridCore):
    """A `HybridCore` that writes every transport input to `out` as it is fed (on the adapter's thread).

    The API key is blanked (same length, so WebSocket frame lengths stay right) wherever the server echoes
    it; the secret never travels, so it cannot be recorded.
    """

    def __init__(self, config: Config, out: IO[str]) -> None:
        super().__init__(config)
        self._out = out
        self._t0 = 0.0
        self.records = 0
        self.bytes = 0
        key = config.credentials.api_key.encode() if config.credentials is not None else b""
        self._scrub: Callable[[bytes], bytes] = (
            (lambda data: data.replace(key, b"*" * len(key))) if key else (lambda data: data)
        )

    def _write(self, record: dict[str, Any]) -> None:
        self._out.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.records += 1

    def start(self, now: float, wall_ms: int) -> None:
        self._t0 = now
        c = self._config
        config = {
            "categories": list(c.categories), "topics": list(c.topics), "private": c.credentials is not None,
            "private_topics": list(c.private_topics), "position_categories": list(c.position_categories),
            "settle_coins": list(c.settle_coins), "seed": c.seed, "timings": dataclasses.asdict(c.timings),
            "endpoints": dataclasses.asdict(c.urls), "health": dataclasses.asdict(c.health),
            "mode": c.mode.value,
            "rollout": {**dataclasses.asdict(c.rollout), "divergence_pct": str(c.rollout.divergence_pct)},
        }  # fmt: skip
        self._write({"kind": "start", "t": 0.0, "format": FORMAT, "wall_ms": wall_ms, "config": config})
        super().start(now, wall_ms)

    def connected(self, link: Link, now: float) -> None:
        self._write({"kind": "up", "t": now - self._t0, "link": link.value})
        super().connected(link, now)

    def receive(self, link: Link, data: bytes, now: float) -> None:
        self.bytes += len(data)
        self._write(
            {"kind": "data", "t": now - self._t0, "link": link.value, "data": _b64(self._scrub(data))}
        )
        super().receive(link, data, now)

    def lost(self, link: Link, now: float, reason: str) -> None:
        self._write({"kind": "down", "t": now - self._t0, "link": link.value, "reason": reason})
        super().lost(link, now, reason)

    def rest_answer(self, request: RestRequest, status: int, body: bytes, now: float) -> None:
        # Every REST answer (`positions_snapshot` is an alias that comes here): `purpose` and `symbol` tell
        # a tickers or time answer from a positions page (a file without them holds only positions pages).
        self._write({
            "kind": "rest", "t": now - self._t0, "link": "private", "category": request.category,
            "settle_coin": request.settle_coin, "cursor": request.cursor, "purpose": request.purpose,
            "symbol": request.symbol, "status": status, "data": _b64(self._scrub(body)),
        })  # fmt: skip
        super().rest_answer(request, status, body, now)

    def end(self, now: float) -> None:
        self._write({"kind": "end", "t": now - self._t0})


# ------------------------------------------------------------------------------------------------ replay

_KINDS = {"up": ("link",), "data": ("link", "data"), "down": ("link", "reason"), "end": (),
          "rest": ("category", "settle_coin", "cursor", "status", "data")}  # fmt: skip


_LINKS = frozenset(link.value for link in Link)


def _problem(record: dict[str, Any], kind: Any) -> str:
    if kind not in _KINDS:
        return "unknown kind"
    missing = [f for f in _KINDS[kind] if f not in record]
    if missing:
        return f"missing {', '.join(missing)}"
    if "link" in record and record["link"] not in _LINKS:
        return f"unknown link {record['link']!r}"
    if "data" in record:
        try:
            base64.b64decode(record["data"], validate=True)
        except (ValueError, TypeError):
            return "data is not base64"
    if "status" in record and not isinstance(record["status"], int):
        return "status is not an integer"
    return ""


def read_records(lines: IO[str], name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and the records of a recording; any malformed line is a usage error naming it."""
    records: list[dict[str, Any]] = []
    header: dict[str, Any] | None = None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{name} line {number}"
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise CliError(f"{where} is not JSON: {exc}", "replay takes a file written by `record`") from None
        if not isinstance(record, dict) or not isinstance(record.get("t"), int | float):
            raise CliError(
                f"{where}: expected an object with a number 't'", "replay takes a file from `record`"
            )
        kind = record.get("kind")
        if header is None:
            if kind != "start" or record.get("format") != FORMAT:
                raise CliError(f"{where}: not a {FORMAT} header", "replay takes a file written by `record`")
            header = record
            continue
        problem = _problem(record, kind)
        if problem:
            raise CliError(
                f"{where}: bad {kind!r} record: {problem}", "replay takes a file written by `record`"
            )
        records.append(record)
    if header is None:
        raise CliError(f"{name} is empty", "replay takes a file written by `record`")
    return header, records


def replay_config(header: dict[str, Any]) -> tuple[Config, int]:
    """The recorded configuration, with stand-in credentials (the server's answers are on file)."""
    try:
        c = header["config"]
        config = Config(
            categories=tuple(c["categories"]), topics=tuple(c["topics"]),
            credentials=Credentials("replay", "replay") if c["private"] else None,
            private_topics=tuple(c["private_topics"]), position_categories=tuple(c["position_categories"]),
            settle_coins=tuple(c["settle_coins"]), seed=int(c["seed"]), timings=Timings(**c["timings"]),
            endpoints=Endpoints(**c["endpoints"]),
            # recordings from before the rollout settings existed replay with the defaults
            health=HealthRules(**c.get("health", {})), mode=c.get("mode", "production"),
            rollout=Rollout(**{**c.get("rollout", {}), "divergence_pct": Decimal(
                c.get("rollout", {}).get("divergence_pct", "1"))}),
        )  # fmt: skip
        return config, int(header["wall_ms"])
    except (KeyError, TypeError, ValueError, ArithmeticError, LocalProtocolError) as exc:
        raise CliError(
            f"the recording's header is unusable: {exc!r}", "was it written by `record`?"
        ) from None


class _Upgrade:
    """One connection's handshake during replay: the nonce we sent and the response head read so far."""

    def __init__(self) -> None:
        self.key: bytes | None = None
        self.head = bytearray()
        self.done = False

    def rewrite(self) -> bytes:
        head, sep, rest = bytes(self.head).partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        if self.key is not None and b" 101" in lines[0]:
            accept = base64.b64encode(hashlib.sha1(self.key + _WS_GUID).digest())
            lines = [
                b"Sec-WebSocket-Accept: " + accept
                if line.lower().startswith(b"sec-websocket-accept:")
                else line
                for line in lines
            ]
        self.done = True
        return b"\r\n".join(lines) + sep + rest


class Replay:
    """Feeds recorded inputs into a fresh `HybridCore`; `emit` gets every event in order."""

    def __init__(self, header: dict[str, Any], emit: Callable[[Event], None]) -> None:
        config, wall_ms = replay_config(header)
        self.core = HybridCore(config)
        self.emit = emit
        self.diverged: list[str] = []
        self._upgrades: dict[Link, _Upgrade] = {}
        self._pending: list[RestRequest] = []
        self._deadline: float | None = None
        self.core.start(0.0, wall_ms)
        self._drain()

    def run(self, records: list[dict[str, Any]]) -> None:
        for number, record in enumerate(records, 2):
            raise_if_stopped()  # Ctrl-C or SIGTERM, recorded by `cli.signals`
            t = float(record["t"])
            self._timers(t)
            try:
                self._apply(record, t)
            except LocalProtocolError as exc:  # the core is not where it was when this was recorded
                self.diverged.append(f"record {number} ({record['kind']} at {t:.3f}): {exc}")
            self._drain()

    def _timers(self, t: float) -> None:
        for _ in range(100_000):
            if self._deadline is None or self._deadline > t:
                return
            self.core.tick(self._deadline)
            self._drain()

    def _apply(self, record: dict[str, Any], t: float) -> None:
        kind = record["kind"]
        link = Link(record["link"]) if "link" in record else Link.PRIVATE
        if kind == "up":
            self._upgrades[link] = _Upgrade()
            self.core.connected(link, t)
        elif kind == "data":
            self._receive(link, base64.b64decode(record["data"]), t)
        elif kind == "down":
            upgrade = self._upgrades.pop(link, None)
            if upgrade is not None and not upgrade.done and upgrade.head:
                self.core.receive(link, bytes(upgrade.head), t)  # fed as they were, live
            self.core.lost(link, t, str(record["reason"]))
        elif kind == "rest":
            self._rest(record, t)

    def _receive(self, link: Link, data: bytes, t: float) -> None:
        upgrade = self._upgrades.get(link)
        if upgrade is None or upgrade.done:
            self.core.receive(link, data, t)
            return
        upgrade.head += data
        if b"\r\n\r\n" in upgrade.head or not data:
            self.core.receive(link, upgrade.rewrite(), t)
            if not data:
                self.core.receive(link, b"", t)

    def _rest(self, record: dict[str, Any], t: float) -> None:
        want = (
            record.get("purpose", "snapshot"), record["category"], record["settle_coin"], record["cursor"],
            record.get("symbol", ""),
        )  # fmt: skip
        match = next(
            (r for r in self._pending if (r.purpose, r.category, r.settle_coin, r.cursor, r.symbol) == want),
            None,
        )
        if match is None:
            raise LocalProtocolError(f"no REST request for {want} is outstanding")
        self._pending.remove(match)
        self.core.rest_answer(match, int(record["status"]), base64.b64decode(record["data"]), t)

    def _drain(self) -> None:
        out = self.core.poll()
        self._deadline = out.deadline
        for action in out.actions:
            match action:
                case Send(link=link, data=data):
                    upgrade = self._upgrades.get(link)
                    if upgrade is not None and upgrade.key is None:
                        upgrade.key = _nonce(data)
                case RestCall(request=request):  # positions, tickers, time
                    self._pending.append(request)
                case Dial(link=link) | Hangup(link=link):
                    self._upgrades.pop(link, None)
        for event in out.events:
            self.emit(event)


def _nonce(request: bytes) -> bytes | None:
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            return value.strip()
    return None


def run_replay(args: Any, write: Callable[[Event], None]) -> int:
    """Replay `args.file`, handing each event (only those named in `args.types`, if given) to `write`."""
    try:
        with open(args.file, encoding="utf-8") as f:
            header, records = read_records(f, args.file)
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror or exc}", "check the path") from None
    except UnicodeDecodeError:
        raise CliError(f"{args.file} is not text", "replay takes a file written by `record`") from None
    types = {t.strip() for t in args.types.split(",")} if args.types else None
    replay = Replay(header, lambda e: write(e) if types is None or type(e).__name__ in types else None)
    replay.run(records)
    for problem in replay.diverged[:5]:
        print(f"bybit-hybrid: replay diverged at {problem}", file=sys.stderr)
    return EXIT_FAILURE if replay.diverged else EXIT_OK
