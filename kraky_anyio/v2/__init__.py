"""Kraken's WebSocket API v2: the connection, typed messages, parameters, books.

``async with v2.open_kraken() as conn`` (:mod:`.connection`) runs the shared
shell with :class:`~.protocol.KrakenV2Protocol`. The rest has no I/O:

* :mod:`.messages`: typed frames with exact Decimals, :func:`decode`;
* :mod:`.params`: the channels, their parameters, request encoding;
* :mod:`.book`: the L2 book; :mod:`.level3`: the L3 book; both return a
  :class:`Verdict` per message;
* :mod:`.render`: frames written as Kraken writes them, for the fake exchange;
* :mod:`.rate_budget`: the client's order rate budget (``rate_limit=``);
* :mod:`.order_results`: what the order methods (:mod:`.trading`) return;
  :mod:`.private_messages`: the typed ``executions``/``balances``.
"""

from __future__ import annotations

from .book import Book, Outcome, Verdict
from .connection import ENVIRONMENTS, KrakenV2Connection, open_kraken
from .level3 import Level3Book, PriceLevel
from .messages import Message, MessageError, decode
from .order_results import (
    AddOrderResult,
    AmendResult,
    BatchAddResult,
    BatchCancelResult,
    CancelAfterResult,
    CancelAllResult,
    CancelResult,
    EditResult,
)
from .params import CHANNELS, encode_request, subscription_params
from .private_messages import Balance, BalancesMessage, Execution, ExecutionsMessage
from .protocol import KrakenV2Protocol
from .rate_budget import RateBudget

__all__ = [
    "CHANNELS",
    "ENVIRONMENTS",
    "AddOrderResult",
    "AmendResult",
    "Balance",
    "BalancesMessage",
    "BatchAddResult",
    "BatchCancelResult",
    "Book",
    "CancelAfterResult",
    "CancelAllResult",
    "CancelResult",
    "EditResult",
    "Execution",
    "ExecutionsMessage",
    "KrakenV2Connection",
    "KrakenV2Protocol",
    "Level3Book",
    "Message",
    "MessageError",
    "Outcome",
    "PriceLevel",
    "RateBudget",
    "Verdict",
    "decode",
    "encode_request",
    "open_kraken",
    "subscription_params",
]
