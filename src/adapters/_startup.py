"""Startup that can fail: `wait_live(timeout=...)` on every adapter, and the CLI's start-up checks.

Three layers, shared so that there is one copy of the rules:

* `StartupFailed`: the exception (`bybit_hybrid.StartupFailed`), with the reason in words, a hint, and a
  `kind` a program can match on.
* `StartupWatch`: pure. Fed the core's events, it names the first one fatal to a start (a refused auth; a
  link refused or down before it was ever up) and says whether the stream is live: every link the core runs
  is LIVE (`core.status()`) and, with credentials, a `PositionsSynced` was seen for every position category
  since the private link last went down. The CLI feeds it the events it consumes.
* `LiveWatch`: what an adapter's loop hands every batch of events to. It logs the lifecycle lines
  (`_log`), runs a `StartupWatch`, and wakes whoever waits in `wait_live` (a thread on a condition, or an
  async task through a callback); the adapters keep only their own few lines of waiting.

A link that has been up once and then drops is not fatal: the core redials with backoff. So `wait_live`
fails at once on a sign that waiting will not help, and otherwise when its timeout passes, naming each
link's state and the last reason the core gave. The stream itself keeps trying either way; a later
`wait_live` waits for news from then on (the first one also sees what happened before it was called).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Literal
from urllib.parse import urlsplit

from bybit_hybrid_core import (
    Authenticated,
    AuthFailed,
    Config,
    Event,
    HandshakeRefused,
    Link,
    LinkConnected,
    LinkDown,
    LinkStatus,
    LinkUp,
    PositionsSynced,
    SnapshotFailed,
)

from ._log import log_event, logged

__all__ = ["FailureKind", "LiveWatch", "StartupFailed", "StartupWatch", "classify_transport"]

FailureKind = Literal[
    "dns", "refused", "certificate", "tls", "timeout", "connect", "geo_block", "handshake", "auth",
    "timed_out", "closed",
]  # fmt: skip


class StartupFailed(Exception):
    """The stream did not become live: `str()` is the reason in words and a hint.

    Attributes:
        kind: "dns", "refused" (nothing listens), "certificate" (TLS not trusted), "tls", "timeout" (a dial
            timed out), "connect" (another transport failure), "geo_block" (HTTP 403), "handshake" (another
            HTTP refusal), "auth" (the API key was refused), "timed_out" (`wait_live`'s own timeout),
            "closed" (the stream stopped first).
        message: what went wrong, naming the host; hint: what to check.
        link: the link it happened on (None for "timed_out" and "closed").
        states: each link's state when it was raised ("linear": "LIVE", "private": "AUTHENTICATING").
    """

    def __init__(
        self, kind: FailureKind, message: str, hint: str = "", *, link: Link | None = None,
        states: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(f"{message}; hint: {hint}" if hint else message)
        self.kind, self.message, self.hint, self.link = kind, message, hint, link
        self.states: dict[str, str] = dict(states or {})


def _where(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or url
    return f"{host}:{parts.port}" if parts.port else host


def classify_transport(url: str, reason: str, link: Link | None = None) -> StartupFailed:
    """A dial or connection that failed before the link was ever up, from the adapter's reason text
    (`ExceptionType: message`, as `LinkDown.reason` carries it)."""
    reason = reason.removeprefix("transport lost: ")
    where, text = _where(url), reason.lower()
    if "gaierror" in text or "name or service not known" in text or "nodename nor servname" in text:
        host = urlsplit(url).hostname or url
        hint = "check the host name and your network/DNS; a proxy or regional host can be given as endpoints"
        return StartupFailed("dns", f"cannot resolve {host} (DNS)", hint, link=link)
    if "refused" in text and ("connection" in text or "errno 111" in text or "connect call" in text):
        message = f"connection refused by {where}: nothing listens on that port"
        return StartupFailed("refused", message, "is the server running and the port right?", link=link)
    if "certificate" in text or "certverif" in text:
        message = f"TLS certificate of {where} not trusted: {reason}"
        hint = "behind a TLS-inspecting proxy or for a test server, trust its CA (cafile=...)"
        return StartupFailed("certificate", message, hint, link=link)
    if "ssl" in text or "tls" in text:
        message = f"TLS handshake with {where} failed: {reason}"
        hint = "check ws:// vs wss:// (plain servers need ws://) and any proxy in between"
        return StartupFailed("tls", message, hint, link=link)
    if "timed out" in text or "timeout" in text:
        message = f"no answer from {where} in time ({reason})"
        hint = "a firewall or proxy may drop the connection; check the network"
        return StartupFailed("timeout", message, hint, link=link)
    message = f"could not connect to {url}: {reason}"
    return StartupFailed("connect", message, "check the network and the URL", link=link)


def _handshake(event: HandshakeRefused, url: str) -> StartupFailed:
    if event.status == 403:
        message = f"HTTP 403 from {_where(url)}: Bybit blocks this region by IP (geo-block)"
        return StartupFailed("geo_block", message, event.hint, link=event.link)
    message = f"{_where(url)} refused the WebSocket upgrade: HTTP {event.status}"
    return StartupFailed("handshake", message, event.hint, link=event.link)


def _auth(event: AuthFailed, url: str) -> StartupFailed:
    host = urlsplit(url).hostname or url
    return StartupFailed("auth", f"{host} refused the API key: {event.reason}", event.hint, link=event.link)


class StartupWatch:
    """Reads the events of a starting stream, names the first fatal one, and says when it is live.

    Fatal: any refused auth, and a link that goes down (or is refused) before it was ever up. Once a link
    has been up, its drops are the core's business: it redials with backoff.

    Args:
        config: the stream's; its URLs name hosts in messages, its credentials and position categories say
            what "live" needs.
    """

    def __init__(self, config: Config) -> None:
        urls = config.urls
        self._urls = {link: urls.url(link) for link in Link}
        self._categories = frozenset(config.position_categories if config.credentials is not None else ())
        self._up: set[Link] = set()
        self._refused: set[Link] = set()
        self.synced: set[str] = set()  # position categories reconciled since the private link was last up
        self.last_reason: str | None = None  # the last thing that went wrong, for a timeout's message

    def check(self, event: Event) -> StartupFailed | None:
        """The failure `event` makes fatal to the start, or None to go on."""
        url = self._urls.get(event.link, str(event.link))
        match event:
            case LinkUp(link=link):
                self._up.add(link)
            case PositionsSynced(category=category):
                self.synced.add(category)
            case AuthFailed(link=link, reason=reason):
                self.last_reason = f"{link.value}: auth refused: {reason}"
                if link not in self._up:
                    self._refused.add(link)  # its LinkDown right after says the same: not a second failure
                return _auth(event, url)
            case HandshakeRefused(link=link, status=status):
                self.last_reason = f"{link.value}: HTTP {status}"
                if link not in self._up:
                    self._refused.add(link)
                    return _handshake(event, url)
            case LinkDown(link=link, reason=reason):
                self.last_reason = f"{link.value}: {reason}"
                if link is Link.PRIVATE:
                    self.synced.clear()  # positions are read again once it is back
                if link not in self._up and link not in self._refused:
                    return classify_transport(url, reason, link)
            case SnapshotFailed(category=category, reason=reason):
                self.last_reason = f"{category} position snapshot: {reason}"
        return None

    def live(self, status: Mapping[Link, LinkStatus]) -> bool:
        """Every link the core runs is LIVE and, with credentials, every position category is synced."""
        return (
            bool(status)
            and all(s.state == "LIVE" for s in status.values())
            and self.synced >= self._categories
        )

    def timed_out(self, timeout: float, status: Mapping[Link, LinkStatus]) -> StartupFailed:
        """The failure `wait_live` raises when `timeout` passed first: each link's state, what is not synced,
        and the last reason the core gave."""
        states = {link.value: s.state for link, s in status.items()}
        shown = ", ".join(f"{name} {state}" for name, state in sorted(states.items())) or "no links"
        missing = sorted(self._categories - self.synced)
        unsynced = f"; positions not synced yet: {', '.join(missing)}" if missing else ""
        last = f"; last: {self.last_reason}" if self.last_reason else ""
        message = f"timed out after {timeout:g} s waiting for live links ({shown}){unsynced}{last}"
        hint = "the stream keeps trying: wait_live again to wait longer; bybit_hybrid logs what it sees"
        return StartupFailed("timed_out", message, hint, states=states)


# What the loop looks at: the lifecycle lines' types and what the watch needs. Looked up by exact type, so
# market data costs one set miss per event.
_WATCHED = frozenset({LinkUp, LinkDown, AuthFailed, HandshakeRefused, PositionsSynced, SnapshotFailed})
_CHANGES = frozenset({LinkConnected, Authenticated}) | _WATCHED
_NOTED = logged | _CHANGES  # what `observe` looks at


class LiveWatch:
    """The loop's side of `wait_live`, and its lifecycle logging: `observe` every batch on the loop.

    Thread-safe: the threaded adapter's waiters block in `wait`; the async adapters' tasks call `outcome`
    and register a one-shot wake-up with `notify`.

    Args:
        config: the stream's (see `StartupWatch`; its credentials mask the key in log lines).
        status: reads `core.status()`; called only on the loop, in `observe`.
    """

    def __init__(self, config: Config, status: Callable[[], Mapping[Link, LinkStatus]]) -> None:
        self.watch = StartupWatch(config)
        self._credentials = config.credentials
        self._status = status
        self._cond = threading.Condition()
        self._seq = 0  # counts failures; a waiter sees those after the count it began at
        self._failure: tuple[int, BaseException] | None = None
        self._live = False
        self._closed = False
        self._waited = False
        self._wakers: list[Callable[[], None]] = []

    def observe(self, events: Sequence[Event]) -> None:
        """Log the lifecycle events of a batch and update the start-up state (the loop calls it)."""
        if _NOTED.isdisjoint(map(type, events)):
            return  # market data only (nearly every batch): one C-level pass, nothing to log or watch
        changed = False
        for event in events:
            kind = type(event)
            if kind in logged:
                log_event(event, self._credentials)
            if kind in _CHANGES:
                changed = True
                if kind in _WATCHED:
                    failure = self.watch.check(event)
                    if failure is not None:
                        with self._cond:
                            self._seq += 1
                            self._failure = (self._seq, failure)
        if changed:
            live = self.watch.live(self._status())
            with self._cond:
                self._live = live
            self._wake()

    def close(self, failure: BaseException | None = None) -> None:
        """The loop ended: waiters get `failure` (what stopped the loop) or a "closed" `StartupFailed`."""
        with self._cond:
            if not self._closed:
                self._closed = True
                self._seq += 1
                problem = failure or StartupFailed("closed", "the stream stopped before it was live")
                self._failure = (self._seq, problem)
        self._wake()

    def begin(self) -> int:
        """Where a new waiter starts: the first one sees every failure since the start (one may have come
        before it was called); later ones only news, so a retry loop does not fail on an old refusal."""
        with self._cond:
            since = self._seq if self._waited else 0
            self._waited = True
            return since

    def outcome(self, since: int) -> Literal[True] | BaseException | None:
        """True when live; the failure to raise (one after `since`, or the stream closed); None: wait on."""
        with self._cond:
            return self._outcome(since)

    def _outcome(self, since: int) -> Literal[True] | BaseException | None:
        if self._live and not self._closed:
            return True
        if self._failure is not None and (self._failure[0] > since or self._closed):
            return self._failure[1]
        return None

    def wait(self, since: int, timeout: float) -> Literal[True] | BaseException | None:
        """Block until `outcome(since)` is not None or `timeout` passed (then None)."""
        with self._cond:
            self._cond.wait_for(lambda: self._outcome(since) is not None, timeout)
            return self._outcome(since)

    def notify(self, wake: Callable[[], None]) -> None:
        """Call `wake()` once, at the next change (on the loop's thread)."""
        with self._cond:
            self._wakers.append(wake)

    def _wake(self) -> None:
        with self._cond:
            wakers, self._wakers = self._wakers, []
            self._cond.notify_all()
        for wake in wakers:
            wake()
