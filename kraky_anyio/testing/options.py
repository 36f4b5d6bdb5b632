"""The fake exchange's options, in one frozen, validated object.

:class:`FakeKrakenOptions` is what :func:`~kraky_anyio.testing.server.open_fake_kraken`,
:class:`~kraky_anyio.testing.server.FakeKrakenServer` and every session
(v1 and v2) are configured with: an option exists here or nowhere. A bad
value raises ``TypeError`` (wrong type) or ``ValueError`` (wrong value) when
the object is built, so a typo fails before any socket opens::

    options = FakeKrakenOptions(heartbeat_interval=0.5, valid_tokens={"tok-1"})
    later = options.replace(status="maintenance")  # validated again

Pure data: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from .session import FakeKrakenSession

__all__ = [
    "DEFAULT_PAIRS",
    "SYSTEM_STATUSES",
    "FakeKrakenOptions",
    "OrderHandler",
    "OutgoingMessage",
    "PrivateSnapshotProvider",
    "SnapshotProvider",
    "V2SnapshotProvider",
    "check_status",
    "make_options",
]

#: One message the server sends: an event (object) or channel data (array).
OutgoingMessage: TypeAlias = dict[str, Any] | list[Any]

#: ``(channel_name, pair) -> payloads`` sent to a new v1 subscriber after its reply.
SnapshotProvider: TypeAlias = Callable[[str, "str | None"], list[Any]]
#: ``handler(session, request, now) -> replies`` for v1 order events: the hook
#: where a trading engine plugs in. ``request`` is the decoded client object;
#: it may also return private channel data built with
#: :meth:`FakeKrakenSession.publish`.
OrderHandler: TypeAlias = Callable[
    ["FakeKrakenSession", dict[str, Any], float], list[OutgoingMessage]
]
#: ``(session, channel_name, subscription) -> payloads`` sent to a new
#: subscriber of a v1 private channel (``ownTrades``/``openOrders``) after its
#: reply. ``subscription`` is the client's object, ``token`` included.
PrivateSnapshotProvider: TypeAlias = Callable[["FakeKrakenSession", str, dict[str, Any]], list[Any]]
#: ``(channel, symbol, params) -> data`` for a new v2 subscriber: each item is
#: the ``data`` of one ``"type": "snapshot"`` message sent after its ack, or
#: ``bytes``, a whole snapshot frame already written (``kraky_anyio.v2.render``)
#: (``symbol`` is ``None`` for channels without symbols; ``params`` are the
#: subscription's, defaults filled in, token left out). Not called when the
#: subscriber asked for ``snapshot: false``.
V2SnapshotProvider: TypeAlias = Callable[[str, "str | None", dict[str, Any]], list[Any]]

#: The system statuses Kraken announces (v1 ``systemStatus.status``, v2
#: ``status.data[].system``; ``limit_only`` is v1's only).
SYSTEM_STATUSES = frozenset({"online", "maintenance", "cancel_only", "post_only", "limit_only"})

#: The pairs a server accepts unless told otherwise, in Kraken v1 ``wsname``
#: spelling; v2 sessions accept the same pairs in v2 spelling (``BTC/USD``,
#: see :func:`kraky_anyio.testing.v2_session.v2_symbol`).
DEFAULT_PAIRS = frozenset(
    {
        "XBT/USD",
        "XBT/EUR",
        "XBT/USDT",
        "ETH/USD",
        "ETH/EUR",
        "ETH/XBT",
        "SOL/USD",
        "XRP/USD",
        "ADA/USD",
        "DOT/USD",
        "LTC/USD",
        "XDG/USD",
        "USDT/USD",
    }
)


def check_status(status: object) -> str:
    """``status`` if Kraken uses it, else ``TypeError``/``ValueError``."""
    if not isinstance(status, str):
        raise TypeError(f"status must be a str, not {type(status).__name__}")
    if status not in SYSTEM_STATUSES:
        raise ValueError(f"unknown system status {status!r}; one of {sorted(SYSTEM_STATUSES)}")
    return status


def _strings(name: str, value: object) -> frozenset[str] | None:
    if value is None:
        return None
    # A bare str is a Collection[str] too: "tok" would become {"t", "o", "k"}.
    if isinstance(value, (str, bytes)) or not isinstance(value, Collection):
        raise TypeError(f"{name} must be a collection of str or None, not {value!r}")
    items = frozenset(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{name} must hold str, not {item!r}")
    return items


def _callable(name: str, value: object) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, not {value!r}")


@dataclass(frozen=True)
class FakeKrakenOptions:
    """How a fake exchange behaves (see the module docstring).

    * ``heartbeat_interval``: seconds of silence before a heartbeat, while a
      connection has a subscription (Kraken: about 1).
    * ``status``: the system status announced on connect (one of
      :data:`SYSTEM_STATUSES`).
    * ``valid_tokens``: the tokens private subscriptions and orders accept;
      ``None`` accepts any non-empty token.
    * ``pairs``: the pairs subscriptions accept, v1 spelling (``XBT/USD``);
      ``None`` accepts any ``BASE/QUOTE``.
    * ``order_handler``: answers v1 order events (default: an
      ``"EGeneral:Unknown method"`` error). If it has an
      ``async run(server, *, task_status)`` method (e.g.
      :class:`~kraky_anyio.testing.engine.FakeMatchingEngine`),
      ``open_fake_kraken`` starts it in the server's task group.
    * ``snapshot_provider``: what a new v1 subscriber gets after its reply.
    * ``private_snapshot_provider``: what a new v1 private subscriber gets
      after its reply (after ``snapshot_provider``'s).
    * ``v2_snapshot_provider``: what a new v2 subscriber gets after its ack
      (see :data:`V2SnapshotProvider`).

    Collections are stored as ``frozenset``.
    """

    heartbeat_interval: float = 1.0
    status: str = "online"
    valid_tokens: Collection[str] | None = None
    pairs: Collection[str] | None = DEFAULT_PAIRS
    order_handler: OrderHandler | None = None
    snapshot_provider: SnapshotProvider | None = None
    private_snapshot_provider: PrivateSnapshotProvider | None = None
    v2_snapshot_provider: V2SnapshotProvider | None = None

    def __post_init__(self) -> None:
        interval = self.heartbeat_interval
        if isinstance(interval, bool) or not isinstance(interval, (int, float)):
            raise TypeError(f"heartbeat_interval must be a number, not {interval!r}")
        if not (interval > 0 and math.isfinite(interval)):
            raise ValueError(f"heartbeat_interval must be positive and finite, not {interval!r}")
        check_status(self.status)
        object.__setattr__(self, "valid_tokens", _strings("valid_tokens", self.valid_tokens))
        pairs = _strings("pairs", self.pairs)
        for pair in pairs or ():
            base, _, quote = pair.partition("/")
            if not base or not quote or "/" in quote:
                raise ValueError(f"pairs must be spelled BASE/QUOTE, not {pair!r}")
        object.__setattr__(self, "pairs", pairs)
        _callable("order_handler", self.order_handler)
        _callable("snapshot_provider", self.snapshot_provider)
        _callable("private_snapshot_provider", self.private_snapshot_provider)
        _callable("v2_snapshot_provider", self.v2_snapshot_provider)

    def replace(self, **changes: Any) -> FakeKrakenOptions:
        """A copy with ``changes`` applied and validated again. Raises
        ``TypeError`` for a name that is not an option."""
        return dataclasses.replace(self, **changes)


def make_options(options: FakeKrakenOptions | None, changes: dict[str, Any]) -> FakeKrakenOptions:
    """``options`` (default: all defaults) with keyword ``changes`` applied:
    how every entry point that takes ``**options`` builds its one object."""
    if options is not None and not isinstance(options, FakeKrakenOptions):
        raise TypeError(f"options must be a FakeKrakenOptions, not {options!r}")
    base = FakeKrakenOptions() if options is None else options
    return base.replace(**changes) if changes else base
