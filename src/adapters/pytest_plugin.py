"""pytest fixtures for testing a bot against Bybit in a box: loaded by pytest when bybit-hybrid is installed.

The `pytest11` entry point `bybit_hybrid` registers this module in every pytest run; it only adds fixtures and
a marker whose names start with `bybit_`, and imports nothing heavy until a test asks for one of them (no
socket, TLS helper or event loop at load). Disable it with `-p no:bybit_hybrid`.

Fixtures (function scope):

* `bybit_seed` — the seed of the run: `@pytest.mark.bybit_seed(n)` on the test (or its class or module),
  else `DEFAULT_SEED` (1).
* `bybit_config` — the core's `Config` for both of the fixtures below: the test credentials, endpoints that
  only need to parse, the `linear` category. Override it (a fixture of the same name in a conftest or the test
  module) to change categories, topics or timings.
* `bybit_sim` — a `bybit_hybrid_core.testing.Simulation(bybit_config, seed=bybit_seed)`: a core wired to a
  FakeExchange in memory, on a virtual clock the test advances (`bybit_sim.advance(2.0)`).
* `bybit_tls` — `True`: serve TLS (needs trustme: `pip install "bybit-hybrid[sim]"`). Override it to return
  `False` for plain `ws://` and `http://`.
* `bybit_exchange` — a `BybitExchange`: the FakeExchange served on 127.0.0.1 over TCP (TLS by default) with
  its URLs, CA file, test credentials, venue controls and every fault of `bybit-hybrid sim` as methods;
  stopped at teardown.
* `bybit_stream` — a threaded `bybit_hybrid.threaded.HybridStream` on `bybit_exchange`, already live
  (`wait_live`) when the test gets it; stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from decimal import Decimal

    from bybit_hybrid_core import Config, Credentials, Endpoints, Position
    from bybit_hybrid_core.testing import Simulation

    from .server import ServedExchange
    from .threaded import HybridStream

__all__ = [
    "API_KEY",
    "API_SECRET",
    "DEFAULT_SEED",
    "LIVE_TIMEOUT",
    "BybitExchange",
    "bybit_config",
    "bybit_exchange",
    "bybit_seed",
    "bybit_sim",
    "bybit_stream",
    "bybit_tls",
]

T = TypeVar("T")
DEFAULT_SEED = 1
API_KEY, API_SECRET = "test-key", "test-secret"  # the FakeExchange's test account; not a real key
LIVE_TIMEOUT = 15.0  # seconds `bybit_stream` waits for live links: a hang guard, on loopback it takes less
_SIM_HINT = 'pip install "bybit-hybrid[sim]"'


def pytest_configure(config: pytest.Config) -> None:
    """Register the `bybit_seed` marker (so `--strict-markers` accepts it)."""
    config.addinivalue_line(
        "markers",
        f"bybit_seed(n): the seed of the bybit_sim and bybit_exchange fixtures (default {DEFAULT_SEED})",
    )


class BybitExchange:
    """The FakeExchange served on 127.0.0.1, with what a client needs and the test's controls.

    Every method runs on the server's thread (`ServedExchange.call`) and may be called from any thread.
    Per-link faults take a `kind`: `"private"`, a category (`"linear"`, `"inverse"`, `"spot"`,
    `"option"`), `"public"` (every public link) or `"all"`; they hit the connections open now.
    """

    def __init__(self, served: ServedExchange, seed: int) -> None:
        self.served = served
        self.seed = seed

    def __repr__(self) -> str:
        return f"BybitExchange({self.ws_url}, seed={self.seed}, ca_file={self.ca_file!r})"

    # ----------------------------------------------------------------------------------- how to reach it

    @property
    def host(self) -> str:
        """Always 127.0.0.1."""
        return self.served.host

    @property
    def port(self) -> int:
        """The port it listens on (WebSocket and REST share it)."""
        return self.served.port

    @property
    def tls(self) -> bool:
        """True for wss:// and https://, False for ws:// and http://."""
        return self.served.tls

    @property
    def ws_url(self) -> str:
        """The WebSocket base, e.g. `wss://127.0.0.1:PORT` (paths `/v5/public/linear`, `/v5/private`)."""
        return self.served.ws_url

    @property
    def rest_url(self) -> str:
        """The REST base, e.g. `https://127.0.0.1:PORT` (`GET /v5/position/list`)."""
        return self.served.rest_url

    @property
    def endpoints(self) -> Endpoints:
        """`Endpoints.custom(ws_url, rest_url)`: pass it as `endpoints=` (or in a `Config`)."""
        return self.served.endpoints

    @property
    def ca_file(self) -> str | None:
        """The throwaway CA to trust (`cafile=`); None without TLS."""
        return self.served.ca_file

    @property
    def api_key(self) -> str:
        """The test account's API key."""
        return self.served.api_key

    @property
    def api_secret(self) -> str:
        """The test account's API secret (a test value)."""
        return self.served.api_secret

    @property
    def credentials(self) -> Credentials:
        """`Credentials(api_key, api_secret)`."""
        from bybit_hybrid_core import Credentials

        return Credentials(self.api_key, self.api_secret)

    def client_options(self) -> dict[str, Any]:
        """The keyword arguments of any `HybridStream` (anyio, asyncio, threaded) or the bot drop-in to reach
        this exchange: `api_key`, `api_secret`, `endpoints`, `cafile`."""
        return {
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "endpoints": self.endpoints,
            "cafile": self.ca_file,
        }

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(exchange, *args)` on the server's thread with the `FakeExchange` itself; returns its
        result and sends what it caused."""
        return self.served.call(fn, *args)

    # ------------------------------------------------------------------------------------- the account

    def trade(self, method: str, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one trading endpoint (`"POST", "/v5/order/create", {...}`) on the venue, unsigned, as the
        `sim` command's `order`, `amend`, `cancel`, `orders`, `stop` and `leverage` do; Bybit's answer."""
        answer: dict[str, Any] = self.call(lambda ex: ex.trade(method, path, params))
        return answer

    def open_position(
        self,
        symbol: str,
        side: str,
        size: str | Decimal,
        price: str | Decimal | None = None,
        category: str = "linear",
        position_idx: int = 0,
    ) -> None:
        """Open (or add to) a position at `price` (default: the market); `position_idx` 1 or 2 is a hedge
        leg (and switches `symbol` to hedge mode, as `sim`'s `open` does)."""

        def run(ex: Any) -> None:
            if position_idx in (1, 2):
                ex.venue.set_hedge_mode(category, symbol)
            ex.open_position(symbol, side, size, price, category=category, position_idx=position_idx)

        self.call(run)

    def place_order(
        self,
        symbol: str,
        side: str,
        qty: str | Decimal,
        category: str = "linear",
        position_idx: int = 0,
        reduce_only: bool = False,
    ) -> None:
        """A market order that fills at once."""
        self.call(
            lambda ex: ex.place_order(
                symbol, side, qty, category=category, position_idx=position_idx, reduce_only=reduce_only
            )
        )

    def close_position(self, symbol: str, category: str = "linear", position_idx: int = 0) -> None:
        """Close a position at the market."""
        self.call(lambda ex: ex.close_position(symbol, category=category, position_idx=position_idx))

    def positions(self) -> dict[tuple[str, str, int], Position]:
        """The exchange's open positions by (category, symbol, position_idx)."""
        result: dict[tuple[str, str, int], Position] = self.call(lambda ex: ex.positions())
        return result

    def mark(self, symbol: str, price: str | Decimal | None = None, category: str = "linear") -> Decimal:
        """The mark price of `symbol`; with `price`, put the mark (and index, last, book top) there first:
        the next ticker delta shows it, then the walk goes on from there."""
        result: Decimal = self.call(lambda ex: ex.mark(symbol, price, category=category))
        return result

    @property
    def connections(self) -> int:
        """Open WebSocket connections right now."""
        return self.served.connections

    @property
    def rest_requests(self) -> int:
        """REST requests answered since start."""
        return self.served.rest_requests

    # ------------------------------------------------------------------------ the faults of `sim`, and more

    def drop_link(self, kind: str, close_frame: bool = True) -> int:
        """Close `kind`'s connections (close frame 1001, or none: 1006); returns how many (`sim`: drop)."""
        result: int = self.call(lambda ex: ex.drop_link(kind, close_frame=close_frame))
        return result

    def half_open(self, kind: str) -> int:
        """`kind`'s sockets stay open but go silent both ways; returns how many (`sim`: half-open)."""
        result: int = self.call(lambda ex: ex.half_open(kind))
        return result

    def lose_pongs(self, kind: str, n: int = 1) -> None:
        """Swallow the next `n` JSON pongs on `kind` (`sim`: lose-pongs)."""
        self.call(lambda ex: ex.lose_pongs(kind, n))

    def delay_pongs(self, kind: str, seconds: float) -> None:
        """Send every pong on `kind` `seconds` late."""
        self.call(lambda ex: ex.delay_pongs(kind, seconds))

    def reject_auth(self, n: int | None = 1) -> None:
        """Refuse the next `n` auth requests with `Params Error` (None: until `heal`) (`sim`: reject-auth)."""
        self.call(lambda ex: ex.reject_auth(n))

    def clock_skew(self, ms: int) -> None:
        """The exchange's clock runs `ms` ms ahead (negative: behind) (`sim`: skew)."""
        self.call(lambda ex: ex.clock_skew(ms))

    def geo_block(self, on: bool = True) -> None:
        """Answer every WebSocket upgrade with HTTP 403 (`sim`: geo-block)."""
        self.call(lambda ex: ex.geo_block(on))

    def fail_subscribe(self, topic: str, n: int | None = None) -> None:
        """Refuse subscribes containing `topic` (`n` times, or until `heal`) (`sim`: fail-subscribe)."""
        self.call(lambda ex: ex.fail_subscribe(topic, n))

    def rest_fail(self, n: int = 1, status: int = 200, ret_code: int | None = 10016) -> None:
        """Fail the next `n` REST requests: HTTP `status`, or 200 with `ret_code` (`sim`: rest-fail)."""
        self.call(lambda ex: ex.rest_fail(n, status, ret_code))

    def rest_delay(self, seconds: float) -> None:
        """Answer REST requests `seconds` late."""
        self.call(lambda ex: ex.rest_delay(seconds))

    def restart_service(self, drop_links: bool = False) -> None:
        """A service restart: fresh snapshots, books from `u=1`; `drop_links` cuts every link too (`sim`:
        restart)."""
        self.call(lambda ex: ex.restart_service(drop_links=drop_links))

    def send_garbage(self, kind: str, data: bytes | str, raw: bool = False) -> None:
        """Send a text (str) or binary (bytes) frame on `kind`; with `raw` the bytes break the framing."""
        self.call(lambda ex: ex.send_garbage(kind, data, raw=raw))

    def duplicate(self, kind: str, n: int = 1) -> None:
        """Send the next `n` topic messages on `kind` twice."""
        self.call(lambda ex: ex.duplicate(kind, n))

    def reorder(self, kind: str, n: int = 2) -> None:
        """Hold the next `n` topic messages on `kind` and send them reversed."""
        self.call(lambda ex: ex.reorder(kind, n))

    def kill(self) -> None:
        """Stop listening and drop every connection without a close frame, like a crashed server (`sim`:
        kill)."""
        self.served.kill()

    def revive(self) -> None:
        """Listen again on the same port after `kill` (`sim`: revive)."""
        self.served.revive()

    def drop_connections(self) -> None:
        """Drop every current connection at the socket (no close frame); keep listening."""
        self.served.drop_connections()

    def freeze(self) -> int:
        """Make every current connection silent both ways at the socket; returns how many."""
        return self.served.freeze()

    def heal(self) -> None:
        """Clear every pending fault of the exchange (`sim`: heal)."""
        self.call(lambda ex: ex.heal())


# ------------------------------------------------------------------------------------------------ fixtures


def _have_trustme() -> bool:
    try:
        import trustme  # noqa: F401  (ServedExchange imports it when it starts)
    except ImportError:
        return False
    return True


@pytest.fixture
def bybit_seed(request: pytest.FixtureRequest) -> int:
    """The seed from `@pytest.mark.bybit_seed(n)` (the closest one), else `DEFAULT_SEED`."""
    marker = request.node.get_closest_marker("bybit_seed")
    if marker is None:
        return DEFAULT_SEED
    args = [*marker.args, *marker.kwargs.values()]
    if len(args) != 1 or not isinstance(args[0], int) or isinstance(args[0], bool):
        pytest.fail(f"bybit_seed takes one int, e.g. @pytest.mark.bybit_seed(3); got {marker}", pytrace=False)
    return args[0]


@pytest.fixture
def bybit_config() -> Config:
    """The core's `Config`: test credentials, the `linear` category, endpoints that only need to parse
    (`bybit_stream` swaps in the served ones). Override this fixture to change it."""
    from bybit_hybrid_core import Config, Credentials, Endpoints

    return Config(
        categories=("linear",),
        credentials=Credentials(API_KEY, API_SECRET),
        endpoints=Endpoints.custom("ws://fake.bybit"),
    )


@pytest.fixture
def bybit_sim(bybit_config: Config, bybit_seed: int) -> Simulation:
    """A `Simulation(bybit_config, seed=bybit_seed)`: the core and a FakeExchange in memory, on a virtual
    clock that only the test moves (`advance`, `settle`, `run_until`)."""
    from bybit_hybrid_core.testing import Simulation

    return Simulation(bybit_config, seed=bybit_seed)


@pytest.fixture
def bybit_tls() -> bool:
    """Whether `bybit_exchange` serves TLS (default True). Override it to return False for plain ws://."""
    return True


@pytest.fixture
def bybit_exchange(bybit_seed: int, bybit_tls: bool) -> Iterator[BybitExchange]:
    """The FakeExchange served on 127.0.0.1 (seeded with `bybit_seed`; TLS unless `bybit_tls` is False);
    every socket, thread and certificate file is gone after the test."""
    if bybit_tls and not _have_trustme():
        pytest.fail(
            "bybit_exchange serves TLS with a throwaway CA, which needs trustme: "
            f"{_SIM_HINT} (or override the bybit_tls fixture to return False for plain ws://)",
            pytrace=False,
        )
    from .server import ServedExchange

    served = ServedExchange(tls=bybit_tls, seed=bybit_seed, api_key=API_KEY, api_secret=API_SECRET)
    served.start()
    try:
        yield BybitExchange(served, bybit_seed)
    finally:
        served.stop()


@pytest.fixture
def bybit_stream(bybit_exchange: BybitExchange, bybit_config: Config) -> Iterator[HybridStream]:
    """A threaded `HybridStream` with `bybit_config` on `bybit_exchange` (its endpoints and CA; the config's
    credentials, or none for public data only), already live; stopped (every thread joined) after the test."""
    import dataclasses

    from .threaded import HybridStream

    config = dataclasses.replace(bybit_config, endpoints=bybit_exchange.endpoints)
    stream = HybridStream(config=config, cafile=bybit_exchange.ca_file)
    stream.start()
    try:
        stream.wait_live(timeout=LIVE_TIMEOUT)
        yield stream
    finally:
        stream.stop()
