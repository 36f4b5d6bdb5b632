"""The v1 protocol under its old module path (kept for existing imports).

The code lives in :mod:`kraky_anyio.v1` (protocol, builders, codec,
subscriptions), :mod:`kraky_anyio.requests` and :mod:`kraky_anyio.stats`.
"""

from __future__ import annotations

from .options import resolve_url
from .redaction import redact
from .requests import MAX_REQID, MAX_USER_REQID, Request, RequestState
from .stats import Stats
from .v1.builders import DEFERRED_TOKEN, normalise_pairs
from .v1.codec import ENVIRONMENTS, FrameKind, classify, decode, encode, json_default
from .v1.protocol import KrakenMessage, KrakenProtocol

PendingRequest = Request
#: Old private name, still imported by cli.py: use ``json_default``.
_json_default = json_default

__all__ = [
    "DEFERRED_TOKEN",
    "ENVIRONMENTS",
    "MAX_REQID",
    "MAX_USER_REQID",
    "FrameKind",
    "KrakenMessage",
    "KrakenProtocol",
    "PendingRequest",
    "Request",
    "RequestState",
    "Stats",
    "classify",
    "decode",
    "encode",
    "json_default",
    "normalise_pairs",
    "redact",
    "resolve_url",
]
