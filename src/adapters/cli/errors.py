"""The CLI's failures: exit codes, and one clear line with a hint for each way a start can fail.

The core reports what went wrong as events (`HandshakeRefused`, `AuthFailed`, `LinkDown` with the
transport's reason); `StartupWatch` turns the first fatal one into a `CliError`. A link that was up once
and drops later is not fatal: the core redials and the view shows it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from bybit_hybrid_core import AuthFailed, Event, HandshakeRefused, Link, LinkDown, LinkUp

__all__ = [
    "EXIT_AUTH",
    "EXIT_CODES_HELP",
    "EXIT_FAILURE",
    "EXIT_NETWORK",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "StartupWatch",
    "auth_error",
    "transport_error",
]

EXIT_OK = 0
EXIT_FAILURE = 1  # a bug: the traceback is worth a report
EXIT_USAGE = 2  # bad arguments, missing keys, an unreadable file
EXIT_AUTH = 3  # the API key was refused
EXIT_NETWORK = 4  # DNS, refused port, TLS, timeout, HTTP refusal (403 geo-block)

EXIT_CODES_HELP = """\
exit codes:
  0  done (--duration reached, Ctrl-C, quit)
  1  unexpected failure (please report it with the traceback)
  2  usage or configuration: bad arguments, missing BYBIT_API_KEY/BYBIT_API_SECRET, unreadable file
  3  authentication refused (clock skew, key of another environment, wrong secret)
  4  network: DNS failure, closed port, TLS failure, timeout, HTTP refusal such as the 403 geo-block"""


class CliError(Exception):
    """A failure the user can fix: printed as one line on stderr, then exit with `code`."""

    def __init__(self, message: str, hint: str = "", code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message, self.hint, self.code = message, hint, code

    def line(self) -> str:
        hint = f"; hint: {self.hint}" if self.hint else ""
        return f"bybit-hybrid: error: {self.message}{hint}"


def _where(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or url
    return f"{host}:{parts.port}" if parts.port else host


def transport_error(url: str, reason: str) -> CliError:
    """A dial or a connection that failed before the link ever came up, from the adapter's reason text
    (`ExceptionType: message`)."""
    where, text = _where(url), reason.lower()
    if "gaierror" in text or "name or service not known" in text or "nodename nor servname" in text:
        return CliError(
            f"cannot resolve {urlsplit(url).hostname or url} (DNS)",
            "check the host name and your network/DNS; a proxy or regional host can be given with --ws-url",
            EXIT_NETWORK,
        )
    if "refused" in text and ("connection" in text or "errno 111" in text or "connect call" in text):
        return CliError(
            f"connection refused by {where}: nothing listens on that port",
            "is the server running (e.g. `bybit-hybrid sim`) and the port right?",
            EXIT_NETWORK,
        )
    if "certificate" in text or "certverif" in text:
        return CliError(
            f"TLS certificate of {where} not trusted: {reason}",
            "behind a TLS-inspecting proxy or for a test server pass its CA with --cafile FILE",
            EXIT_NETWORK,
        )
    if "ssl" in text or "tls" in text:
        return CliError(
            f"TLS handshake with {where} failed: {reason}",
            "check ws:// vs wss:// (plain servers need ws://) and any proxy in between",
            EXIT_NETWORK,
        )
    if "timed out" in text or "timeout" in text:
        return CliError(
            f"no answer from {where} in time ({reason})",
            "a firewall or proxy may drop the connection; check the network",
            EXIT_NETWORK,
        )
    return CliError(f"could not connect to {url}: {reason}", "check the network and the URL", EXIT_NETWORK)


def auth_error(event: AuthFailed, private_url: str) -> CliError:
    """The private link's auth was refused: clock skew or a key of another environment, mostly."""
    host = urlsplit(private_url).hostname or private_url
    if "params error" in event.reason.lower():
        hint = (
            "Bybit says 'Params Error' for a wrong secret, a clock that is off (sync it with NTP) and a key "
            "of another environment (mainnet, --testnet and --demo keys differ)"
        )
    else:
        hint = (
            "check the key and secret, that the key is enabled with read permission, and the environment "
            "(mainnet, --testnet or --demo)"
        )
    return CliError(f"{host} refused the API key: {event.reason}", hint, EXIT_AUTH)


def _handshake_error(event: HandshakeRefused, url: str) -> CliError:
    if event.status == 403:
        return CliError(
            f"HTTP 403 from {_where(url)}: Bybit blocks this region by IP (geo-block)",
            "run from an allowed region, or point --ws-url/--rest-url at a host you may use",
            EXIT_NETWORK,
        )
    return CliError(
        f"{_where(url)} refused the WebSocket upgrade: HTTP {event.status}", event.hint, EXIT_NETWORK
    )


class StartupWatch:
    """Reads the events of a starting stream and names the first fatal one.

    Fatal: any refused auth, and a link that goes down (or is refused) before it was ever up. Once a link
    has been up, its drops are the core's business: it redials with backoff and the view shows it.

    Args:
        urls: the URL of each link, to name the host in messages.
    """

    def __init__(self, urls: dict[Link, str]) -> None:
        self._urls = urls
        self._up: set[Link] = set()
        self._refused: set[Link] = set()

    def check(self, event: Event) -> CliError | None:
        """The error to exit with, or None to go on."""
        url = self._urls.get(event.link, str(event.link))
        match event:
            case LinkUp(link=link):
                self._up.add(link)
            case AuthFailed():
                return auth_error(event, url)
            case HandshakeRefused(link=link) if link not in self._up:
                self._refused.add(link)
                return _handshake_error(event, url)
            case LinkDown(link=link, reason=reason) if link not in self._up and link not in self._refused:
                return transport_error(url, reason.removeprefix("transport lost: "))
        return None
