"""The suppression list in Redis: numbers (E.164) that receive nothing, with when, how and why."""

from __future__ import annotations

import json
from typing import Any

import redis

from workers.store.keys import OPTOUTS, available, text


class OptoutRecords:
    """The suppression list."""

    def __init__(self, r: redis.Redis):
        self.r = r

    def opt_out(self, number: str, now: float, via: str, detail: str = "") -> None:
        """Suppress every future message to `number`."""
        with available():
            self.r.hset(OPTOUTS, number, json.dumps({"since": now, "via": via, "detail": detail}))

    def opt_in(self, number: str) -> bool:
        """Lift the suppression of `number`; True if it was suppressed."""
        with available():
            return bool(self.r.hdel(OPTOUTS, number))

    def opted_out(self, numbers: list[str]) -> set[str]:
        """Which of `numbers` are suppressed."""
        if not numbers:
            return set()
        with available():
            flags = self.r.hmget(OPTOUTS, numbers)
        return {n for n, f in zip(numbers, flags, strict=True) if f is not None}

    def optouts(self) -> dict[str, Any]:
        """The whole suppression list."""
        with available():
            return {text(k): json.loads(v) for k, v in self.r.hgetall(OPTOUTS).items()}
