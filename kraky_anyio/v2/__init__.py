"""Kraken's WebSocket API v2: typed messages, request parameters and books (sans-I/O).

The connection (``v2.open_kraken``) comes with the shell integration; what is
here has no I/O:

* :mod:`.messages`: typed frames with exact Decimals, :func:`decode`;
* :mod:`.params`: the channels, their parameters, request encoding;
* :mod:`.book`: the L2 book; :mod:`.level3`: the L3 book; both return a
  :class:`Verdict` per message;
* :mod:`.render`: frames written as Kraken writes them, for the fake exchange.
"""

from __future__ import annotations

from .book import Book, Outcome, Verdict
from .level3 import Level3Book, PriceLevel
from .messages import Message, MessageError, decode
from .params import CHANNELS, encode_request, subscription_params

__all__ = [
    "CHANNELS",
    "Book",
    "Level3Book",
    "Message",
    "MessageError",
    "Outcome",
    "PriceLevel",
    "Verdict",
    "decode",
    "encode_request",
    "subscription_params",
]
