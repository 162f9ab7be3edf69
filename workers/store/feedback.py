"""What comes back from ClickSend: which of our messages each provider id is, unknown receipts, and the
inbound replies already applied. The suppression list is `store.optouts`', the account `store.account`'s.
"""

from __future__ import annotations

import redis

from workers.store.keys import RECEIPTS_UNKNOWN, available, inbound_seen_key, provider_key

PROVIDER_ID_TTL = 180 * 86400  # ClickSend keeps history four months; receipts never come later than that

# KEYS: provider id keys. ARGV: retention s, then the message id for each key, in KEYS' order. One command for a
# sent batch: built as a pipeline, a SET per message cost several times its Redis time in redis-py.
_INDEX = """
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ARGV[1])
end
"""


class FeedbackRecords:
    """Provider ids, receipts that named nothing of ours, and inbound replies already applied."""

    def __init__(self, r: redis.Redis):
        self.r = r
        self._index = r.register_script(_INDEX)

    def index_provider_ids(self, pairs: dict[str, str]) -> None:
        """Remember which of our messages each ClickSend message_id is."""
        if not pairs:
            return
        with available():
            self._index(keys=[provider_key(pid) for pid in pairs], args=[PROVIDER_ID_TTL, *pairs.values()])

    def count_unknown_receipts(self, count: int) -> int:
        """`count` more receipts that named no message of ours; the total so far."""
        with available():
            return int(self.r.incrby(RECEIPTS_UNKNOWN, count))

    def inbound_seen(self, inbound_ids: list[str]) -> set[str]:
        """Which inbound reply ids were applied already (each remembered for a week), in one round trip."""
        pipe = self.r.pipeline(transaction=False)
        for inbound_id in inbound_ids:
            pipe.exists(inbound_seen_key(inbound_id))
        with available():
            there = pipe.execute() if inbound_ids else []
        return {i for i, seen in zip(inbound_ids, there, strict=True) if seen}

    def mark_inbound_seen(self, inbound_ids: list[str]) -> None:
        """Remember that inbound replies were applied, so a repeat push or poll skips them."""
        pipe = self.r.pipeline(transaction=False)
        for inbound_id in inbound_ids:
            pipe.set(inbound_seen_key(inbound_id), 1, ex=7 * 86400)
        with available():
            if inbound_ids:
                pipe.execute()
