"""Arguments or the environment -> the core's `Config` plus the adapters' transport settings.

Every adapter takes the same keyword arguments and passes them to `settings(...)`:

* `api_key`, `api_secret` (else `BYBIT_API_KEY`, `BYBIT_API_SECRET`; both absent = public data only),
* `testnet` / `demo` (else `BYBIT_TESTNET`, `BYBIT_DEMO`: "1", "true", "yes", "on"),
* `endpoints` (e.g. `Endpoints.custom("wss://127.0.0.1:8443")`), `categories`, `topics`, `private_topics`,
  `position_categories`, `settle_coins`, `timings`, `seed` — or a ready `config=Config(...)`,
* `ssl_context` (used as is) or `cafile` (a CA bundle to trust instead of the system roots),
* `max_pending` (bound of the event queue before market data conflates), `connect_timeout`,
* `proxy`: an explicit proxy URL for REST (`http://`, `https://`, `socks5://`, `socks5h://`; SOCKS needs
  `pip install "httpx[socks]"`). None (the default): the environment's `HTTPS_PROXY` / `HTTP_PROXY` /
  `ALL_PROXY` / `NO_PROXY` apply, read by httpx. The WebSocket links never go through a proxy.

Secrets stay inside `Credentials`: no repr, log line or exception here ever shows them. A proxy URL's
password is masked wherever it is shown (`masked_proxy`).
"""

from __future__ import annotations

import importlib.util
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bybit_hybrid_core import Config, Credentials, Endpoints, Environment, LocalProtocolError, Timings

from ._net import client_ssl_context

__all__ = ["Config", "Endpoints", "Settings", "Timings", "masked_proxy", "settings"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})
_CONFIG_FIELDS = (
    "categories",
    "topics",
    "private_topics",
    "position_categories",
    "settle_coins",
    "timings",
    "seed",
)
_PROXY_SCHEMES = frozenset({"http", "https", "socks5", "socks5h"})
_USERINFO = re.compile(r"//[^/\s]*@")  # `user:password@` after the scheme, to its last `@`


def masked_proxy(text: str) -> str:
    """`text` (a proxy URL, or a message quoting one) with any `user:password@` shown as `***@`."""
    return _USERINFO.sub("//***@", text)


@dataclass(frozen=True, slots=True)
class Settings:
    """What an adapter needs: the core's config and how to reach it. The repr shows no secret."""

    config: Config
    ssl_context: ssl.SSLContext = field(repr=False)
    max_pending: int = 10_000
    connect_timeout: float = 10.0
    proxy: str | None = None  # REST only; may hold a password: the repr masks it

    def __repr__(self) -> str:
        proxy = None if self.proxy is None else masked_proxy(self.proxy)
        return (
            f"Settings(config={self.config!r}, max_pending={self.max_pending!r}, "
            f"connect_timeout={self.connect_timeout!r}, proxy={proxy!r})"
        )


def _proxy(proxy: str | None) -> str | None:
    """Check an explicit proxy URL here, at construction, rather than when the first REST call is made."""
    if proxy is None:
        return None
    try:
        where = urlsplit(proxy)
        scheme, host = where.scheme.lower(), where.hostname
        where.port  # noqa: B018  (raises ValueError on a port that is not a number)
    except ValueError:
        scheme, host = "", None
    if scheme not in _PROXY_SCHEMES or not host:
        raise LocalProtocolError(
            f"proxy={masked_proxy(proxy)!r} is not a proxy URL: use e.g. http://host:3128 "
            f"(schemes: {', '.join(sorted(_PROXY_SCHEMES))})"
        )
    if scheme.startswith("socks") and importlib.util.find_spec("socksio") is None:
        raise LocalProtocolError('a SOCKS proxy needs socksio: pip install "httpx[socks]"')
    return proxy


def _flag(value: bool | None, name: str, environ: Mapping[str, str]) -> bool:
    if value is not None:
        return value
    text = environ.get(name, "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise LocalProtocolError(f"{name}={text!r} is not a boolean: use 1/0, true/false, yes/no or on/off")


def _environment(testnet: bool, demo: bool) -> Environment:
    if testnet and demo:
        raise LocalProtocolError("choose testnet or demo, not both (a demo key fails on testnet hosts)")
    return "testnet" if testnet else "demo" if demo else "mainnet"


def settings(
    api_key: str | None = None,
    api_secret: str | None = None,
    *,
    testnet: bool | None = None,
    demo: bool | None = None,
    config: Config | None = None,
    endpoints: Endpoints | None = None,
    ssl_context: ssl.SSLContext | None = None,
    cafile: str | None = None,
    max_pending: int = 10_000,
    connect_timeout: float = 10.0,
    proxy: str | None = None,
    environ: Mapping[str, str] | None = None,
    **config_fields: Any,
) -> Settings:
    """Build `Settings` from arguments, falling back to the environment. See the module docstring."""
    unknown = set(config_fields) - set(_CONFIG_FIELDS)
    if unknown:
        raise TypeError(f"unexpected argument(s) {sorted(unknown)}; config fields are {list(_CONFIG_FIELDS)}")
    if max_pending < 1 or connect_timeout <= 0:
        raise LocalProtocolError("max_pending must be >= 1 and connect_timeout > 0")
    env = os.environ if environ is None else environ
    if config is None:
        key = api_key if api_key is not None else env.get("BYBIT_API_KEY", "")
        secret = api_secret if api_secret is not None else env.get("BYBIT_API_SECRET", "")
        if bool(key) != bool(secret):
            raise LocalProtocolError(
                "give both api_key and api_secret (or BYBIT_API_KEY and BYBIT_API_SECRET)"
            )
        environment = _environment(_flag(testnet, "BYBIT_TESTNET", env), _flag(demo, "BYBIT_DEMO", env))
        credentials = Credentials(key, secret) if key else None
        config = Config(
            credentials=credentials, environment=environment, endpoints=endpoints, **config_fields
        )
    elif api_key or api_secret or endpoints or config_fields:
        raise LocalProtocolError("pass either config=Config(...) or the separate arguments, not both")
    context = client_ssl_context(ssl_context, cafile)
    return Settings(config, context, max_pending, connect_timeout, _proxy(proxy))
