"""Policy facts in Redis, checked and reserved atomically so concurrent workers cannot overshoot:
daily spend against the budget, per-recipient sliding windows, duplicate markers, cached prices.

A batch of admissions reads its facts (these, plus the opt-outs and the balance flag) in one pipelined round
trip and reserves in one Lua step that checks every claim again; nothing here decides a policy.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import redis

from workers.core.decisions import Standing
from workers.core.policies import RateLimit
from workers.store.keys import (
    BALANCE_LOW,
    OPTOUTS,
    available,
    duplicate_key,
    maybe_text,
    price_key,
    recipient_rate_key,
    spend_key,
    text,
)

# Reserve a batch of approvals in order, each all or nothing, up to the first that no longer fits; answers how
# many were taken. A message's own marker or slot (a killed run's, retried) is no obstacle.
# KEYS[1]: the day's spend; then per claim its duplicate marker and its recipient's window.
# ARGV[1]: now; then per claim: message id, amount, budget ('': none), seconds to keep the duplicate marker
# ('': none), the window's count and period in seconds ('': no window).
_RESERVE = """
-- Money compared in millionths: the spend is a float sum (INCRBYFLOAT), so 0.1 + 0.2 must not pass a budget of 0.3.
local function micros(amount)
  return math.floor(tonumber(amount) * 1000000 + 0.5)
end
local now = tonumber(ARGV[1])
local claims = (#KEYS - 1) / 2
for i = 0, claims - 1 do
  local dup, window = KEYS[2 + 2 * i], KEYS[3 + 2 * i]
  local a = 1 + 6 * i
  local id, amount, budget = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local ttl, count, per = ARGV[a + 4], ARGV[a + 5], ARGV[a + 6]
  if ttl ~= '' and (redis.call('GET', dup) or id) ~= id then
    return i
  end
  if per ~= '' then
    redis.call('ZREMRANGEBYSCORE', window, '-inf', now - tonumber(per))
    if not redis.call('ZSCORE', window, id) and redis.call('ZCARD', window) >= tonumber(count) then
      return i
    end
  end
  if budget ~= '' and micros(redis.call('GET', KEYS[1]) or '0') + micros(amount) > micros(budget) then
    return i
  end
  if ttl ~= '' then
    redis.call('SET', dup, id, 'EX', ttl)
  end
  if per ~= '' then
    redis.call('ZADD', window, now, id)
    redis.call('EXPIRE', window, math.ceil(tonumber(per)) + 60)
  end
  redis.call('INCRBYFLOAT', KEYS[1], amount)
  redis.call('EXPIRE', KEYS[1], 172800)
end
return claims
"""

# Give back what claims took. Per claim, KEYS: its day's spend, its recipient's window, its duplicate marker;
# ARGV: its message id and the amount to add to the spend (negative). The marker is lifted only while the
# message holds it (another message's stays).
_RELEASE = """
for i = 0, #KEYS / 3 - 1 do
  local id, amount = ARGV[1 + 2 * i], ARGV[2 + 2 * i]
  if tonumber(amount) ~= 0 then
    redis.call('INCRBYFLOAT', KEYS[1 + 3 * i], amount)
  end
  redis.call('ZREM', KEYS[2 + 3 * i], id)
  if redis.call('GET', KEYS[3 + 3 * i]) == id then
    redis.call('DEL', KEYS[3 + 3 * i])
  end
end
return 1
"""


@dataclass(frozen=True)
class PriceKey:
    """What a price depends on: channel, country, encoding and parts."""

    channel: str
    country: str
    encoding: str
    parts: int

    @property
    def key(self) -> str:
        """Its cache key."""
        return price_key(self.channel, self.country, self.encoding, self.parts)


@dataclass(frozen=True)
class BatchFacts:
    """What a batch of admissions read in one round trip."""

    opted_out: frozenset[str]
    balance_low: bool
    standing: Standing
    prices: Mapping[PriceKey, Decimal]  # the cached ones


@dataclass(frozen=True)
class Claim:
    """What one approval takes: its estimate of the day's spend (unless over `budget`), a slot in the recipient's
    window (with `rate`) and the duplicate marker (for `window` seconds)."""

    message_id: str
    amount: Decimal
    budget: Decimal | None = None
    recipient: str | None = None
    rate: RateLimit | None = None
    digest: str = ""
    window: float | None = None


class ReservationRecords:
    """Spend, rates, duplicates and prices."""

    def __init__(self, r: redis.Redis):
        self.r = r
        self._reserve = r.register_script(_RESERVE)
        self._release = r.register_script(_RELEASE)

    def read(self, day: str, now: float, numbers: Collection[str], windows: Mapping[str, float],
             digests: Collection[str], prices: Collection[PriceKey]) -> BatchFacts:
        """In one round trip: which of `numbers` opted out, the balance flag, `day`'s spend, the sends (message,
        time) within each recipient's window (`windows`: number → seconds), which message holds each marked one of
        `digests`, and the cached ones of `prices`."""
        numbers, digests, prices = list(numbers), list(digests), list(prices)
        pipe = self.r.pipeline(transaction=False)
        pipe.exists(BALANCE_LOW)
        pipe.get(spend_key(day))
        if numbers:
            pipe.hmget(OPTOUTS, numbers)
        if digests:
            pipe.mget([duplicate_key(d) for d in digests])
        if prices:
            pipe.mget([p.key for p in prices])
        for number, per in windows.items():
            pipe.zrangebyscore(recipient_rate_key(number), now - per, "+inf", withscores=True)
        with available():
            replies: list[Any] = pipe.execute()
        low, spent = replies[0], replies[1]
        rest = iter(replies[2:])
        flags = next(rest) if numbers else []
        marks = next(rest) if digests else []
        cached = next(rest) if prices else []
        recent = {number: tuple((text(m), float(score)) for m, score in next(rest)) for number in windows}
        return BatchFacts(
            opted_out=frozenset(n for n, f in zip(numbers, flags, strict=True) if f is not None),
            balance_low=bool(low),
            standing=Standing(Decimal(maybe_text(spent) or "0"), recent,
                              {d: text(m) for d, m in zip(digests, marks, strict=True) if m is not None}),
            prices={p: Decimal(text(c)) for p, c in zip(prices, cached, strict=True) if c is not None})

    def reserve(self, day: str, now: float, claims: Sequence[Claim]) -> int:
        """Take the claims in order, each whole, up to the first that no longer fits, in one atomic step (so
        concurrent batches on other machines cannot overshoot a budget or a window between check and take);
        how many were taken."""
        if not claims:
            return 0
        keys, args = [spend_key(day)], [repr(now)]
        for c in claims:
            keys += [duplicate_key(c.digest), recipient_rate_key(c.recipient or "")]
            rate = c.rate if c.recipient else None
            args += [c.message_id, str(c.amount), "" if c.budget is None else str(c.budget),
                     str(max(1, int(c.window))) if c.window else "",
                     str(rate.count) if rate else "", repr(rate.per) if rate else ""]
        with available():
            return int(self._reserve(keys=keys, args=args))

    def spent(self, day: str) -> Decimal:
        """What `day` has committed so far."""
        with available():
            return Decimal(maybe_text(self.r.get(spend_key(day))) or "0")

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

    def is_duplicate(self, digest: str) -> bool:
        """Whether this recipient+body was sent within its window."""
        with available():
            return bool(self.r.exists(duplicate_key(digest)))

    def release(self, taken: Sequence[tuple[str, Claim]]) -> None:
        """Give back, in one round trip, what each (day, claim) took: the amount from that day's spend, the slot
        in the recipient's window and the duplicate marker (only while the claim's message holds it)."""
        if not taken:
            return
        keys: list[str] = []
        args: list[str] = []
        for day, c in taken:
            keys += [spend_key(day), recipient_rate_key(c.recipient or ""), duplicate_key(c.digest)]
            args += [c.message_id, str(-c.amount)]
        with available():
            self._release(keys=keys, args=args)

    def cache_prices(self, prices: Mapping[PriceKey, tuple[Decimal, float]]) -> None:
        """Keep estimates (price, seconds to keep it), in one round trip."""
        if not prices:
            return
        pipe = self.r.pipeline(transaction=False)
        for p, (price, ttl) in prices.items():
            pipe.set(p.key, str(price), ex=max(1, int(ttl)))
        with available():
            pipe.execute()
