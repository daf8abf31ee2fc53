"""FACE OF bybit_hybrid.cli (docstring to be written)."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
