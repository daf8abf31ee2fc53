"""The pytest plugin (`bybit_hybrid.pytest_plugin`, entry point `pytest11: bybit_hybrid`): users' test files
run with `pytester`, the plugin loaded the way an installed package loads it, with no conftest."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from decimal import Decimal
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from bybit_hybrid.cli.sim import SimShell
from bybit_hybrid.pytest_plugin import BybitExchange

from repo_paths import REPO

pytest_plugins = ["pytester"]

HANG_GUARD = 10.0  # seconds; only ever waited out when something is wrong


def threads_settle(before: set[threading.Thread]) -> set[threading.Thread]:
    """The threads alive now that were not before, once they had a moment to end (a hang guard)."""
    deadline = time.monotonic() + HANG_GUARD
    while (extra := set(threading.enumerate()) - before) and time.monotonic() < deadline:
        time.sleep(0.02)
    return extra


@pytest.fixture(scope="module", autouse=True)
def modules_loaded_outside_pytester() -> None:
    """pytester's in-process runs forget the modules they imported, and cryptography (behind trustme) breaks
    when imported again: load everything a served exchange and a stream use once, here."""
    from bybit_hybrid.server import ServedExchange
    from bybit_hybrid.threaded import HybridStream

    with ServedExchange(tls=True) as served:
        exchange = BybitExchange(served, 0)
        with HybridStream(**exchange.client_options(), categories=("linear",)) as stream:
            stream.wait_live(HANG_GUARD)


@pytest.fixture
def no_new_threads() -> Any:
    before = set(threading.enumerate())
    yield
    assert threads_settle(before) == set(), "a fixture left threads behind"


# ------------------------------------------------------------------------------------- loading the plugin


def test_the_package_registers_the_plugin_through_the_pytest11_entry_point(pytester: pytest.Pytester) -> None:
    (ep,) = [ep for ep in entry_points(group="pytest11") if ep.name == "bybit_hybrid"]
    assert ep.value == "bybit_hybrid.pytest_plugin"
    pytester.makepyfile("def test_sim(bybit_sim):\n    assert bybit_sim.core is not None\n")
    result = pytester.runpytest("--trace-config")  # no conftest anywhere: only the entry point can load it
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*PLUGIN registered: <module 'bybit_hybrid.pytest_plugin'*"])
    off = pytester.runpytest("-p", "no:bybit_hybrid")
    off.assert_outcomes(errors=1)
    off.stdout.fnmatch_lines(["*fixture 'bybit_sim' not found*"])


def test_importing_the_plugin_is_light() -> None:
    """Loaded in every pytest run of every user: no TLS helper, event loop or stream at import."""
    code = (
        "import sys; import bybit_hybrid.pytest_plugin; "
        "print(sorted(m for m in ('anyio', 'trio', 'trustme', 'asyncio', 'ssl', 'bybit_hybrid.server', "
        "'bybit_hybrid.threaded', 'bybit_hybrid_core.testing') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_tests_that_use_no_fixture_are_untouched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest("--strict-markers", "--fixtures")
    result.stdout.fnmatch_lines(["*bybit_sim*", "*bybit_exchange*", "*bybit_stream*"])
    # In a process of its own, as a user's run: not even a warning (in-process, pytest would warn that the
    # package, already imported by this suite, cannot be assertion-rewritten).
    pytester.runpytest_subprocess("--strict-markers", "-W", "error").assert_outcomes(passed=1)
    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.bybit_seed(n):*"])


# ------------------------------------------------------------------------------------------ the fixtures

USER_FIXTURES = """
import os
from decimal import Decimal

import pytest
from bybit_hybrid_core import LinkDown, LinkUp, Link, PositionUpdate


def test_sim_is_advanced_by_the_test(bybit_sim, bybit_seed):
    assert bybit_seed == 1 and bybit_sim.now == 0.0
    bybit_sim.exchange.open_position("BTCUSDT", side="Buy", size="0.5")
    bybit_sim.advance(2.0)
    bybit_sim.settle()
    assert bybit_sim.core.positions() == bybit_sim.exchange.positions()
    last = bybit_sim.last_updates()[("linear", "BTCUSDT", 0)]
    assert last.mark_price == bybit_sim.exchange.mark("BTCUSDT")


def test_exchange_is_served_over_tls_on_loopback(bybit_exchange):
    assert bybit_exchange.tls and bybit_exchange.host == "127.0.0.1"
    assert bybit_exchange.ws_url == f"wss://127.0.0.1:{bybit_exchange.port}"
    assert bybit_exchange.rest_url == f"https://127.0.0.1:{bybit_exchange.port}"
    assert os.path.exists(bybit_exchange.ca_file)
    assert (bybit_exchange.api_key, bybit_exchange.api_secret) == ("test-key", "test-secret")
    assert bybit_exchange.credentials.api_key == "test-key"
    assert bybit_exchange.client_options()["cafile"] == bybit_exchange.ca_file
    bybit_exchange.open_position("ETHUSDT", "Sell", "2")
    assert bybit_exchange.positions()[("linear", "ETHUSDT", 0)].size == 2
    with open("ca_files.txt", "a") as f:
        f.write(bybit_exchange.ca_file + "\\n")


def wait_for(stream, predicate, timeout=10.0):
    import time
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        for event in stream.next_batch(timeout=0.2):
            seen.append(event)
            if predicate(event):
                return seen
    raise AssertionError(f"not seen within {timeout} s: {[type(e).__name__ for e in seen[-20:]]}")


def test_stream_is_live_and_priced_at_live_marks(bybit_exchange, bybit_stream):
    status = bybit_stream.call(lambda core: core.status())
    assert {link.value if hasattr(link, "value") else str(link) for link in status}
    assert all(s.state == "LIVE" for s in status.values())
    bybit_exchange.open_position("BTCUSDT", "Buy", "0.5")
    price = (bybit_exchange.mark("BTCUSDT") * Decimal("1.02")).quantize(Decimal("0.1"))
    bybit_exchange.mark("BTCUSDT", price)
    wait_for(bybit_stream, lambda e: isinstance(e, PositionUpdate) and e.cause == "mark"
             and e.mark_price == price)


def test_a_fault_and_its_healing(bybit_exchange, bybit_stream):
    assert bybit_exchange.drop_link("private", close_frame=False) == 1
    wait_for(bybit_stream, lambda e: isinstance(e, LinkDown) and e.link is Link.PRIVATE)
    wait_for(bybit_stream, lambda e: isinstance(e, LinkUp) and e.link is Link.PRIVATE)
    bybit_exchange.heal()
"""


def test_each_fixture_in_a_users_test_file(pytester: pytest.Pytester, no_new_threads: None) -> None:
    pytester.makepyfile(test_user=USER_FIXTURES)
    result = pytester.runpytest("--strict-markers", "-W", "error::pytest.PytestUnraisableExceptionWarning")
    result.assert_outcomes(passed=4)
    (ca_file,) = (pytester.path / "ca_files.txt").read_text().split()
    assert not Path(ca_file).exists()  # the throwaway CA went with the exchange


USER_OVERRIDES = """
import pytest
from bybit_hybrid_core import Config, Credentials, Endpoints, Timings


@pytest.fixture
def bybit_tls():
    return False


@pytest.fixture
def bybit_config():
    return Config(categories=("linear", "spot"), credentials=Credentials("test-key", "test-secret"),
                  endpoints=Endpoints.custom("ws://fake.bybit"), timings=Timings(ping_interval=5.0))


def test_plain_tcp_and_a_config_of_ones_own(bybit_exchange, bybit_stream):
    assert bybit_exchange.ws_url.startswith("ws://127.0.0.1:") and bybit_exchange.ca_file is None
    links = bybit_stream.call(lambda core: core.status())
    assert len(links) == 3  # private, linear and spot
    assert bybit_exchange.connections == 3
"""


def test_fixtures_can_be_overridden(pytester: pytest.Pytester, no_new_threads: None) -> None:
    pytester.makepyfile(test_override=USER_OVERRIDES)
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_missing_trustme_fails_with_the_install_hint(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys
        import pytest

        @pytest.fixture(autouse=True)
        def no_trustme(monkeypatch):
            monkeypatch.setitem(sys.modules, "trustme", None)

        def test_served(bybit_exchange):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    assert 'needs trustme: pip install "bybit-hybrid[sim]"' in result.stdout.str()
    assert "During handling" not in result.stdout.str()


# ---------------------------------------------------------------------------------------------- the seed

USER_SEEDS = """
import json
import pytest


def record(name, sim):
    sim.advance(3.0)
    with open("marks.jsonl", "a") as f:
        f.write(json.dumps([name, str(sim.exchange.mark("BTCUSDT")), len(sim.events)]) + "\\n")


@pytest.mark.bybit_seed(5)
def test_five(bybit_sim, bybit_seed):
    assert bybit_seed == 5
    record("five", bybit_sim)


@pytest.mark.bybit_seed(5)
def test_five_again(bybit_sim):
    record("five_again", bybit_sim)


@pytest.mark.bybit_seed(6)
def test_six(bybit_sim):
    record("six", bybit_sim)


def test_default(bybit_sim, bybit_seed):
    assert bybit_seed == 1
    record("default", bybit_sim)


@pytest.mark.bybit_seed(1)
def test_one(bybit_sim):
    record("one", bybit_sim)


@pytest.mark.bybit_seed(5)
class TestMarkedClass:
    def test_in_class(self, bybit_sim, bybit_seed, bybit_exchange):
        assert bybit_seed == 5 and bybit_exchange.seed == 5
        record("class", bybit_sim)


@pytest.mark.bybit_seed("five")
def test_bad_seed(bybit_sim):
    pass
"""


def test_the_marker_picks_the_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seeds=USER_SEEDS)
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=6, errors=1)
    result.stdout.fnmatch_lines(["*bybit_seed takes one int*"])
    rows = [json.loads(line) for line in (pytester.path / "marks.jsonl").read_text().splitlines()]
    marks = {name: (mark, n) for name, mark, n in rows}
    assert marks["five"] == marks["five_again"] == marks["class"]  # same seed, same simulated market
    assert marks["default"] == marks["one"]
    assert marks["five"][0] != marks["six"][0] and marks["five"][0] != marks["one"][0]


# ------------------------------------------------------------------------------ the example in the docs


def docs_example() -> str:
    """The ```python no-run block of docs/testing.md's pytest-plugin section, verbatim."""
    page = (REPO / "docs" / "testing.md").read_text()
    section = page.split("## The pytest plugin", 1)[1]
    blocks = re.findall(r"^```python no-run\n(.*?)^```", section, re.S | re.M)
    assert len(blocks) == 1, "the plugin section shows one test file"
    return str(blocks[0])


def test_the_docs_trailing_stop_example_passes(pytester: pytest.Pytester, no_new_threads: None) -> None:
    pytester.makepyfile(test_trailing_stop=docs_example())
    result = pytester.runpytest("--strict-markers", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_trailing_stop_in_the_simulation PASSED*"])
    result.stdout.fnmatch_lines(["*test_trailing_stop_on_live_marks PASSED*"])


# ------------------------------------------------------------------------- the faults of `bybit-hybrid sim`

SIM_COMMANDS = {
    "open": "open_position", "close": "close_position", "mark": "mark", "positions": "positions",
    "status": "connections", "drop": "drop_link", "half-open": "half_open", "lose-pongs": "lose_pongs",
    "reject-auth": "reject_auth", "skew": "clock_skew", "geo-block": "geo_block",
    "fail-subscribe": "fail_subscribe", "rest-fail": "rest_fail", "restart": "restart_service",
    "kill": "kill", "revive": "revive", "heal": "heal",
    "order": "trade", "amend": "trade", "cancel": "trade", "orders": "trade", "stop": "trade",
    "leverage": "trade",
}  # fmt: skip


def test_every_sim_command_is_a_method_of_the_exchange_fixture() -> None:
    shell = SimShell(None)  # type: ignore[arg-type]  # only its command table is read
    assert set(shell.commands) - {"help"} == set(SIM_COMMANDS), "a new sim command: map it here, add it"
    for method in SIM_COMMANDS.values():
        assert hasattr(BybitExchange, method), method


def test_every_fault_method_reaches_the_exchange(bybit_exchange: BybitExchange) -> None:
    """Used directly (the plugin is loaded in this suite too): each method runs on the served exchange."""
    ex = bybit_exchange
    ex.open_position("BTCUSDT", "Buy", "0.5")
    ex.open_position("ETHUSDT", "Buy", "1", position_idx=1)
    ex.place_order("BTCUSDT", "Buy", "0.1")
    assert ex.positions()[("linear", "BTCUSDT", 0)].size == Decimal("0.6")
    ex.close_position("ETHUSDT", position_idx=1)
    assert ex.mark("BTCUSDT", "50000") == 50000
    assert ex.drop_link("all") == 0 and ex.half_open("private") == 0
    ex.lose_pongs("linear", 2)
    ex.delay_pongs("linear", 0.5)
    ex.reject_auth(None)
    ex.clock_skew(5000)
    ex.geo_block()
    ex.fail_subscribe("tickers.BTCUSDT", 1)
    ex.rest_fail(2, status=500)
    ex.rest_delay(0.1)
    ex.restart_service(drop_links=True)
    ex.send_garbage("linear", "not json")
    ex.duplicate("linear", 2)
    ex.reorder("linear", 2)
    ex.heal()
    ex.drop_connections()
    assert ex.freeze() == 0 and ex.connections == 0 and ex.rest_requests == 0
    ex.kill()
    ex.revive()
    assert ex.call(lambda exchange, n: len(exchange.positions()) + n, 1) == 2
    assert "seed=1" in repr(ex)
