"""Typed results of the v2 order methods, read from Kraken's responses (no I/O).

Each result is a frozen dataclass with Kraken's field names (``order_id``,
``cl_ord_id``, ...; ``cancel_all_orders_after``'s camelCase
``currentTime``/``triggerTime`` become ``current_time``/``trigger_time``) and
keeps the :class:`~kraky_anyio.v2.messages.Response` it was read from in
``response`` (``time_in``, ``time_out``, ...). ``warnings`` joins the
response's and the result's warnings.

A successful response whose ``result`` lacks a field the method always
returns (an ``order_id`` that is not a string, a count that is not an int)
raises :class:`~kraky_anyio.v2.messages.MessageError`: the request was
accepted, but its answer cannot be read (reconcile from ``executions``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from ..redaction import shorten
from .messages import MessageError, Response

__all__ = [
    "AddOrderResult",
    "AmendResult",
    "BatchAddResult",
    "BatchCancelResult",
    "CancelAfterResult",
    "CancelAllResult",
    "CancelResult",
    "EditResult",
    "add_result",
    "amend_result",
    "batch_add_result",
    "batch_cancel_result",
    "cancel_after_result",
    "cancel_all_result",
    "cancel_results",
    "edit_result",
]

_T = TypeVar("_T")


@dataclass(frozen=True)
class AddOrderResult:
    """An order placed (``add_order``, one entry of ``batch_add``). With
    ``validate=True`` Kraken returns an empty ``order_id``."""

    order_id: str
    cl_ord_id: str | None = None
    order_userref: int | None = None
    warnings: tuple[str, ...] = ()
    response: Response | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class AmendResult:
    """An order amended in place (ids unchanged, queue priority kept where possible)."""

    amend_id: str
    order_id: str | None = None
    cl_ord_id: str | None = None
    warnings: tuple[str, ...] = ()
    response: Response | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class EditResult:
    """An order edited: cancelled and replaced by ``order_id``."""

    order_id: str
    original_order_id: str | None = None
    warnings: tuple[str, ...] = ()
    response: Response | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class CancelResult:
    """One order cancelled (``cancel_order`` returns one per order)."""

    order_id: str | None = None
    cl_ord_id: str | None = None
    warnings: tuple[str, ...] = ()
    response: Response | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class CancelAllResult:
    """``cancel_all``: how many orders were cancelled."""

    count: int
    warnings: tuple[str, ...] = ()
    response: Response | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class CancelAfterResult:
    """``cancel_all_orders_after``: Kraken's ``currentTime`` and ``triggerTime``
    (RFC 3339; ``trigger_time`` is ``"0"`` or absent once disarmed)."""

    current_time: str | None
    trigger_time: str | None
    warnings: tuple[str, ...] = ()
    response: Response | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class BatchAddResult(Sequence[AddOrderResult]):
    """``batch_add``: one :class:`AddOrderResult` per order, in request order
    (a sequence: index it, iterate it, ``len()`` it)."""

    orders: tuple[AddOrderResult, ...]
    warnings: tuple[str, ...] = ()
    response: Response | None = field(default=None, repr=False, compare=False)

    @overload
    def __getitem__(self, index: int) -> AddOrderResult: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[AddOrderResult]: ...
    def __getitem__(self, index: int | slice) -> AddOrderResult | Sequence[AddOrderResult]:
        return self.orders[index]

    def __len__(self) -> int:
        return len(self.orders)

    def __iter__(self) -> Iterator[AddOrderResult]:
        return iter(self.orders)


@dataclass(frozen=True)
class BatchCancelResult:
    """``batch_cancel``: how many orders were cancelled (Kraken's top-level
    ``orders_cancelled``, or the documented ``result.count``)."""

    count: int
    warnings: tuple[str, ...] = ()
    response: Response | None = field(default=None, repr=False, compare=False)


# -- reading responses -------------------------------------------------------------


def _result(resp: Response) -> dict[str, Any]:
    result = resp.result
    if result is None:
        return {}
    if not isinstance(result, dict):
        raise MessageError(f"{resp.method}: result must be an object, got {shorten(result)}")
    return result


def _get(resp: Response, result: dict[str, Any], key: str, kind: type[_T]) -> _T | None:
    value = result.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise MessageError(f"{resp.method}: result.{key} must be a {kind.__name__}: {value!r:.80}")
    return value


def _need(resp: Response, result: dict[str, Any], key: str, kind: type[_T]) -> _T:
    value = _get(resp, result, key, kind)
    if value is None:
        raise MessageError(f"{resp.method}: the result has no {key}: {shorten(result)}")
    return value


def _warnings(resp: Response, result: dict[str, Any]) -> tuple[str, ...]:
    inner = result.get("warnings")
    more = [str(w) for w in inner] if isinstance(inner, list) else []
    return (*(resp.warnings or ()), *more)


def _added(resp: Response, result: dict[str, Any]) -> AddOrderResult:
    return AddOrderResult(
        _need(resp, result, "order_id", str),
        _get(resp, result, "cl_ord_id", str),
        _get(resp, result, "order_userref", int),
        _warnings(resp, result),
        resp,
    )


def add_result(resp: Response) -> AddOrderResult:
    """``add_order``'s result."""
    return _added(resp, _result(resp))


def batch_add_result(resp: Response) -> BatchAddResult:
    """``batch_add``'s result: ``result`` is a list of per-order results."""
    if not isinstance(resp.result, list):
        raise MessageError(f"batch_add: result must be a list, got {shorten(resp.result)}")
    orders = []
    for item in resp.result:
        if not isinstance(item, dict):
            raise MessageError(f"batch_add: each result must be an object, got {item!r:.80}")
        orders.append(_added(resp, item))
    return BatchAddResult(tuple(orders), tuple(resp.warnings or ()), resp)


def amend_result(resp: Response) -> AmendResult:
    """``amend_order``'s result."""
    result = _result(resp)
    return AmendResult(
        _need(resp, result, "amend_id", str),
        _get(resp, result, "order_id", str),
        _get(resp, result, "cl_ord_id", str),
        _warnings(resp, result),
        resp,
    )


def edit_result(resp: Response) -> EditResult:
    """``edit_order``'s result."""
    result = _result(resp)
    return EditResult(
        _need(resp, result, "order_id", str),
        _get(resp, result, "original_order_id", str),
        _warnings(resp, result),
        resp,
    )


def cancel_results(responses: Sequence[Response]) -> list[CancelResult]:
    """``cancel_order``'s results: one per response, in arrival order."""
    out = []
    for resp in responses:
        result = _result(resp)
        out.append(
            CancelResult(
                _get(resp, result, "order_id", str) or resp.order_id,
                _get(resp, result, "cl_ord_id", str) or resp.cl_ord_id,
                _warnings(resp, result),
                resp,
            )
        )
    return out


def cancel_all_result(resp: Response) -> CancelAllResult:
    """``cancel_all``'s result."""
    result = _result(resp)
    return CancelAllResult(_need(resp, result, "count", int), _warnings(resp, result), resp)


def cancel_after_result(resp: Response) -> CancelAfterResult:
    """``cancel_all_orders_after``'s result (camelCase on the wire)."""
    result = _result(resp)
    return CancelAfterResult(
        _get(resp, result, "currentTime", str),
        _get(resp, result, "triggerTime", str),
        _warnings(resp, result),
        resp,
    )


def batch_cancel_result(resp: Response) -> BatchCancelResult:
    """``batch_cancel``'s result: the real top-level ``orders_cancelled``
    (2024), else the documented ``result.count``."""
    result = _result(resp)
    count = resp.orders_cancelled
    if count is None:
        count = _need(resp, result, "count", int)
    return BatchCancelResult(count, _warnings(resp, result), resp)
