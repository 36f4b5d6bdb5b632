"""What the market simulator writes in v2 besides frames: the message it
hands to ``publish_v2`` and v2's spelling of times."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

__all__ = ["V2Publication", "iso_time", "v1_to_iso"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class V2Publication(NamedTuple):
    """One v2 channel message:
    ``server.publish_v2(channel, symbol, data, params=params)``.

    ``data`` is the message's data (``Decimal`` numbers) or, for ``book`` and
    ``level3``, the whole frame as ``bytes``; ``params`` picks the
    subscribers (``{"depth": 25}``, ``{"interval": 5}``,
    ``{"event_trigger": "bbo"}``) or is None for all of them.
    """

    channel: str
    symbol: str | None
    data: Any
    params: Mapping[str, Any] | None = None


def iso_time(us: int) -> str:
    """Microseconds since the epoch as v2 spells a time (RFC 3339, UTC)."""
    return (_EPOCH + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def v1_to_iso(ts: object) -> str:
    """A v1 time (``"1700000000.123456"``) as v2 spells it."""
    return iso_time(int(str(ts).replace(".", "")))
