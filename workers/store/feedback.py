"""What comes back from ClickSend: which of our messages each provider id is, unknown receipts, and the
inbound replies already applied. The suppression list is `store.optouts`', the account `store.account`'s.
"""

from __future__ import annotations

import redis

from workers.store.keys import RECEIPTS_UNKNOWN, available, inbound_seen_key, maybe_text, provider_key

PROVIDER_ID_TTL = 180 * 86400  # ClickSend keeps history four months; receipts never come later than that


class FeedbackRecords:
    """Provider ids, receipts that named nothing of ours, and inbound replies already applied."""

    def __init__(self, r: redis.Redis):
        self.r = r

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
            return maybe_text(self.r.get(provider_key(provider_id)))

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
