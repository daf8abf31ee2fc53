"""Seeded chaos for the Simulation: random faults at random (exponentially spaced) virtual times."""

from __future__ import annotations

from random import Random

from ._exchange import FakeExchange

__all__ = ["FAULTS", "Chaos"]

FAULTS: tuple[str, ...] = (
    "drop",
    "drop_abrupt",
    "half_open",
    "lose_pongs",
    "delay_pongs",
    "duplicate",
    "reorder",
    "garbage",
    "reject_auth",
    "rest_fail",
    "restart",
)
GARBAGE: tuple[str, ...] = (
    '{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":',
    "[]",
    "null",
    "{}",
    "\x00",
)


class Chaos:
    """Strikes `exchange` with a random fault about `rate` times per virtual second (0: never)."""

    def __init__(self, exchange: FakeExchange, rng: Random, rate: float) -> None:
        self.exchange = exchange
        self.rng = rng
        self.rate = rate
        self.log: list[tuple[float, str]] = []
        self.next_at: float | None = rng.expovariate(rate) if rate > 0 else None

    def strike(self, now: float) -> None:
        if self.rate <= 0:
            self.next_at = None
            return
        self.next_at = now + self.rng.expovariate(self.rate)
        kinds = sorted(
            {k for c in self.exchange.connections() if (k := self.exchange.kind_of(c)) is not None}
        )
        if not kinds:
            return
        name, kind = self.rng.choice(FAULTS), self.rng.choice(kinds)
        self.apply(name, kind, now)
        self.log.append((now, f"{name}:{kind}"))

    def apply(self, name: str, kind: str, now: float) -> None:
        """Inject fault `name` on the links of `kind` (see FAULTS)."""
        ex, rng = self.exchange, self.rng
        match name:
            case "drop" | "drop_abrupt":
                ex.drop_link(kind, close_frame=name == "drop")
            case "half_open":
                ex.half_open(kind)
            case "lose_pongs":
                ex.lose_pongs(kind, rng.randint(1, 2))
            case "delay_pongs":
                ex.delay_pongs(kind, rng.choice((0.5, 3.0, 15.0)))
            case "duplicate":
                ex.duplicate(kind, rng.randint(1, 3), replies=rng.random() < 0.3)
            case "reorder":
                ex.reorder(kind, rng.randint(2, 4))
            case "garbage":
                ex.send_garbage(kind, rng.choice(GARBAGE))
            case "reject_auth":
                ex.reject_auth(1)
            case "rest_fail":
                ex.rest_fail(1, status=rng.choice((200, 502, 503)))
            case "restart":
                ex.restart_service(now)
            case _:
                raise ValueError(f"unknown fault {name!r}: use one of {', '.join(FAULTS)}")
