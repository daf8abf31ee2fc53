"""Configuration: links, endpoints, credentials and every timing default.

Defaults follow `shared/design/ARCHITECTURE.md` ("Links, timers and defaults"); each is overridable.
Secrets live only in `Credentials`, whose repr never shows them.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from ._errors import LocalProtocolError

__all__ = [
    "CATEGORIES",
    "MAX_SHARDS",
    "Config",
    "Credentials",
    "Endpoints",
    "Environment",
    "HealthRules",
    "Link",
    "Mode",
    "Rollout",
    "Timings",
]

Environment = Literal["mainnet", "testnet", "demo"]
CATEGORIES: tuple[str, ...] = ("linear", "inverse", "spot", "option")


MAX_SHARDS = 8
"""Public connections per category at most: past one connection's limits (21,000 characters of args, 2,000
option args; BYBIT_V5.md section 4) the core opens another, `linear-2` ... `linear-8`."""


class Link(enum.StrEnum):
    """One WebSocket connection: each category's first public link, its overflow shards, the private link.

    A category's topics live on its first link (`Link.LINEAR`) until that connection is full; then the core
    opens `Link("linear-2")` and so on (`MAX_SHARDS` per category). `category` says which market a link
    serves, `shard` which of its connections it is (1 for the first).
    """

    LINEAR = "linear"
    INVERSE = "inverse"
    SPOT = "spot"
    OPTION = "option"
    PRIVATE = "private"
    LINEAR_2 = "linear-2"
    LINEAR_3 = "linear-3"
    LINEAR_4 = "linear-4"
    LINEAR_5 = "linear-5"
    LINEAR_6 = "linear-6"
    LINEAR_7 = "linear-7"
    LINEAR_8 = "linear-8"
    INVERSE_2 = "inverse-2"
    INVERSE_3 = "inverse-3"
    INVERSE_4 = "inverse-4"
    INVERSE_5 = "inverse-5"
    INVERSE_6 = "inverse-6"
    INVERSE_7 = "inverse-7"
    INVERSE_8 = "inverse-8"
    SPOT_2 = "spot-2"
    SPOT_3 = "spot-3"
    SPOT_4 = "spot-4"
    SPOT_5 = "spot-5"
    SPOT_6 = "spot-6"
    SPOT_7 = "spot-7"
    SPOT_8 = "spot-8"
    OPTION_2 = "option-2"
    OPTION_3 = "option-3"
    OPTION_4 = "option-4"
    OPTION_5 = "option-5"
    OPTION_6 = "option-6"
    OPTION_7 = "option-7"
    OPTION_8 = "option-8"

    @property
    def is_public(self) -> bool:
        return self is not Link.PRIVATE

    @property
    def category(self) -> str:
        """The market this link serves: "linear", "inverse", "spot", "option", or "private"."""
        return _CATEGORY_OF[self]

    @property
    def shard(self) -> int:
        """Which of its category's connections this is: 1 for the first, 2 for `linear-2`, ..."""
        return _SHARD_OF[self]

    @classmethod
    def of(cls, category: str, shard: int = 1) -> Link:
        """The link of `category`'s `shard`-th connection (`Link.of("linear", 2)` is `linear-2`)."""
        return cls(category if shard == 1 else f"{category}-{shard}")


_CATEGORY_OF: dict[Link, str] = {link: link.value.partition("-")[0] for link in Link}
_SHARD_OF: dict[Link, int] = {link: int(link.value.partition("-")[2] or 1) for link in Link}


class Credentials:
    """An API key and secret. The secret never appears in a repr, str, event or URL.

    Only HMAC-SHA256 signatures made with it leave this object (`sign`).
    """

    __slots__ = ("__secret", "api_key")

    def __init__(self, api_key: str, api_secret: str) -> None:
        if not api_key or not api_secret:
            raise LocalProtocolError(
                "Credentials need a non-empty api_key and api_secret "
                "(set BYBIT_API_KEY / BYBIT_API_SECRET, or leave credentials=None for public data only)"
            )
        self.api_key = api_key
        self.__secret = api_secret.encode()

    @property
    def masked_key(self) -> str:
        """The API key as logs may show it: its first four characters and its length ('AbCd…(18)')."""
        return mask(self.api_key)

    def sign(self, message: str) -> str:
        """Lower-case hex HMAC-SHA256 of `message` keyed with the secret (BYBIT_V5.md section 2)."""
        return hmac.new(self.__secret, message.encode(), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return f"Credentials(api_key={mask(self.api_key)!r}, api_secret='***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Credentials):
            return NotImplemented
        return self.api_key == other.api_key and hmac.compare_digest(self.__secret, other.__secret)

    def __hash__(self) -> int:
        return hash(self.api_key)

    def __reduce__(self) -> str:  # pickling would copy the secret somewhere we cannot see
        raise TypeError("Credentials cannot be pickled")


def mask(value: str) -> str:
    """Show just enough of an API key to tell keys apart in logs: 'AbCd…(18)'."""
    return f"{value[:4]}…({len(value)})" if len(value) > 4 else "***"


@dataclass(frozen=True, kw_only=True, slots=True)
class Endpoints:
    """Where the links and the REST API live. Use the constructors, or `custom()` for loopback tests."""

    public_base: str = "wss://stream.bybit.com"
    private_base: str = "wss://stream.bybit.com"
    rest_base: str = "https://api.bybit.com"

    @classmethod
    def for_environment(cls, environment: Environment) -> Endpoints:
        if environment == "mainnet":
            return cls()
        if environment == "testnet":
            return cls(
                public_base="wss://stream-testnet.bybit.com",
                private_base="wss://stream-testnet.bybit.com",
                rest_base="https://api-testnet.bybit.com",
            )
        if environment == "demo":
            # Demo trading has private streams only; public data is mainnet's (BYBIT_V5.md section 1).
            return cls(private_base="wss://stream-demo.bybit.com", rest_base="https://api-demo.bybit.com")
        raise LocalProtocolError(f"unknown environment {environment!r}: use 'mainnet', 'testnet' or 'demo'")

    @classmethod
    def custom(cls, ws_base: str, rest_base: str | None = None) -> Endpoints:
        """One base for every link, e.g. `Endpoints.custom("ws://127.0.0.1:8765")` for the FakeExchange."""
        if not ws_base.startswith(("ws://", "wss://")):
            raise LocalProtocolError(f"ws_base must start with ws:// or wss://, got {ws_base!r}")
        ws_base = ws_base.rstrip("/")
        if rest_base is None:
            rest_base = "http" + ws_base[2:]
        return cls(public_base=ws_base, private_base=ws_base, rest_base=rest_base.rstrip("/"))

    def public_url(self, category: str) -> str:
        return f"{self.public_base}/v5/public/{category}"

    def private_url(self, max_active_time: int | None = None) -> str:
        url = f"{self.private_base}/v5/private"
        if max_active_time is not None:
            url += f"?max_active_time={max_active_time}s"
        return url

    def url(self, link: Link, max_active_time: int | None = None) -> str:
        return self.private_url(max_active_time) if link is Link.PRIVATE else self.public_url(link.category)


@dataclass(frozen=True, kw_only=True, slots=True)
class Timings:
    """Every timer of the core, in seconds unless the name says otherwise."""

    ping_interval: float = 20.0  # Bybit asks for a JSON ping every 20 s
    pong_timeout: float = 10.0  # half-open links are found within ping_interval + pong_timeout
    handshake_timeout: float = 10.0  # TCP/TLS up -> HTTP 101
    ack_timeout: float = 10.0  # auth and subscribe acks
    auth_expires_ms: int = 10_000  # now + 1 s fails on small clock skew (pybit#300)
    backoff_base: float = 0.5  # redial: base * 2**n, full jitter
    backoff_cap: float = 30.0
    auth_backoff_base: float = 120.0  # a refused key waits uniform(base/2, base) * 2**n: 60-120 s first,
    auth_backoff_cap: float = 900.0  # ... at most this; jittered so a fleet with one bad clock spreads out
    dial_budget: int = 450  # dials per window per host; Bybit allows 500 per 5 minutes
    dial_window: float = 300.0
    max_active_time: int | None = None  # private URL parameter, 30..600 s
    ticker_release_grace: float = 30.0
    stale_mark_after: float = 5.0
    mark_min_interval: float = 0.0  # >0 conflates mark-only PositionUpdates per position
    snapshot_backoff_base: float = 1.0
    snapshot_backoff_cap: float = 60.0
    rest_recv_window_ms: int = 5000
    # Never frozen (docs/operations.md "The liveness guarantee"):
    topic_retry_base: float = 2.0  # a refused topic a position needs: retried after base * 2**n, full jitter,
    topic_retry_cap: float = 180.0  # ... capped, for as long as a position needs it
    refusal_report_interval: float = 60.0  # a topic refused again and again is reported at most this often
    topic_quiet_after: float = 5.0  # a confirmed ticker with no push this long on a LIVE link: resubscribed,
    # and if it stays quiet as long again, the link is redialled (Bybit pushes tickers every 100 ms)
    silent_link_after: float = 5.0  # a LIVE public link carrying tickers that is wholly silent: half-open
    out_of_order_reset: int = 5  # this many messages in a row "older" than the state held: a reset

    def __post_init__(self) -> None:
        if self.max_active_time is not None and not 30 <= self.max_active_time <= 600:
            raise LocalProtocolError(
                "max_active_time must be between 30 and 600 seconds (Bybit's range), "
                f"got {self.max_active_time}"
            )
        for name in (
            "ping_interval",
            "pong_timeout",
            "handshake_timeout",
            "ack_timeout",
            "backoff_base",
            "topic_retry_base",
            "topic_quiet_after",
            "silent_link_after",
        ):
            if getattr(self, name) <= 0:
                raise LocalProtocolError(f"Timings.{name} must be positive")
        if self.topic_retry_cap < self.topic_retry_base:
            raise LocalProtocolError("Timings.topic_retry_cap must be at least topic_retry_base")
        if self.out_of_order_reset < 1:
            raise LocalProtocolError("Timings.out_of_order_reset must be at least 1 (messages in a row)")
        if self.dial_budget < 1 or self.dial_budget >= 500:
            raise LocalProtocolError(
                "Timings.dial_budget must be between 1 and 499 (Bybit allows 500 per 5 min)"
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class HealthRules:
    """When `HybridCore.health()` says warning or critical (the rollout plan's rollback triggers), as data.

    Critical: every link down for `links_down_critical` s; no event for `no_events_critical` s (once one
    arrived, or since start); more than `failed_subscriptions_critical` refusals within
    `failed_subscriptions_window` s; auth refused `auth_refusals_critical` times in a row; the REST snapshot
    failing `snapshot_failures_critical` times in a row. Warning: a link not LIVE for `link_down_warning` s;
    p99 latency above `latency_p99_warning_ms` for `latency_warning_for` s; an open position whose ticker is
    not subscribed or whose mark is stale for `position_dark_warning` s. Critical too: at least
    `divergences_critical` REST marks that diverged from the stream's (`MarksCompared.diverged`) within
    `divergence_window` s.
    """

    links_down_critical: float = 300.0
    no_events_critical: float = 300.0
    failed_subscriptions_critical: int = 10
    failed_subscriptions_window: float = 3600.0
    auth_refusals_critical: int = 3
    snapshot_failures_critical: int = 5
    link_down_warning: float = 30.0
    latency_p99_warning_ms: float = 1000.0
    latency_warning_for: float = 300.0
    position_dark_warning: float = 10.0
    divergences_critical: int = 3
    divergence_window: float = 600.0

    def __post_init__(self) -> None:
        for name in self.__slots__:
            if getattr(self, name) <= 0:
                raise LocalProtocolError(f"HealthRules.{name} must be positive")


class Mode(enum.StrEnum):
    """Which source drives the application's position events: the rollout plan's steps, in order.

    * `rest`: REST polling only, no WebSockets: the rollback target.
    * `canary`: REST polling drives; the hybrid stream runs beside it, monitored (health, metrics), and
      none of its events is delivered.
    * `parallel`: as canary, and every REST poll is compared with the stream's mark at that moment.
    * `cutover`: a stable share of symbols (`Rollout.share`) is driven by the stream, the rest by REST.
    * `production`: the stream drives; REST is the fallback and a low-rate comparison.
    """

    REST = "rest"
    CANARY = "canary"
    PARALLEL = "parallel"
    CUTOVER = "cutover"
    PRODUCTION = "production"

    @property
    def rest_driven(self) -> bool:
        """REST polling drives every position (the stream, if any, only runs beside it)."""
        return self in (Mode.REST, Mode.CANARY, Mode.PARALLEL)

    @property
    def streams(self) -> bool:
        """The WebSocket links run in this mode."""
        return self is not Mode.REST


@dataclass(frozen=True, kw_only=True, slots=True)
class Rollout:
    """How REST polling, the REST fallback, the comparison against REST and the automatic rollback behave.

    Args:
        share: in `cutover`, the share of symbols driven by the stream (a stable hash of the symbol, so the
            same symbols stay on the stream when the share grows).
        poll_interval: seconds between REST position polls while REST drives (and in the positions fallback).
        positions_fallback_after: the private link down this long: positions are polled over REST until it
            is back (`FallbackStarted(what="positions")`).
        marks_fallback_after: an open position's mark stale this long (public link down, ticker refused):
            its mark is polled over REST until a fresh ticker arrives (`FallbackStarted(what="marks")`).
        compare_interval: in `production` and `cutover`, seconds between comparisons of the stream's marks of
            open positions with REST's (parallel compares on every poll).
        divergence_pct: a comparison that differs by more than this (in % of the REST mark) is a divergence.
        auto_rollback: in `production`/`cutover`, a critical health verdict switches every position to REST
            polling (`RolledBack`) until the stream has been healthy for `return_after` seconds. Off by
            default in the core (a policy for whoever runs the bot); the bot drop-in turns it on.
        return_after: healthy this long after a rollback: back to the stream (`RollbackEnded`); None: only
            `HybridCore.resume()` goes back.
        rest_rate: REST requests per second at most, every endpoint together (the burst is twice it).
            Bybit allows 600 per 5 s per IP and at least 10 per second per UID on position queries; the
            default stays far under both whatever fails.
        time_interval: seconds between `GET /v5/market/time` samples of the exchange's clock.
    """

    share: float = 1.0
    poll_interval: float = 2.0
    positions_fallback_after: float = 10.0
    marks_fallback_after: float = 5.0
    compare_interval: float = 60.0
    divergence_pct: Decimal = Decimal("1")
    auto_rollback: bool = False
    return_after: float | None = 300.0
    rest_rate: float = 4.0
    time_interval: float = 600.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise LocalProtocolError(f"Rollout.share is a fraction of symbols in [0, 1], got {self.share!r}")
        for name in ("poll_interval", "positions_fallback_after", "marks_fallback_after", "compare_interval",
                     "rest_rate", "time_interval"):  # fmt: skip
            if getattr(self, name) <= 0:
                raise LocalProtocolError(f"Rollout.{name} must be positive")
        if self.return_after is not None and self.return_after <= 0:
            raise LocalProtocolError("Rollout.return_after must be positive, or None (resume by hand)")
        if not isinstance(self.divergence_pct, Decimal) or not self.divergence_pct > 0:
            raise LocalProtocolError("Rollout.divergence_pct must be a positive Decimal, e.g. Decimal('1')")


@dataclass(frozen=True, kw_only=True, slots=True)
class Config:
    """What the core connects to and how.

    Args:
        categories: public links to open at start (more open on demand when a topic needs them).
        credentials: enables the private link, position tracking and the REST snapshot.
        environment: "mainnet", "testnet" or "demo"; ignored when `endpoints` is given.
        endpoints: explicit URLs, e.g. `Endpoints.custom("ws://127.0.0.1:8765")`.
        topics: user topics subscribed from the start (public ones need a single configured category,
            or use `HybridCore.subscribe(topic, category=...)`).
        private_topics: subscribed on the private link after auth.
        position_categories: categories whose positions are tracked and snapshotted over REST.
        settle_coins: settle coins asked for when snapshotting linear positions (REST requires one).
        seed: seeds the only random source (every backoff's jitter).
        health: the thresholds of `HybridCore.health()` (`HealthRules`).
        mode: which source drives position events (`Mode`; "production" unless rolling out). Every mode but
            production needs credentials (REST polls positions). `HybridCore.set_mode` changes it later.
        rollout: REST polling, fallback, comparison and rollback settings (`Rollout`).
    """

    categories: tuple[str, ...] = ("linear",)
    credentials: Credentials | None = None
    environment: Environment = "mainnet"
    endpoints: Endpoints | None = None
    topics: tuple[str, ...] = ()
    private_topics: tuple[str, ...] = ("position", "order", "execution", "wallet")
    position_categories: tuple[str, ...] = ("linear", "inverse")
    settle_coins: tuple[str, ...] = ("USDT", "USDC")
    timings: Timings = field(default_factory=Timings)
    health: HealthRules = field(default_factory=HealthRules)
    seed: int = 0
    mode: Mode = Mode.PRODUCTION
    rollout: Rollout = field(default_factory=Rollout)

    def __post_init__(self) -> None:
        for category in (*self.categories, *self.position_categories):
            if category not in CATEGORIES:
                raise LocalProtocolError(f"unknown category {category!r}: use one of {', '.join(CATEGORIES)}")
        try:
            object.__setattr__(self, "mode", Mode(self.mode))
        except ValueError:
            choices = ", ".join(m.value for m in Mode)
            raise LocalProtocolError(f"unknown mode {self.mode!r}: use one of {choices}") from None
        if self.mode is not Mode.PRODUCTION and self.credentials is None:
            raise LocalProtocolError(
                f"mode {self.mode.value!r} polls positions over REST: it needs Config(credentials=...)"
            )
        if isinstance(self.categories, str) or isinstance(self.topics, str):
            raise LocalProtocolError(
                "categories and topics are tuples of strings, e.g. categories=('linear',)"
            )

    @property
    def urls(self) -> Endpoints:
        return self.endpoints if self.endpoints is not None else Endpoints.for_environment(self.environment)
