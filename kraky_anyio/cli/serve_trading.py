"""``kraky-anyio serve --trading``: the simulated exchange with its matching
engine open for v1 and v2 trading, one test token, Kraken's rate counter.

:func:`trading_setup` builds what :func:`~kraky_anyio.cli.commands.serve`
runs: a :class:`~kraky_anyio.testing.engine.FakeMatchingEngine` whose wall
clock starts now (so ``deadline``/``expire_time`` written from the real
clock mean what they say), the server options that accept only the test
token, and the lines that tell a user how to connect.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..v2 import rate_rules

if TYPE_CHECKING:
    from ..testing.engine import FakeMatchingEngine
    from ..testing.market import MarketSimulator

__all__ = ["DEFAULT_TOKEN", "instructions", "trading_setup"]

#: The token ``serve --trading`` accepts unless ``--token`` says otherwise.
DEFAULT_TOKEN = "kraky-test-token"
#: What every account starts with: plenty of each quote and base asset.
_QUOTE_BALANCE, _BASE_BALANCE = Decimal(1_000_000), Decimal(1_000)


def _balances(symbols: list[str]) -> dict[str, Decimal]:
    balances: dict[str, Decimal] = {}
    for symbol in symbols:
        base, _, quote = symbol.partition("/")
        balances.setdefault(base, _BASE_BALANCE)
        balances[quote] = _QUOTE_BALANCE
    return balances


def trading_setup(
    args: argparse.Namespace, sim: MarketSimulator, reference: dict[str, Any]
) -> tuple[FakeMatchingEngine, dict[str, Any]]:
    """The engine and the extra server options for ``--trading``:
    ``reference`` prices by pair, ``args.token`` the only token accepted,
    ``args.tier`` the rate counter's tier."""
    from ..testing.engine import FakeMatchingEngine

    engine = FakeMatchingEngine(
        seed=args.seed,
        reference_prices=reference,
        start_time=datetime.now(timezone.utc),
        tier=args.tier,
        balances=_balances(list(sim.symbols)),
    )
    return engine, {"valid_tokens": {args.token}}


def instructions(args: argparse.Namespace, v2_url: str) -> str:
    """How to trade against the server (for stderr; the token is a test
    token, not a secret)."""
    tier = rate_rules.tier(args.tier)
    return (
        f"trading: orders (v1 and v2) and private channels accept the token "
        f"{args.token!r} only; rate counter per pair: tier {tier.name}, ceiling "
        f"{tier.ceiling}, decaying {tier.decay}/s; every account starts with "
        f"{_BASE_BALANCE} of each base asset and {_QUOTE_BALANCE} of each quote asset. "
        f"Connect: kraky_anyio.v2.open_kraken({v2_url!r}, token={args.token!r}) "
        f"and send params.token with each order"
    )
