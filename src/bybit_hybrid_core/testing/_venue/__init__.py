"""The Venue behind the FakeExchange: instruments, a seeded market, accounts, and what they push.

`venue` (`Venue`) is the one the exchange talks to; `instruments` hold tick and lot sizes, `market` the
seeded mark/last/index/bid/ask walks, `book` and `tape` the order books and trades, `public` and `topics`
turn them into topic messages, `account` and `rows` fill orders and shape the private pushes
(execution.fast -> order -> execution -> position + wallet, with matching seq).
"""

from __future__ import annotations

from .account import OrderRejected
from .venue import Venue

__all__ = ["OrderRejected", "Venue"]
