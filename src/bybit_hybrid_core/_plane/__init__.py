"""FACE OF bybit_hybrid_core._plane (docstring to be written)."""

from __future__ import annotations

from .plane import DataPlane

__all__ = ["DataPlane"]
