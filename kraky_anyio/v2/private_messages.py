"""The private v2 channels, ``executions`` and ``balances``, as typed messages.

Decoded by :func:`kraky_anyio.v2.messages.decode` in the same single pass as
the public channels (these classes are members of its tagged union), with the
same rules: Kraken's wire names, every price, quantity, cost and fee a
:class:`~decimal.Decimal` from the number's text (exponent form included:
``1e-05`` is ``Decimal("0.00001")`` in value), unknown fields ignored, a field
Kraken leaves out for an ``exec_type`` None. A frame whose known fields have
the wrong type, or with no ``sequence``, is a
:class:`~kraky_anyio.v2.messages.MessageError` (the connection counts and logs
it, and the next message's sequence shows the gap).

Both messages carry Kraken's top-level ``sequence`` (from 1 on the snapshot,
per socket and channel); the connection checks it
(:mod:`kraky_anyio.v2.private_feeds`).

``executions`` entries are :class:`Execution` reports (``exec_type`` set:
``new``, ``trade``, ``filled``, ``canceled``, ``expired``, ``amended``,
``restated``, ``status``, ``pending_new``) or, with ``ratecounter=True``,
rate-counter reports: an entry with ``ratecount`` (the pair's current order
rate count) and ``symbol``, no ``exec_type``. An entry with neither is
malformed.

``balances`` entries are :class:`Balance` objects: a snapshot entry has
``asset``, ``asset_class``, ``balance`` and ``wallets``; an update entry is a
ledger movement (``ledger_id``, ``ref_id``, ``timestamp``, ``type``,
``category``, ``asset``, ``asset_class``, ``wallet_type``, ``wallet_id``,
``amount``, ``fee``, ``balance``). One class holds both shapes (Kraken's
entries carry no tag to tell them apart); the fields a shape lacks are None.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

import msgspec

__all__ = [
    "Balance",
    "BalancesMessage",
    "Execution",
    "ExecutionTriggers",
    "ExecutionsMessage",
    "Fee",
    "Wallet",
]


class _Entry(msgspec.Struct, kw_only=True, gc=False):
    """Base of the private entries: no GC tracking (decoded data holds no cycles)."""


class Fee(_Entry):
    """One fee of an execution: ``qty`` of ``asset``."""

    asset: str
    qty: Decimal


class ExecutionTriggers(_Entry):
    """The trigger of a stop, take-profit or trailing order, as reported."""

    reference: str | None = None  # "index" or "last"
    price: Decimal | None = None
    price_type: str | None = None  # "static", "pct", "quote"
    actual_price: Decimal | None = None
    peak_price: Decimal | None = None
    last_price: Decimal | None = None
    status: str | None = None  # "triggered", "untriggered"
    timestamp: str | None = None


class Execution(_Entry):
    """One ``executions`` entry: an execution report, or a rate-counter report
    (``ratecount`` and ``symbol`` only). Which fields Kraken fills depends on
    ``exec_type``; the others are None."""

    exec_type: str | None = None
    order_id: str | None = None
    cl_ord_id: str | None = None
    order_userref: int | None = None
    symbol: str | None = None
    side: str | None = None
    order_type: str | None = None
    order_qty: Decimal | None = None
    display_qty: Decimal | None = None
    cash_order_qty: Decimal | None = None
    limit_price: Decimal | None = None
    limit_price_type: str | None = None
    triggers: ExecutionTriggers | None = None
    order_status: str | None = None
    cum_qty: Decimal | None = None
    cum_cost: Decimal | None = None
    avg_price: Decimal | None = None
    time_in_force: str | None = None
    effective_time: str | None = None
    expire_time: str | None = None
    post_only: bool | None = None
    reduce_only: bool | None = None
    margin: bool | None = None
    margin_borrow: bool | None = None
    liquidated: bool | None = None
    position_status: str | None = None
    amended: bool | None = None
    exec_id: str | None = None
    trade_id: int | None = None
    last_qty: Decimal | None = None
    last_price: Decimal | None = None
    cost: Decimal | None = None
    liquidity_ind: str | None = None  # "m" maker, "t" taker
    fees: list[Fee] | None = None
    fee_usd_equiv: Decimal | None = None
    fee_ccy_pref: str | None = None
    reason: str | None = None
    timestamp: str | None = None
    #: A rate-counter report (``ratecounter=True``): the count on ``symbol``.
    ratecount: int | None = None

    def __post_init__(self) -> None:
        # Raised here, msgspec reports it as a ValidationError at this entry.
        if self.exec_type is None and self.ratecount is None:
            raise ValueError("an executions entry needs exec_type or ratecount")


class Wallet(_Entry):
    """One wallet of a ``balances`` snapshot entry (``type``: ``spot``, ``earn``...)."""

    type: str
    id: str
    balance: Decimal


class Balance(_Entry):
    """One ``balances`` entry: a snapshot balance or a ledger update (see the
    module text); ``balance`` is the asset's balance after it."""

    asset: str
    balance: Decimal
    asset_class: str | None = None
    wallets: list[Wallet] | None = None
    ledger_id: str | None = None
    ref_id: str | None = None
    timestamp: str | None = None
    type: str | None = None
    subtype: str | None = None
    category: str | None = None
    wallet_type: str | None = None
    wallet_id: str | None = None
    amount: Decimal | None = None
    fee: Decimal | None = None


class _Private(msgspec.Struct, kw_only=True, tag_field="channel"):
    """Base of the private channel messages (tagged by ``channel`` like the public ones)."""

    channel: ClassVar[str]


class ExecutionsMessage(_Private, tag="executions"):
    """An ``executions`` snapshot or update; ``sequence`` counts from 1 per socket."""

    channel: ClassVar[str] = "executions"
    type: str
    data: list[Execution]
    sequence: int


class BalancesMessage(_Private, tag="balances"):
    """A ``balances`` snapshot or update; ``sequence`` counts from 1 per socket."""

    channel: ClassVar[str] = "balances"
    type: str
    data: list[Balance]
    sequence: int
