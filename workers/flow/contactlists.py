"""ClickSend contact lists as the sender uses them: carrying out one contact write (a message of channel
`contact`: upsert or remove the number through `clicksend.contacts`), and reading the numbers of a list a send
goes to, with those on the account's Opt-Out List, or its size (for a person approving a send to it). Lists by
id, or by name through a cache in the store.

The sender claims these messages from their outbox and decides what a failure means (a 429 puts the work back,
a refusal fails it); this module only calls ClickSend and says what it found or did. Must not change states.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from workers.clicksend import contacts
from workers.clicksend.client import ClickSendClient, iter_pages
from workers.core.coerce import to_int
from workers.core.lifecycle import State
from workers.core.messages import ContactOp, Message
from workers.core.phones import e164
from workers.errors import ListUnknown, ProviderRejected
from workers.flow.optouts import OPT_OUT_LIST_NAME
from workers.store import Store
from workers.store.messages import Change

T = TypeVar("T")
LIST_NAME_TTL = 600.0  # seconds a list's id is remembered by name; a list renamed meanwhile is found again


@dataclass(frozen=True)
class ContactLists:
    """Writes contacts and reads lists through one ClickSend client; list ids by name cached in the store."""

    store: Store
    client: ClickSendClient
    default_region: str

    def write(self, msg: Message, now: float) -> Change:
        """Do `msg`'s write; the change that records it as done (`sent`, with what it did as the reason).

        Raises the client's errors (RateLimited, ProviderUnavailable, ProviderRejected incl. ListUnknown...).
        """
        assert msg.list_ref is not None
        result = self._on_list(msg.list_ref, partial(self._write, msg))
        return Change(msg.id, State.SENT, result.describe(msg.list_ref), {"sent_at": now})

    def numbers(self, ref: str) -> list[str]:
        """The phone numbers on list `ref`, as ClickSend has them written (contacts with only an e-mail left out)."""
        return self._on_list(ref, self._numbers)

    def size(self, ref: str) -> int | None:
        """How many contacts list `ref` holds as ClickSend counts them (`_contacts_count`, those with only an
        e-mail included); None when its answer gives no count. One call when the list's id is known."""
        return self._on_list(ref, self._size)

    def opted_out(self) -> set[str]:
        """The numbers (E.164) on the account's Opt-Out List; none when the account has no such list."""
        try:
            raw = self.numbers(OPT_OUT_LIST_NAME)
        except ListUnknown:
            return set()
        return {n for n in (e164(r, self.default_region, strict=False) for r in raw) if n}

    def _on_list(self, ref: str, act: Callable[[int], T]) -> T:
        """`act` on the id of list `ref`; when a cached id names a list deleted since, once more on a fresh one."""
        try:
            return act(self._list_id(ref))
        except ProviderRejected as exc:
            if ref.isdigit() or exc.status != 404 or isinstance(exc, ListUnknown):
                raise
            self.store.account.cache_list_id(ref, None, 0)
            return act(self._list_id(ref))

    def _numbers(self, list_id: int) -> list[str]:
        return [str(c["phone_number"]) for page in iter_pages(partial(self.client.list_contacts, list_id))
                for c in page.items if c.get("phone_number")]

    def _size(self, list_id: int) -> int | None:
        # A 404 here (a cached id of a list deleted since) is the ProviderRejected `_on_list` looks the name up on.
        row = self.client.request("GET", f"/v3/lists/{list_id}", endpoint="/v3/lists/{id}")
        return to_int(row.get("_contacts_count"))

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
