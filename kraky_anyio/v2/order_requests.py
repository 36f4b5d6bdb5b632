"""v2 order requests on the wire: built once, matched to their responses,
and their loss turned into an unknown outcome. No I/O.

:func:`order_request` builds the :class:`~kraky_anyio.requests.Request` of an
order method: never replayed, never re-sent (the shell writes a request
once), with the connection's token, or the writer's deferred one, in its
``params``. What it waits for is its :class:`OrderExpect`: one response, or
for ``cancel_order`` one per order named.

``cancel_order`` settling (:class:`OrderMatcher`), deterministic:

* each ``order_id``, ``cl_ord_id`` and ``order_userref`` named is one *part*;
  the request completes when every part has an answer;
* a response naming an open part (``result.order_id``/``cl_ord_id``/
  ``order_userref``, or the same at the top level of an error) answers it;
* a response naming an order that is not a part (Kraken's ``order_id`` of an
  order cancelled by ``cl_ord_id``/``order_userref``) answers the first open
  ``cl_ord_id``/``order_userref`` part; one naming nothing (a success, or an
  ``EOrder:`` error) answers the first open part;
* an error naming no order that is not ``EOrder:`` (``EGeneral:``,
  ``ESession:``, ``EAPI:``...) is about the whole request: it answers every
  open part, so the request settles at once;
* an ``order_userref`` may match several orders: its part is answered by the
  first response; later ones arriving before the request completes are kept
  in its replies, those arriving after it reach message consumers only (they
  count as ``late_replies``): reconcile such cancels from ``executions``;
* a second response for a part already answered is a duplicate: counted
  (``duplicate_replies``), logged, and left out of the replies.

A request written on a socket lost before its last response fails with
:class:`~kraky_anyio.errors.OrderOutcomeUnknownError` carrying the
``cl_ord_id`` values it named (:func:`lost_error`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..errors import OrderOutcomeUnknownError
from ..requests import DEFERRED_TOKEN, Request
from ..stats import Stats
from .messages import Response
from .request_frames import envelope

__all__ = ["ORDER_METHODS", "OrderExpect", "OrderMatcher", "expect", "lost_error", "order_request"]

log = logging.getLogger("kraky_anyio")

#: Every v2 order method: never replayed, never re-sent; a lost response is
#: an unknown outcome.
ORDER_METHODS: Final = frozenset(
    {
        "add_order",
        "amend_order",
        "edit_order",
        "cancel_order",
        "cancel_all",
        "cancel_all_orders_after",
        "batch_add",
        "batch_cancel",
    }
)

_PART_KEYS: Final = ("order_id", "cl_ord_id", "order_userref")

Part = tuple[str, "str | int"]


@dataclass(frozen=True)
class OrderExpect:
    """What an order request waits for, and what it is about.

    ``parts``: ``cancel_order``'s named orders, one response each (empty: one
    response). ``symbol``: the pair it acts on, if the request names one.
    ``cl_ord_ids``: the client order ids it names (carried by an
    outcome-unknown error). ``order_ids``: the Kraken order ids it names.
    """

    parts: tuple[Part, ...] = ()
    symbol: str | None = None
    cl_ord_ids: tuple[str, ...] = ()
    order_ids: tuple[str, ...] = ()


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str)]
    return []


def expect(method: str, params: Mapping[str, Any]) -> OrderExpect:
    """The :class:`OrderExpect` of ``method`` with checked ``params``."""
    orders = params.get("orders")
    entries = [o for o in orders if isinstance(o, Mapping)] if isinstance(orders, list) else []
    cl_ids = _strings(params.get("cl_ord_id"))
    cl_ids += [o["cl_ord_id"] for o in entries if isinstance(o.get("cl_ord_id"), str)]
    order_ids = _strings(params.get("order_id"))
    if method == "batch_cancel":
        order_ids += _strings(orders)
    parts: tuple[Part, ...] = ()
    if method == "cancel_order":
        parts = tuple(
            (key, value)
            for key in _PART_KEYS
            for value in params.get(key, ())
            if isinstance(value, str | int)
        )
    symbol = params.get("symbol")
    return OrderExpect(
        parts, symbol if isinstance(symbol, str) else None, tuple(cl_ids), tuple(order_ids)
    )


def order_request(
    method: str, params: dict[str, Any], expected: OrderExpect, req_id: int
) -> Request:
    """The request of an order method: ``params`` (token included, maybe
    :data:`~kraky_anyio.requests.DEFERRED_TOKEN`) sent once under ``req_id``."""
    slot = params if params.get("token") == DEFERRED_TOKEN else None
    message = envelope(method, params, req_id)
    return Request(
        req_id, method, method, message, 1, list(expected.parts), expected, token_slot=slot
    )


# -- matching ------------------------------------------------------------------------

#: Settled userref cancels remembered to recognise their later responses.
_USERREF_MEMORY: Final = 256
_ALL: Final = object()  # the response answers every open part
_EXTRA: Final = object()  # one more order matched by an answered order_userref


def _named(resp: Response) -> dict[str, Any]:
    result = resp.result if isinstance(resp.result, dict) else {}
    top: dict[str, object] = {
        "order_id": resp.order_id,
        "cl_ord_id": resp.cl_ord_id,
        "order_userref": resp.order_userref,
    }
    out: dict[str, Any] = {}
    for key in _PART_KEYS:
        value = result.get(key)
        value = top[key] if value is None else value
        if isinstance(value, str | int) and not isinstance(value, bool):
            out[key] = value
    return out


def _which(req: Request, resp: Response) -> Any:
    """The part ``resp`` answers, :data:`_ALL`, :data:`_EXTRA`, or None (a duplicate)."""
    named = _named(resp)
    parts = set(req.parts)
    open_parts = [p for p in req.parts if p not in req.answered]
    for key, value in named.items():
        if (key, value) in open_parts:
            return (key, value)
    ref = named.get("order_userref")
    if ref is not None and ("order_userref", ref) in parts:
        return _EXTRA
    if any(item in parts for item in named.items()):
        return None  # names a part already answered: a duplicate
    if not named and resp.success is False and not (resp.error or "").startswith("EOrder:"):
        return _ALL
    if "order_id" in named:
        open_parts = [p for p in open_parts if p[0] != "order_id"]
    return open_parts[0] if open_parts else None


class OrderMatcher:
    """Matches responses to order requests for one protocol object, and
    remembers the recently settled ``cancel_order`` requests that named an
    ``order_userref`` (their later responses are recognised, not unknown)."""

    def __init__(self, stats: Stats) -> None:
        self._stats = stats
        self._userref_cancels: OrderedDict[int, None] = OrderedDict()

    def answer(self, req: Request, resp: Response) -> bool:
        """Record ``resp`` for ``req``, a request other than a subscription's
        (a ``cancel_order``'s by the part it answers, see the module text).
        False for a duplicate, which is counted, logged and not recorded."""
        if not req.parts:
            req.replies.append(resp)
            return True
        part = _which(req, resp)
        if part is None:
            self._stats.duplicate_replies += 1
            log.warning("req_id %r: a response for an order already answered", req.reqid)
            return False
        if part is _ALL:
            req.answered.update(req.parts)
        elif part is not _EXTRA:
            req.answered.add(part)
        req.replies.append(resp)
        if req.complete and any(key == "order_userref" for key, _ in req.parts):
            self._userref_cancels[req.reqid] = None
            while len(self._userref_cancels) > _USERREF_MEMORY:
                self._userref_cancels.popitem(last=False)
        return True

    def late(self, resp: Response) -> bool:
        """True if ``resp`` is one more order cancelled by the ``order_userref``
        of a ``cancel_order`` that has already returned."""
        return resp.method == "cancel_order" and resp.req_id in self._userref_cancels


def lost_error(req: Request, why: str) -> OrderOutcomeUnknownError | None:
    """The error of an order request whose socket went before its last
    response (None for any other request)."""
    if req.event not in ORDER_METHODS:
        return None
    expected = req.key
    if not isinstance(expected, OrderExpect):  # sent with request(): read its params
        params = req.message.get("params")
        expected = expect(req.event, params if isinstance(params, Mapping) else {})
    return OrderOutcomeUnknownError(
        f"{req.event} (req_id {req.reqid}) was sent but {why} before its response: "
        "its outcome is unknown and it will not be re-sent; reconcile from executions"
        + (f" by cl_ord_id {', '.join(expected.cl_ord_ids)}" if expected.cl_ord_ids else ""),
        req.replies,
        cl_ord_ids=expected.cl_ord_ids,
    )
