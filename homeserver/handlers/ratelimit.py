"""Leaky-bucket rate limiting per (action, key), answering 429 M_LIMIT_EXCEEDED.

A bucket holds up to ``burst`` actions and drains at ``per_second``. Buckets live in
process memory: a restart forgives everyone, which is acceptable for abuse control.
"""

from __future__ import annotations

import math

from homeserver.clock import Clock
from homeserver.http.errors import limit_exceeded

_MAX_BUCKETS = 100_000


class RateLimiter:
    def __init__(self, clock: Clock):
        self._clock = clock
        # (action, key) -> (level, last_update)
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}

    def _level(self, bucket: tuple[str, str], per_second: float, now: float) -> float:
        level, updated = self._buckets.get(bucket, (0.0, now))
        return max(0.0, level - (now - updated) * per_second)

    def check(self, action: str, key: str, per_second: float, burst: int, record: bool = True) -> None:
        """Raise 429 if the bucket is full; otherwise count the action (when ``record``)."""
        if per_second <= 0:
            return
        now = self._clock.time()
        bucket = (action, key)
        level = self._level(bucket, per_second, now)
        if level + 1 > burst:
            wait = (level + 1 - burst) / per_second
            raise limit_exceeded(max(1, math.ceil(wait * 1000)))
        if record:
            self._remember(bucket, level + 1, now)

    def record(self, action: str, key: str, per_second: float) -> None:
        """Count an action after the fact (a failed login) without refusing it."""
        if per_second <= 0:
            return
        now = self._clock.time()
        bucket = (action, key)
        self._remember(bucket, self._level(bucket, per_second, now) + 1, now)

    def _remember(self, bucket: tuple[str, str], level: float, now: float) -> None:
        if len(self._buckets) >= _MAX_BUCKETS and bucket not in self._buckets:
            # Forget buckets that have long drained rather than grow without bound.
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 3600}
        self._buckets[bucket] = (level, now)
