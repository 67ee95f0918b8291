"""A sliding-window limiter of failed authentications.

Each key (a client address such as ``client:10.0.0.7`` or an API key prefix
such as ``prefix:3fa9c01b2e4d``) keeps the times of its recent failures.
When ``max_failures`` fall within ``window_seconds``, the key is blocked for
``lockout_seconds``: every attempt under it is rejected, including one with
the right credential, so that guessing cannot continue at full speed.

The state lives in the memory of one process. Several server processes or
replicas each count on their own, so an attacker spread over ``n`` of them
gets up to ``n`` times the attempts. Put a shared limiter in front (a
reverse proxy or an API gateway) when that matters. Blocking by key prefix
also means that someone who knows a prefix can lock its legitimate owner
out for the cool-down; prefixes are not secret, so keep the cool-down short.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Keys past this count are pruned of expired entries, then cut oldest first,
# so a flood of distinct addresses costs bounded memory.
_MAX_KEYS = 100_000


@dataclass
class _Block:
    until: float
    reported: bool = False


class FailureLimiter:
    """Counts failures per key in a sliding window and blocks keys over the limit.

    ``clock`` returns seconds on any monotonic scale; tests pass a function
    they move by hand instead of sleeping.
    """

    def __init__(
        self,
        max_failures: int = 5,
        window_seconds: float = 60.0,
        lockout_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1 or window_seconds <= 0 or lockout_seconds <= 0:
            raise ValueError(
                "FailureLimiter needs max_failures >= 1 and positive window and lockout "
                f"seconds; got {max_failures}, {window_seconds}, {lockout_seconds}."
            )
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.lockout_seconds = lockout_seconds
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._blocks: dict[str, _Block] = {}
        self._lock = threading.Lock()

    def retry_after(self, keys: Iterable[str]) -> float | None:
        """Return the seconds left on the longest block among ``keys``, or None."""
        if not self._blocks:
            return None
        now = self._clock()
        longest: float | None = None
        for key in keys:
            block = self._blocks.get(key)
            if block is not None and block.until > now:
                left = block.until - now
                longest = left if longest is None else max(longest, left)
        return longest

    def first_report(self, keys: Iterable[str]) -> bool:
        """Return True once per block: whether a rejection under it is the first reported."""
        with self._lock:
            fresh = False
            for key in keys:
                block = self._blocks.get(key)
                if block is not None and not block.reported:
                    block.reported = True
                    fresh = True
            return fresh

    def record_failure(self, keys: Iterable[str]) -> bool:
        """Count one failure for each key; return True when it blocks one of them."""
        now = self._clock()
        blocked = False
        with self._lock:
            if len(self._failures) > _MAX_KEYS:
                self._prune(now)
            for key in keys:
                times = self._failures.setdefault(key, deque(maxlen=self.max_failures))
                times.append(now)
                in_window = times[0] > now - self.window_seconds
                if len(times) == self.max_failures and in_window:
                    self._blocks[key] = _Block(until=now + self.lockout_seconds)
                    # A block starts a fresh count, so the next failure after it
                    # ends does not block again at once.
                    del self._failures[key]
                    blocked = True
        return blocked

    def _prune(self, now: float) -> None:
        horizon = now - self.window_seconds
        self._failures = {k: v for k, v in self._failures.items() if v and v[-1] > horizon}
        self._blocks = {k: v for k, v in self._blocks.items() if v.until > now}
        excess = len(self._failures) - _MAX_KEYS // 2
        if excess > 0:
            oldest = sorted(self._failures, key=lambda k: self._failures[k][-1])[:excess]
            for key in oldest:
                del self._failures[key]
