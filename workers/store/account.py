"""What the workers learn about the ClickSend account (user_id, balance, whether it is under a floor, the ids of
its contact lists by name) and the operator alerts raised about it and the outboxes; read by the web edge,
written by the workers."""

from __future__ import annotations

import json
from typing import Any

import redis

from workers.store.keys import ACCOUNT, ALERTS, BALANCE_LOW, available, list_name_key, maybe_text, text


class AccountRecords:
    """Account facts, the low-balance flag and operator alerts."""

    def __init__(self, r: redis.Redis):
        self.r = r

    def remember_account(self, **facts: Any) -> None:
        """Store facts about the ClickSend account (user_id, balance, checked_at)."""
        with available():
            self.r.hset(ACCOUNT, mapping={k: json.dumps(v) for k, v in facts.items()})

    def account_facts(self) -> dict[str, Any]:
        """What is known about the ClickSend account."""
        with available():
            return {text(k): json.loads(v) for k, v in self.r.hgetall(ACCOUNT).items()}

    def set_balance_low(self, low: bool) -> None:
        """Record whether the balance is under the floor."""
        with available():
            if low:
                self.r.set(BALANCE_LOW, 1)
            else:
                self.r.delete(BALANCE_LOW)

    def balance_low(self) -> bool:
        """Whether automatic approvals must become holds."""
        with available():
            return bool(self.r.exists(BALANCE_LOW))

    def raise_alert(self, name: str, message: str, now: float) -> None:
        """Record an operator alert (shown by /readyz and the metrics) unless already raised."""
        with available():
            self.r.hsetnx(ALERTS, name, json.dumps({"since": now, "message": message}))

    def clear_alert(self, name: str) -> None:
        """Remove an alert."""
        with available():
            self.r.hdel(ALERTS, name)

    def alerts(self) -> dict[str, Any]:
        """Every raised alert."""
        with available():
            return {text(k): json.loads(v) for k, v in self.r.hgetall(ALERTS).items()}

    def cached_list_id(self, name: str) -> int | None:
        """The id last found for the contact list `name`, while cached."""
        with available():
            found = maybe_text(self.r.get(list_name_key(name)))
        return int(found) if found else None

    def cache_list_id(self, name: str, list_id: int | None, ttl: float) -> None:
        """Remember (None: forget) the id of the contact list `name` for `ttl` seconds."""
        with available():
            if list_id is None:
                self.r.delete(list_name_key(name))
            else:
                self.r.set(list_name_key(name), list_id, px=int(ttl * 1000))
