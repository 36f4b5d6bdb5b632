"""Kraken's WebSocket API v2: typed messages, request parameters and books (sans-I/O).

The connection (``v2.open_kraken``) comes with the shell integration; what is
here has no I/O: :mod:`.messages` (typed frames, :func:`decode`),
:mod:`.params` (channels, their parameters, request encoding), :mod:`.book`
(the L2 book) and :mod:`.level3` (the L3 book).
"""

from __future__ import annotations

from .messages import MessageError, decode

__all__ = ["MessageError", "decode"]
