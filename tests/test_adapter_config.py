"""Adapter settings from arguments or the environment; TLS contexts; secrets never shown."""

from __future__ import annotations

import ssl

import pytest
from bybit_hybrid._net import client_ssl_context, target
from bybit_hybrid.config import settings

from bybit_hybrid_core._config import Config, Credentials, Endpoints, Timings
from bybit_hybrid_core._errors import LocalProtocolError

SECRET = "the-secret-never-shown"


def test_arguments_win_over_the_environment() -> None:
    env = {"BYBIT_API_KEY": "env-key", "BYBIT_API_SECRET": "env-secret", "BYBIT_DEMO": "1"}
    s = settings("arg-key", SECRET, testnet=True, demo=False, environ=env)
    assert s.config.credentials == Credentials("arg-key", SECRET)
    assert s.config.environment == "testnet"
    assert SECRET not in repr(s) + str(s.config)


@pytest.mark.parametrize(
    ("env", "environment", "private_base"),
    [
        ({}, "mainnet", "wss://stream.bybit.com"),
        ({"BYBIT_TESTNET": "yes"}, "testnet", "wss://stream-testnet.bybit.com"),
        ({"BYBIT_DEMO": "TRUE", "BYBIT_TESTNET": "0"}, "demo", "wss://stream-demo.bybit.com"),
    ],
)
def test_environment_selects_the_venue(env: dict[str, str], environment: str, private_base: str) -> None:
    s = settings(environ={"BYBIT_API_KEY": "k", "BYBIT_API_SECRET": SECRET, **env})
    assert s.config.environment == environment
    assert s.config.urls.private_base == private_base
    assert s.config.credentials is not None and s.config.credentials.api_key == "k"


def test_no_keys_means_public_data_only() -> None:
    s = settings(environ={}, categories=("linear", "spot"), topics=("tickers.BTCUSDT",))
    assert s.config.credentials is None and s.config.categories == ("linear", "spot")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"api_key": "k"}, "both api_key and api_secret"),
        ({"testnet": True, "demo": True}, "testnet or demo"),
        ({"config": Config(), "api_key": "k", "api_secret": "s"}, "either config"),
        ({"max_pending": 0}, "max_pending"),
    ],
)
def test_misuse_says_what_to_do(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        settings(environ={}, **kwargs)  # type: ignore[arg-type]


def test_bad_flags_and_unknown_options_are_refused() -> None:
    with pytest.raises(LocalProtocolError, match="BYBIT_DEMO"):
        settings(environ={"BYBIT_DEMO": "perhaps"})
    with pytest.raises(TypeError, match="colour"):
        settings(environ={}, colour="blue")


def test_a_ready_config_is_used_as_is() -> None:
    config = Config(timings=Timings(ping_interval=5.0), endpoints=Endpoints.custom("ws://127.0.0.1:1"))
    assert settings(config=config, environ={"BYBIT_API_KEY": "ignored"}).config is config


def test_tls_contexts_verify_by_default_and_custom_ones_are_kept() -> None:
    context = client_ssl_context()
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # system roots or certifi's
    mine = ssl.create_default_context()
    assert client_ssl_context(mine) is mine
    assert settings(environ={}, ssl_context=mine).ssl_context is mine


def test_targets() -> None:
    assert target("wss://stream.bybit.com/v5/private?max_active_time=60s") == target(
        "wss://stream.bybit.com:443/v5/private?max_active_time=60s"
    )
    where = target("ws://127.0.0.1:8765/v5/public/linear")
    assert (where.host, where.port, where.tls, where.path, where.host_header) == (
        "127.0.0.1", 8765, False, "/v5/public/linear", "127.0.0.1:8765",
    )  # fmt: skip
    assert (
        target("https://api.bybit.com").path == "/"
        and target("https://api.bybit.com").host_header == "api.bybit.com"
    )
    with pytest.raises(ValueError, match="ws://"):
        target("ftp://example.com")


def test_a_proxy_is_kept_and_its_password_never_shown() -> None:
    assert settings().proxy is None  # the environment's proxies apply (httpx trust_env)
    s = settings(proxy=f"http://user:{SECRET}@proxy.example:3128")
    assert s.proxy == f"http://user:{SECRET}@proxy.example:3128"
    assert SECRET not in repr(s) and "http://***@proxy.example:3128" in repr(s)


@pytest.mark.parametrize(
    "proxy", ["proxy.example:3128", "ftp://proxy.example", "http://", "http://proxy.example:port"]
)
def test_a_proxy_that_is_not_a_url_is_refused_at_once(proxy: str) -> None:
    with pytest.raises(LocalProtocolError, match="not a proxy URL"):
        settings(proxy=proxy)
    with pytest.raises(LocalProtocolError) as raised:
        settings(proxy=proxy.replace("//", f"//u:{SECRET}@", 1))
    assert SECRET not in str(raised.value)
