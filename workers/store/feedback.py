"""What comes back from ClickSend: provider ids, the opt-out (suppression) list, seen inbound replies,
account facts, and timeline entries that do not change a message's state (receipts, replies).
"""

from __future__ import annotations

import json
from typing import Any

import redis

from workers.store.keys import (
    ACCOUNT,
    OPTOUTS,
    RECEIPTS_UNKNOWN,
    available,
    inbound_seen_key,
    message_log_key,
    provider_key,
)

PROVIDER_ID_TTL = 180 * 86400  # ClickSend keeps history four months; receipts never come later than that


class FeedbackRecords:
    """Receipts, replies and opt-outs (mixed into Store)."""

    r: redis.Redis

    def index_provider_ids(self, pairs: dict[str, str]) -> None:
        """Remember which of our messages each ClickSend message_id is."""
        if not pairs:
            return
        pipe = self.r.pipeline(transaction=False)
        for provider_id, message_id in pairs.items():
            pipe.set(provider_key(provider_id), message_id, ex=PROVIDER_ID_TTL)
        with available():
            pipe.execute()

    def message_for_provider_id(self, provider_id: str) -> str | None:
        """Our message id for a ClickSend message_id."""
        with available():
            return self.r.get(provider_key(provider_id))

    def note(self, message_id: str, entry: dict[str, Any]) -> None:
        """Add a timeline entry that does not change the state (a receipt, a reply, a callback attempt)."""
        with available():
            self.r.rpush(message_log_key(message_id), json.dumps(entry, separators=(",", ":")))

    def count_unknown_receipt(self) -> int:
        """One more receipt that named no message of ours."""
        with available():
            return int(self.r.incr(RECEIPTS_UNKNOWN))

    def inbound_seen(self, inbound_id: str) -> bool:
        """True once an inbound reply id has been applied (remembered for a week)."""
        with available():
            return bool(self.r.exists(inbound_seen_key(inbound_id)))

    def mark_inbound_seen(self, inbound_id: str) -> None:
        """Remember that an inbound reply was applied, so a repeat push or poll skips it."""
        with available():
            self.r.set(inbound_seen_key(inbound_id), 1, ex=7 * 86400)

    # --- opt-outs -----------------------------------------------------------------------------------

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
            return {k: json.loads(v) for k, v in self.r.hgetall(OPTOUTS).items()}

    # --- account ------------------------------------------------------------------------------------

    def remember_account(self, **facts: Any) -> None:
        """Store facts about the ClickSend account (user_id, balance)."""
        with available():
            self.r.hset(ACCOUNT, mapping={k: json.dumps(v) for k, v in facts.items()})

    def account_facts(self) -> dict[str, Any]:
        """What is known about the ClickSend account."""
        with available():
            return {k: json.loads(v) for k, v in self.r.hgetall(ACCOUNT).items()}
