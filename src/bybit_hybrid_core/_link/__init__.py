"""FACE OF bybit_hybrid_core._link (docstring to be written)."""

from __future__ import annotations

from .connection import LinkConnection
from .policy import DialBudget
from .states import Input
from .subs import OPTION_MAX_ARGS, PUBLIC_MAX_ARG_CHARS, private_family

__all__ = [
    "OPTION_MAX_ARGS",
    "PUBLIC_MAX_ARG_CHARS",
    "DialBudget",
    "Input",
    "LinkConnection",
    "private_family",
]
