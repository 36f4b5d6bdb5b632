"""v2 cancel requests' ``params``: checked builders, no I/O.

``cancel_order`` (any mix of ``order_id``, ``cl_ord_id`` and ``order_userref``
lists), ``batch_cancel`` (2 to 50 orders), ``cancel_all`` and
``cancel_all_orders_after`` (Kraken's dead man's switch). Each returns the
``params`` without ``token``; a bad argument raises :class:`TypeError` or
:class:`ValueError` before anything is sent. A single id may be given as a
bare ``str`` (an ``int`` for ``order_userref``): it is sent as a one-item list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

from .. import order_values as v
from .order_fields import userref

__all__ = [
    "BATCH_CANCEL_SIZE",
    "MAX_CANCEL_AFTER",
    "batch_cancel",
    "cancel_all",
    "cancel_all_orders_after",
    "cancel_order",
]

#: How many orders one ``batch_cancel`` names (``orders`` and ``cl_ord_id`` together).
BATCH_CANCEL_SIZE: Final = (2, 50)
#: The largest ``cancel_all_orders_after`` timeout, in seconds (Kraken: < 86400).
MAX_CANCEL_AFTER: Final = 86399

_T = TypeVar("_T")


def _ids(name: str, value: object, one: type, check: Callable[[str, Any], _T]) -> list[_T]:
    """A bare ``one`` or a list/tuple of them, each checked; duplicates refused."""
    if isinstance(value, one) and not isinstance(value, bool):
        items: list[object] = [value]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise TypeError(
            f"{name} must be a {one.__name__} or a list of them, got {type(value).__name__}"
        )
    out = [check(f"{name}[{i}]", item) for i, item in enumerate(items)]
    if len(set(out)) != len(out):
        raise ValueError(f"{name} names an order twice")
    return out


def _order_ids(name: str, value: object) -> list[str]:
    return _ids(name, value, str, v.nonempty_str)


def _userrefs(name: str, value: object) -> list[int]:
    return _ids(name, value, int, userref)


def cancel_order(
    *,
    order_id: str | Iterable[str] | None = None,
    cl_ord_id: str | Iterable[str] | None = None,
    order_userref: int | Iterable[int] | None = None,
) -> dict[str, Any]:
    """``cancel_order``'s ``params``: at least one order named, by any mix of
    the three lists. Kraken answers once per order named (an
    ``order_userref`` may match several orders)."""
    params: dict[str, Any] = {}
    if order_id is not None:
        params["order_id"] = _order_ids("order_id", order_id)
    if cl_ord_id is not None:
        params["cl_ord_id"] = _order_ids("cl_ord_id", cl_ord_id)
    if order_userref is not None:
        params["order_userref"] = _userrefs("order_userref", order_userref)
    if not any(params.values()):
        raise TypeError("cancel_order needs order_id, cl_ord_id or order_userref")
    return {k: ids for k, ids in params.items() if ids}


def batch_cancel(
    *,
    orders: Iterable[str] | None = None,
    cl_ord_id: Iterable[str] | None = None,
) -> dict[str, Any]:
    """``batch_cancel``'s ``params``: ``orders`` (order ids) and/or
    ``cl_ord_id``, :data:`BATCH_CANCEL_SIZE` in all."""
    params: dict[str, Any] = {}
    if orders is not None:
        params["orders"] = _order_ids("orders", orders)
    if cl_ord_id is not None:
        params["cl_ord_id"] = _order_ids("cl_ord_id", cl_ord_id)
    count = sum(len(ids) for ids in params.values())
    low, high = BATCH_CANCEL_SIZE
    if not low <= count <= high:
        raise ValueError(
            f"batch_cancel names {low} to {high} orders (orders and cl_ord_id), got {count}"
            + (": use cancel_order for one" if count == 1 else "")
        )
    return {k: ids for k, ids in params.items() if ids}


def cancel_all() -> dict[str, Any]:
    """``cancel_all``'s ``params``: none besides the token."""
    return {}


def cancel_all_orders_after(timeout: object) -> dict[str, Any]:
    """``cancel_all_orders_after``'s ``params``: ``timeout`` whole seconds
    (an ``int``, 0 disarms, at most :data:`MAX_CANCEL_AFTER`)."""
    if isinstance(timeout, bool) or not isinstance(timeout, int):
        raise TypeError(f"timeout must be an int (whole seconds), got {type(timeout).__name__}")
    if not 0 <= timeout <= MAX_CANCEL_AFTER:
        raise ValueError(f"timeout must be 0 (disarm) to {MAX_CANCEL_AFTER} seconds, got {timeout}")
    return {"timeout": timeout}
