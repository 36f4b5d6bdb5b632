"""Reconnect timing, without I/O: exponential backoff with jitter, an attempt
budget over a rolling window, and spacing during maintenance.

All times are plain floats from the caller's clock (``anyio.current_time()``),
so the policy is tested without a loop.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass

# Seconds added to the budget and maintenance waits, so float rounding (or a
# clock with microsecond resolution) never wakes us just before the limit; a
# remaining wait under half of it counts as none, so a caller that sleeps and
# asks again never spins on a sub-resolution remainder.
_MARGIN = 1e-3


@dataclass(frozen=True)
class ReconnectPolicy:
    """How the supervisor spaces connection attempts.

    Kraken's advice: after a random drop, retry at once a few times
    (``immediate_retries``); then back off exponentially from ``base_delay`` up
    to ``max_delay``, each delay jittered to between half and all of its value;
    never more than ``budget`` attempts in any ``window`` seconds (Kraken bans an
    IP for 10 minutes after about 150 per 10 minutes); no faster than one per
    ``maintenance_interval`` seconds while Kraken reports ``maintenance``. The
    failure streak resets once a connection stayed up ``healthy_after`` seconds,
    so a server that accepts and drops at once is still backed off.
    """

    immediate_retries: int = 2
    base_delay: float = 1.0
    max_delay: float = 60.0
    budget: int = 150
    window: float = 600.0
    maintenance_interval: float = 5.0
    healthy_after: float = 10.0

    def __post_init__(self) -> None:
        for name in ("base_delay", "max_delay", "window", "maintenance_interval", "healthy_after"):
            if math.isnan(getattr(self, name)):
                raise ValueError(f"{name} must be a number, not NaN")
        if not math.isfinite(self.window):
            raise ValueError("window must be finite")
        if self.budget < 1 or self.window <= 0:
            raise ValueError("budget must be >= 1 and window > 0")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError("need 0 <= base_delay <= max_delay")
        if self.immediate_retries < 0 or self.maintenance_interval < 0 or self.healthy_after < 0:
            raise ValueError("immediate_retries, maintenance_interval, healthy_after must be >= 0")


class Backoff:
    """The state of one connection's reconnect schedule."""

    def __init__(self, policy: ReconnectPolicy | None = None, rng: random.Random | None = None):
        self.policy = policy or ReconnectPolicy()
        self._rng = rng or random.Random()
        self._attempts: deque[float] = deque()
        self._streak = 0
        self._last_attempt: float | None = None
        self._connected_at: float | None = None
        self._jitter = 0.0  # the backoff drawn for the current streak
        self._backoff_until = 0.0
        self.maintenance = False

    @property
    def streak(self) -> int:
        """Attempts since the last healthy connection."""
        return self._streak

    def delay(self, now: float) -> float:
        """Seconds to wait before the next attempt may start (0 for at once).

        Asking again later gives the remaining wait: the jitter is drawn once
        per attempt, so a caller may sleep and ask again until it gets 0.
        """
        p = self.policy
        self._expire(now)
        wait = self._backoff_until - now
        if len(self._attempts) >= p.budget:
            # The attempt that leaves the window next frees a slot; the margin
            # keeps float rounding from waking us an ulp before it leaves.
            wait = max(wait, self._attempts[-p.budget] + p.window - now + _MARGIN)
        if self.maintenance and self._last_attempt is not None:
            wait = max(wait, self._last_attempt + p.maintenance_interval - now + _MARGIN)
        return wait if wait >= _MARGIN / 2 else 0.0

    def attempt(self, now: float) -> None:
        """Record that an attempt starts now."""
        self._expire(now)
        self._attempts.append(now)
        self._last_attempt = now
        self._streak += 1
        p = self.policy
        self._jitter = 0.0
        if self._streak >= p.immediate_retries + 1:
            # The exponent is capped: 2**1024 would not fit a float.
            doublings = min(self._streak - p.immediate_retries - 1, 64)
            exp = min(p.max_delay, p.base_delay * 2.0**doublings)
            self._jitter = exp / 2 + self._rng.uniform(0, exp / 2)
        self._backoff_until = now + self._jitter

    def failed(self, now: float) -> None:
        """Record that the attempt failed now: the backoff counts from here."""
        self._backoff_until = now + self._jitter

    def connected(self, now: float) -> None:
        """Record that a socket opened now."""
        self._connected_at = now

    def disconnected(self, now: float) -> None:
        """Record that the socket closed; a long-lived one resets the streak."""
        if self._connected_at is not None and now - self._connected_at >= self.policy.healthy_after:
            self._streak = 0
            self._jitter = 0.0
        self._connected_at = None
        self._backoff_until = now + self._jitter

    def attempts_in_window(self, now: float) -> int:
        """How many attempts started within ``[now - window, now]``."""
        self._expire(now)
        return len(self._attempts)

    def _expire(self, now: float) -> None:
        horizon = now - self.policy.window
        # Strict: an attempt exactly `window` old still counts (closed window).
        while self._attempts and self._attempts[0] < horizon:
            self._attempts.popleft()
