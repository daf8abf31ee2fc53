"""Transport plumbing shared by every adapter: where a URL points, and the TLS context to reach it.

Nothing here knows Bybit: it turns `ws://`, `wss://`, `http://` and `https://` URLs into (host, port, TLS?)
and builds a verifying client `ssl.SSLContext` (system roots plus certifi's bundle: certifi is a dependency).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import certifi

__all__ = ["LinkStats", "Target", "anyio_connect", "client_ssl_context", "describe", "target"]

_DEFAULT_PORTS = {"ws": 80, "wss": 443, "http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Target:
    """Where to open TCP, whether to run TLS over it, and the HTTP request target (path and query)."""

    host: str
    port: int
    tls: bool
    path: str

    @property
    def host_header(self) -> str:
        default = 443 if self.tls else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def target(url: str) -> Target:
    """Split a ws(s):// or http(s):// URL. Raises ValueError on any other scheme or a missing host."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(
            f"cannot connect to {url!r}: expected ws://, wss://, http:// or https:// with a host"
        )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    tls = parts.scheme in ("wss", "https")
    return Target(parts.hostname, parts.port or _DEFAULT_PORTS[parts.scheme], tls, path)


def client_ssl_context(
    ssl_context: ssl.SSLContext | None = None, cafile: str | None = None
) -> ssl.SSLContext:
    """The context used for every wss:// and https:// connection.

    A given `ssl_context` is used as is (the caller owns its policy). Otherwise verification is on with
    hostname checks (SNI is sent by every adapter), trusting `cafile` when given, else the system roots
    plus certifi's bundle (slim containers often ship no system roots; certifi is a declared dependency).
    """
    if ssl_context is not None:
        return ssl_context
    context = ssl.create_default_context(cafile=cafile)
    if cafile is None:
        context.load_verify_locations(certifi.where())
    return context


async def anyio_connect(where: Target, ssl_context: ssl.SSLContext) -> Any:
    """An anyio byte stream to `where`: TCP, plus TLS with SNI when `where.tls`. (anyio turns TLS on as soon
    as a context or hostname is passed, so plain connections must pass neither.)"""
    import anyio  # lazily: the stdlib-asyncio and threaded adapters must not need anyio

    if not where.tls:
        return await anyio.connect_tcp(where.host, where.port)
    return await anyio.connect_tcp(
        where.host, where.port, tls=True, ssl_context=ssl_context, tls_hostname=where.host,
        tls_standard_compatible=False,  # Bybit closes without TLS close_notify; that is not an attack here
    )  # fmt: skip


def describe(exc: BaseException) -> str:
    """A short, secret-free reason for `core.lost()`: the exception type and its message."""
    text = str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}"[:200]


@dataclass(slots=True)
class LinkStats:
    """What the transport saw on one link (no protocol knowledge): for status pages and health checks."""

    dials: int = 0  # Dial actions performed
    connects: int = 0  # TCP (+TLS) connections that came up
    bytes_in: int = 0
    last_receive: float | None = None  # adapter clock of the last bytes received
