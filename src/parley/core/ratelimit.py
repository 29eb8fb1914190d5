"""Token buckets for per-connection rate limits (sans-I/O: the clock is passed in)."""

from __future__ import annotations

from ..config import RateLimit


class TokenBucket:
    """Allows a burst of ``limit.count`` events, refilled evenly over ``limit.per`` seconds."""

    __slots__ = ("capacity", "rate", "tokens", "stamp")

    def __init__(self, limit: RateLimit, now: float) -> None:
        self.capacity = float(limit.count)
        self.rate = limit.count / limit.per
        self.tokens = self.capacity
        self.stamp = now

    def allow(self, now: float) -> bool:
        """Take one token if there is one."""
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
            self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def retry_after(self) -> float:
        """Seconds until the next token."""
        return max(0.0, (1.0 - self.tokens) / self.rate)
