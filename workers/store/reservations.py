"""Policy facts in Redis, checked and reserved atomically so concurrent workers cannot overshoot:
daily spend against the budget, per-recipient sliding windows, duplicate markers, cached prices."""

from __future__ import annotations

from decimal import Decimal

import redis

from workers.store.keys import (
    available,
    duplicate_key,
    maybe_text,
    price_key,
    recipient_rate_key,
    spend_key,
    text,
)

# Reserve ARGV[1] of the day's budget ARGV[2] (empty: no budget); 1 when it fits, 0 when it does not.
_RESERVE = """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
if ARGV[2] ~= '' and spent + tonumber(ARGV[1]) > tonumber(ARGV[2]) then
  return 0
end
redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], 172800)
return 1
"""

# Take a slot in the recipient's window (ARGV: now, per, count, message id); {1} or {0, oldest}.
_RATE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then
  return {1, ''}
end
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], n - tonumber(ARGV[3]), n - tonumber(ARGV[3]), 'WITHSCORES')
  return {0, oldest[2]}
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 60)
return {1, ''}
"""

# Delete KEYS[1] only while it holds ARGV[1] (its owner).
_RELEASE_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class ReservationRecords:
    """Spend, rates, duplicates and prices."""

    def __init__(self, r: redis.Redis):
        self.r = r
        self._reserve = r.register_script(_RESERVE)
        self._rate = r.register_script(_RATE)
        self._release_dup = r.register_script(_RELEASE_IF_OWNER)

    def spent(self, day: str) -> Decimal:
        """What `day` has committed so far."""
        with available():
            return Decimal(maybe_text(self.r.get(spend_key(day))) or "0")

    def reserve_spend(self, day: str, amount: Decimal, budget: Decimal | None) -> bool:
        """Add `amount` to the day's spend unless that would pass `budget` (atomic across workers)."""
        with available():
            return bool(self._reserve(keys=[spend_key(day)], args=[str(amount), "" if budget is None else str(budget)]))

    def adjust_spend(self, day: str, delta: Decimal) -> None:
        """Correct the day's spend (actual price minus estimate; a refund when a reserved send failed)."""
        if delta:
            with available():
                self.r.incrbyfloat(spend_key(day), float(delta))

    def recent_sends(self, number: str, now: float, per: float) -> list[float]:
        """Times of this recipient's sends within the last `per` seconds."""
        with available():
            found = self.r.zrangebyscore(recipient_rate_key(number), now - per, "+inf", withscores=True)
        return [float(pair[1]) for pair in found]

    def take_rate_slot(self, number: str, message_id: str, now: float, per: float, count: int) -> float | None:
        """Reserve a slot in the recipient's window: None when taken, else when the next slot opens."""
        with available():
            ok, oldest = self._rate(keys=[recipient_rate_key(number)], args=[now, per, count, message_id])
        return None if ok == 1 else float(oldest) + per

    def release_rate_slot(self, number: str, message_id: str) -> None:
        """Give back a slot taken for a message that did not go after all."""
        with available():
            self.r.zrem(recipient_rate_key(number), message_id)

    def is_duplicate(self, digest: str) -> bool:
        """Whether this recipient+body was sent within its window."""
        with available():
            return bool(self.r.exists(duplicate_key(digest)))

    def claim_duplicate(self, digest: str, window: float, message_id: str) -> bool:
        """Mark recipient+body as sent by `message_id` for `window` seconds; False when someone else just did."""
        with available():
            return bool(self.r.set(duplicate_key(digest), message_id, nx=True, ex=max(1, int(window))))

    def release_duplicate(self, digest: str, message_id: str) -> None:
        """Lift the marker `message_id` took, when it did not go after all (another message's stays)."""
        with available():
            self._release_dup(keys=[duplicate_key(digest)], args=[message_id])

    def cached_price(self, channel: str, country: str, encoding: str, parts: int) -> Decimal | None:
        """A cached estimate, or None."""
        with available():
            raw = self.r.get(price_key(channel, country, encoding, parts))
        return Decimal(text(raw)) if raw is not None else None

    def cache_price(self, channel: str, country: str, encoding: str, parts: int, price: Decimal, ttl: float) -> None:
        """Keep an estimate for `ttl` seconds."""
        with available():
            self.r.set(price_key(channel, country, encoding, parts), str(price), ex=max(1, int(ttl)))
