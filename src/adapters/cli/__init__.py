"""The `bybit-hybrid` command line: `main(argv)` parses and runs one command.

`dispatch` holds the parser and runs the command; one module per command family (`demo`, `live` for watch and
positions, `shadow` for the REST/stream comparison, `sim`, `record` for record and replay), the terminal view
(`view`), the one-line failure messages (`errors`), shared command helpers (`commands`) and the stop-signal
handling (`signals`).
It uses the adapters (`bybit_hybrid`) and the core's public face only.
"""

from __future__ import annotations

from .dispatch import main

__all__ = ["main"]
