"""Carrying out one contact write (a message of channel `contact`): resolve its list (by id, or by name through
a cache in the store), then upsert or remove the number on it through `clicksend.contacts`.

The sender claims these messages from their outbox and decides what a failure means (a 429 puts the write back,
a refusal fails it); this module only does the write and says what it did. Must not change message states.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.clicksend import contacts
from workers.clicksend.client import ClickSendClient
from workers.core.coerce import to_int
from workers.core.lifecycle import State
from workers.core.messages import ContactOp, Message
from workers.errors import ListUnknown, ProviderRejected
from workers.store import Store
from workers.store.messages import Change

LIST_NAME_TTL = 600.0  # seconds a list's id is remembered by name; a list renamed meanwhile is found again


@dataclass(frozen=True)
class ContactWriter:
    """Writes contacts through one ClickSend client; list ids by name cached in the store."""

    store: Store
    client: ClickSendClient
    default_region: str

    def write(self, msg: Message, now: float) -> Change:
        """Do `msg`'s write; the change that records it as done (`sent`, with what it did as the reason).

        Raises the client's errors (RateLimited, ProviderUnavailable, ProviderRejected incl. ListUnknown...).
        """
        assert msg.list_ref is not None and msg.to is not None
        ref = msg.list_ref
        try:
            result = self._write(msg, self._list_id(ref))
        except ProviderRejected as exc:
            if ref.isdigit() or exc.status != 404 or isinstance(exc, ListUnknown):
                raise
            # The cached id names a list deleted since: forget it and look the name up once more.
            self.store.account.cache_list_id(ref, None, 0)
            result = self._write(msg, self._list_id(ref))
        return Change(msg.id, State.SENT, result.describe(ref), {"sent_at": now})

    def _write(self, msg: Message, list_id: int) -> contacts.WriteResult:
        assert msg.to is not None
        region = msg.country or self.default_region
        if msg.operation is ContactOp.REMOVE:
            return contacts.remove(self.client, list_id, msg.to, region)
        return contacts.upsert(self.client, list_id, msg.to, dict(msg.contact), region)

    def _list_id(self, ref: str) -> int:
        if ref.isdigit():
            return int(ref)
        cached = self.store.account.cached_list_id(ref)
        if cached is not None:
            return cached
        list_id = to_int(contacts.find_list(self.client, ref).get("list_id"))
        if list_id is None:
            raise ListUnknown(f"ClickSend gave no id for the list named {ref!r}")
        self.store.account.cache_list_id(ref, list_id, LIST_NAME_TTL)
        return list_id
