"""One log line per lifecycle change, from the core's events as an adapter's loop hands them out.

Every adapter's loop hands each batch it gives the application to `_startup.LiveWatch.observe`, which calls
`log_event` here, so the three of them log the same lines from one table (no copy per adapter). Lines go to
the `bybit_hybrid.lifecycle` logger (a child of `bybit_hybrid`): INFO for a link up, a topic reset and health
back to ok; WARNING for a link down, a refusal (handshake, auth, subscription), a failed REST snapshot and
health warning/critical. Market data is never logged, so a line is rare (a lifecycle change), and the
check per event is one dict lookup on its type.

Secrets: the lines carry the core's reasons and hints, which never hold the secret (only signatures made
with it leave `Credentials`); the API key appears only masked (`Credentials.masked_key`), and a reason that
would hold it verbatim (a server echoing what it was sent, say) is scrubbed before it is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from bybit_hybrid_core import (
    AuthFailed,
    Credentials,
    Event,
    HandshakeRefused,
    HealthChanged,
    LinkDown,
    LinkUp,
    SnapshotFailed,
    SubscriptionFailed,
    TopicReset,
)

__all__ = ["LIFECYCLE_LOGGER", "lifecycle_line", "log_event", "log_lifecycle", "logged"]

LIFECYCLE_LOGGER = "bybit_hybrid.lifecycle"
log = logging.getLogger(LIFECYCLE_LOGGER)

INFO, WARNING = logging.INFO, logging.WARNING


def _retry(seconds: float | None) -> str:
    return "no retry planned" if seconds is None else f"retry in {seconds:.1f} s"


def _up(e: LinkUp, key: str) -> tuple[int, str]:
    return INFO, f"{e.link.value} up"


def _down(e: LinkDown, key: str) -> tuple[int, str]:
    return WARNING, f"{e.link.value} down: {e.reason}; {_retry(e.retry_in)}"


def _handshake(e: HandshakeRefused, key: str) -> tuple[int, str]:
    return WARNING, f"{e.link.value} handshake refused: HTTP {e.status} {e.reason}; hint: {e.hint}"


def _auth(e: AuthFailed, key: str) -> tuple[int, str]:
    retry = _retry(e.retry_in)
    return WARNING, f"{e.link.value} auth refused (key {key}): {e.reason}; hint: {e.hint}; {retry}"


def _subscription(e: SubscriptionFailed, key: str) -> tuple[int, str]:
    times = f" ({e.refusals} refusals)" if e.refusals > 1 else ""
    retry = "" if e.retry_in is None else f"; {_retry(e.retry_in)}"
    return WARNING, f"{e.link.value} subscription refused: {e.topic}: {e.reason}{times}{retry}"


def _reset(e: TopicReset, key: str) -> tuple[int, str]:
    return INFO, f"{e.link.value} topic reset: {e.topic}: {e.reason}; remedy: {e.remedy}"


def _snapshot(e: SnapshotFailed, key: str) -> tuple[int, str]:
    return WARNING, f"{e.category} position snapshot failed: {e.reason}; {_retry(e.retry_in)}"


def _health(e: HealthChanged, key: str) -> tuple[int, str]:
    health = e.health
    reasons = "; ".join(f"{r.level} {r.rule}: {r.detail}" for r in health.reasons)
    return (INFO if health.verdict == "ok" else WARNING), f"health {health.verdict}" + (
        f": {reasons}" if reasons else ""
    )


# The table: an event type to its line. Only these types are logged; a lookup by exact type keeps the
# per-event cost of market data to one dict miss.
_LINES: dict[type[Event], Callable[..., tuple[int, str]]] = {
    LinkUp: _up, LinkDown: _down, HandshakeRefused: _handshake, AuthFailed: _auth,
    SubscriptionFailed: _subscription, TopicReset: _reset, SnapshotFailed: _snapshot, HealthChanged: _health,
}  # fmt: skip
logged = frozenset(_LINES)
"""The event types that have a lifecycle line."""


def _scrub(text: str, credentials: Credentials | None) -> str:
    if credentials is None:
        return text
    # The secret never reaches an event (only signatures leave `Credentials`); the key might, echoed back.
    return text.replace(credentials.api_key, credentials.masked_key)


def lifecycle_line(event: Event, credentials: Credentials | None = None) -> tuple[int, str] | None:
    """The level and text of `event`'s log line, or None for an event that is not a lifecycle change.

    Args:
        event: any event the core emitted.
        credentials: the stream's, to show the key masked and to scrub the key and secret from the text.
    """
    line = _LINES.get(type(event))
    if line is None:
        return None
    key = credentials.masked_key if credentials is not None else "-"
    level, text = line(event, key)
    return level, _scrub(text, credentials)


def log_event(event: Event, credentials: Credentials | None = None) -> None:
    """Log `event`'s lifecycle line (if it has one) to `bybit_hybrid.lifecycle`; `extra` carries `link` and
    `event` (the type name) for structured handlers."""
    line = lifecycle_line(event, credentials)
    if line is not None and log.isEnabledFor(line[0]):
        log.log(line[0], "%s", line[1], extra={"link": event.link.value, "event": type(event).__name__})


def log_lifecycle(events: Iterable[Event], credentials: Credentials | None = None) -> None:
    """`log_event` for every lifecycle event of a batch (market data is skipped at one set lookup each)."""
    for event in events:
        if type(event) in logged:
            log_event(event, credentials)
