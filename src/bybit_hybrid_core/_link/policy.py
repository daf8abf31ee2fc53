"""The link's policies: redial backoff, the per-host dial budget, and the hints that explain failures.

Split from `states.py` by vocabulary: these decide *how long to wait* and *what to tell the user*; the link
decides *when* to ask.
"""

from __future__ import annotations

from collections import deque
from random import Random
from urllib.parse import urlsplit

__all__ = ["Backoff", "DialBudget", "auth_hint", "equal_jitter", "handshake_hint", "url_host"]


class Backoff:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**n)) (AWS's "full jitter").

    Full jitter spreads many clients' redials after a venue-wide drop (no thundering herd), and the
    exponent keeps a dead venue from being hammered. Randomness only from the config-seeded `Random`.
    """

    __slots__ = ("_attempt", "_base", "_cap", "_rng")

    def __init__(self, base: float, cap: float, rng: Random) -> None:
        self._base = base
        self._cap = cap
        self._rng = rng
        self._attempt = 0

    @property
    def attempt(self) -> int:
        return self._attempt

    def next(self) -> float:
        ceiling = min(self._cap, self._base * 2.0 ** min(self._attempt, 60))
        self._attempt += 1
        return self._rng.uniform(0.0, ceiling)

    def reset(self) -> None:
        self._attempt = 0


def equal_jitter(base: float, cap: float, attempt: int, rng: Random) -> float:
    """The `attempt`-th wait (from 0) of an exponential backoff with "equal jitter": uniform(c/2, c) where
    c = min(cap, base * 2**attempt).

    For waits that must stay long (a refused auth, a refused topic, a failing snapshot): never shorter than
    half the step, so nothing turns into a tight loop, yet spread, so a fleet of clients refused together
    (one bad clock, one venue hiccup) does not retry in lock-step. Randomness from the seeded `Random`.
    """
    ceiling = min(cap, base * 2.0 ** min(attempt, 60))
    return rng.uniform(ceiling / 2.0, ceiling)


class DialBudget:
    """At most `limit` dials per host in any sliding `window` seconds, shared by every link.

    Bybit allows 500 new connections per 5 minutes per IP, counted per WebSocket domain (BYBIT_V5.md
    section 4, "Connection rate"); a storm of drops must never push us past it.
    """

    __slots__ = ("_dials", "_limit", "_window")

    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._dials: dict[str, deque[float]] = {}

    def take(self, host: str, now: float) -> float | None:
        """Spend one dial on `host` now and return None, or return when the next dial becomes possible."""
        dials = self._dials.setdefault(host, deque())
        # One expression for "has left the window" and for the time we promise, so that at the promised
        # time the slot really is free (float rounding must not turn a redial into a busy loop).
        while dials and dials[0] + self._window <= now:
            dials.popleft()
        if len(dials) < self._limit:
            dials.append(now)
            return None
        return dials[0] + self._window

    def used(self, host: str, now: float) -> int:
        return sum(1 for t in self._dials.get(host, ()) if t + self._window > now)


def url_host(url: str) -> str:
    """The host the dial budget counts against (Bybit counts per domain, whatever the path)."""
    return (urlsplit(url).hostname or "").lower()


def auth_hint(ret_msg: str) -> str:
    """Why Bybit may have refused the private link's auth, and what to check (BYBIT_V5.md section 2)."""
    environment = (
        "keys belong to one environment: mainnet, testnet and demo keys differ "
        "(demo keys only work on stream-demo.bybit.com; pick Config(environment=...) to match)"
    )
    if "params error" in ret_msg.lower():
        return (
            "'Params Error' usually means `expires` was already past when Bybit checked it: sync the clock "
            "(NTP) or raise Timings.auth_expires_ms; it is also what a key of another environment gets. "
            + environment
        )
    return "check the API key and secret, that the key is enabled and has read permission; " + environment


def handshake_hint(status: int) -> str:
    """What an HTTP status instead of 101 usually means on Bybit's hosts (BYBIT_V5.md section 8)."""
    if status == 403:
        return (
            "HTTP 403: Bybit blocks some regions by IP (e.g. the US and mainland China); "
            "use an allowed region or a regional host"
        )
    if status == 404:
        return "HTTP 404: wrong path or environment (demo has private streams only; check the endpoints)"
    if status in (401, 407):
        return f"HTTP {status}: the server or a proxy wants credentials for the upgrade"
    if status == 429:
        return "HTTP 429: too many connections from this IP; the core backs off"
    if status >= 500:
        return f"HTTP {status}: Bybit (or a proxy) is in trouble; the core retries with backoff"
    return f"HTTP {status}: the server refused the WebSocket upgrade"
