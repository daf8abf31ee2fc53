"""`python -m bybit_hybrid.cli ...`: the same as `bybit-hybrid ...`."""

from __future__ import annotations

from . import main

raise SystemExit(main())
