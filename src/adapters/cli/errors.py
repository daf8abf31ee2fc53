"""The CLI's failures: exit codes, and one clear line with a hint for each way a start can fail.

The core reports what went wrong as events (`HandshakeRefused`, `AuthFailed`, `LinkDown` with the
transport's reason); the adapters' `StartupWatch` (`bybit_hybrid._startup`, the rules `wait_live` uses too)
names the first fatal one as a `StartupFailed`, and `cli_error` says it in the CLI's words. A link that was
up once and drops later is not fatal: the core redials and the view shows it.
"""

from __future__ import annotations

from .._startup import StartupFailed, classify_transport

__all__ = [
    "EXIT_AUTH",
    "EXIT_CODES_HELP",
    "EXIT_DIVERGED",
    "EXIT_FAILURE",
    "EXIT_NETWORK",
    "EXIT_NOTHING_COMPARED",
    "EXIT_OK",
    "EXIT_USAGE",
    "SHADOW_EXIT_CODES_HELP",
    "CliError",
    "auth_error",
    "cli_error",
    "transport_error",
]

EXIT_OK = 0
EXIT_FAILURE = 1  # a bug: the traceback is worth a report
EXIT_USAGE = 2  # bad arguments, missing keys, an unreadable file
EXIT_AUTH = 3  # the API key was refused
EXIT_NETWORK = 4  # DNS, refused port, TLS, timeout, HTTP refusal (403 geo-block)
EXIT_DIVERGED = 1  # shadow: a REST mark differed from the stream's by more than the threshold
EXIT_NOTHING_COMPARED = 5  # shadow: no comparison at all (no open position, or no fresh stream mark)

EXIT_CODES_HELP = """\
exit codes:
  0  done (--duration reached, Ctrl-C, quit)
  1  unexpected failure (please report it with the traceback)
  2  usage or configuration: bad arguments, missing BYBIT_API_KEY/BYBIT_API_SECRET, unreadable file
  3  authentication refused (clock skew, key of another environment, wrong secret)
  4  network: DNS failure, closed port, TLS failure, timeout, HTTP refusal such as the 403 geo-block"""


SHADOW_EXIT_CODES_HELP = """\
exit codes:
  0  no divergence over --threshold in the comparisons made (--duration reached or Ctrl-C)
  1  at least one REST mark differed from the stream's by more than --threshold
  2  usage or configuration: bad arguments, missing BYBIT_API_KEY/BYBIT_API_SECRET, HYBRID_MODE
  3  authentication refused (clock skew, key of another environment, wrong secret)
  4  network: DNS failure, closed port, TLS failure, timeout, HTTP refusal such as the 403 geo-block
  5  nothing was compared: no open position, or no fresh stream mark at any REST poll"""


class CliError(Exception):
    """A failure the user can fix: printed as one line on stderr, then exit with `code`."""

    def __init__(self, message: str, hint: str = "", code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message, self.hint, self.code = message, hint, code

    def line(self) -> str:
        hint = f"; hint: {self.hint}" if self.hint else ""
        return f"bybit-hybrid: error: {self.message}{hint}"


# The CLI's words for what to do, in its flags; the rest of each message is the adapters' (`_startup`).
_CLI_HINTS: dict[str, str] = {
    "dns": "check the host name and your network/DNS; a proxy or regional host can be given with --ws-url",
    "refused": "is the server running (e.g. `bybit-hybrid sim`) and the port right?",
    "certificate": "behind a TLS-inspecting proxy or for a test server pass its CA with --cafile FILE",
    "geo_block": "run from an allowed region, or point --ws-url/--rest-url at a host you may use",
}


def cli_error(failure: StartupFailed) -> CliError:
    """A start-up failure as the CLI says it: the adapters' message, a hint in flags, the exit code."""
    if failure.kind == "auth":
        return auth_error(failure)
    hint = _CLI_HINTS.get(failure.kind, failure.hint)
    return CliError(failure.message, hint, EXIT_NETWORK)


def transport_error(url: str, reason: str) -> CliError:
    """A dial or a connection that failed before the link ever came up, from the adapter's reason text
    (`ExceptionType: message`)."""
    return cli_error(classify_transport(url, reason))


def auth_error(failure: StartupFailed) -> CliError:
    """The private link's auth was refused: clock skew or a key of another environment, mostly."""
    if "params error" in failure.message.lower():
        hint = (
            "Bybit says 'Params Error' for a wrong secret, a clock that is off (sync it with NTP) and a key "
            "of another environment (mainnet, --testnet and --demo keys differ)"
        )
    else:
        hint = (
            "check the key and secret, that the key is enabled with read permission, and the environment "
            "(mainnet, --testnet or --demo)"
        )
    return CliError(failure.message, hint, EXIT_AUTH)
