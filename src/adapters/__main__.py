"""`python -m bybit_hybrid ...` is `bybit-hybrid ...` (see `bybit_hybrid.cli`)."""

import sys

from .cli import main

sys.exit(main())
