"""Consumer filters: which channel data a consumer keeps (notices always)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .notices import Notice

__all__ = ["Filter", "make_filter"]

Filter = Callable[[Any], bool]


def make_filter(
    channel: str | Iterable[str] | None, pair: str | Iterable[str] | None
) -> Filter | None:
    """A predicate keeping notices and the channel data of ``channel``/``pair``.

    ``channel`` matches Kraken's channelName exactly or by family
    (``"book"`` matches ``"book-10"``; ``"ohlc"`` matches ``"ohlc-5"``).
    """
    if channel is None and pair is None:
        return None
    channels = (
        None if channel is None else ({channel} if isinstance(channel, str) else set(channel))
    )
    pairs = None if pair is None else ({pair} if isinstance(pair, str) else set(pair))

    def keep(msg: Any) -> bool:
        if isinstance(msg, Notice):
            return True
        if not isinstance(msg, list) or len(msg) < 3:
            return False
        if channels is not None:
            name = msg[-2] if isinstance(msg[-2], str) else msg[1]
            if name not in channels and name.split("-", 1)[0] not in channels:
                return False
        if pairs is not None:
            return isinstance(msg[-1], str) and msg[-1] in pairs
        return True

    return keep
