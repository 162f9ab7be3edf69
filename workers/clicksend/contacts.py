"""Writes to ClickSend contact lists that a replay cannot repeat: a list found by id or by name, a contact found
on it by its number, and an upsert or removal that changes nothing when there is nothing to change.

Built on `ClickSendClient.request` and its paging; owns no state (the name cache lives in the store) and never
retries: a 429 or an outage propagates, and the caller puts the write back. Safe to run again after any failure,
because every write first looks at what the list holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from workers.clicksend.client import ClickSendClient, iter_pages
from workers.core.coerce import to_int
from workers.core.phones import e164
from workers.errors import ListUnknown, ProviderRejected


@dataclass(frozen=True)
class WriteResult:
    """What a contact write did: `created`, `updated`, `unchanged`, `removed` or `absent` (nothing to remove)."""

    action: str
    list_id: int
    contact_id: int | None = None
    changed: tuple[str, ...] = ()  # the fields an update changed

    def describe(self, list_ref: str) -> str:
        """As a timeline reason."""
        where = f"list {list_ref}" + ("" if list_ref == str(self.list_id) else f" (#{self.list_id})")
        contact = f"contact #{self.contact_id}"
        return {
            "created": f"{contact} created on {where}",
            "updated": f"{contact} updated on {where}: {', '.join(self.changed)}",
            "unchanged": f"{contact} on {where} already has these fields: nothing written",
            "removed": f"{contact} removed from {where}",
            "absent": f"not on {where}: nothing to remove",
        }[self.action]


def find_list(client: ClickSendClient, ref: str) -> dict[str, Any]:
    """The list `ref` names: by id (all digits), else by name (case-insensitive). ListUnknown when none, or
    several, match."""
    if ref.isdigit():
        try:
            return client.request("GET", f"/v3/lists/{ref}", endpoint="/v3/lists/{id}")
        except ProviderRejected as exc:
            if exc.status == 404:
                raise ListUnknown(f"no ClickSend list has id {ref}", status=404) from None
            raise
    found = [row for page in iter_pages(partial(client.lists)) for row in page.items
             if str(row.get("list_name") or "").strip().lower() == ref.lower()]
    if len(found) != 1:
        raise ListUnknown(f"no ClickSend list is named {ref!r}" if not found else
                          f"{len(found)} ClickSend lists are named {ref!r}: name it by id")
    return found[0]


def find_contacts(client: ClickSendClient, list_id: int, number: str, region: str) -> list[dict[str, Any]]:
    """Every contact on the list with `number` (E.164), however ClickSend has it written."""
    found = []
    for page in iter_pages(partial(client.list_contacts, list_id)):
        for contact in page.items:
            if e164(str(contact.get("phone_number") or ""), region, strict=False) == number:
                found.append(contact)
    return found


def upsert(client: ClickSendClient, list_id: int, number: str, fields: dict[str, str], region: str) -> WriteResult:
    """The contact with `number` on the list gets `fields` (an update of the fields that differ), or is created."""
    existing = find_contacts(client, list_id, number, region)
    if not existing:
        row = client.add_contact(list_id, {"phone_number": number, **fields})
        return WriteResult("created", list_id, to_int(row.get("contact_id")))
    contact = existing[0]
    contact_id = to_int(contact.get("contact_id"))
    changed = {k: v for k, v in fields.items() if (contact.get(k) or "") != v}
    if not changed:
        return WriteResult("unchanged", list_id, contact_id)
    client.request("PUT", f"/v3/lists/{list_id}/contacts/{contact_id}", json=changed,
                   endpoint="/v3/lists/{id}/contacts/{id}")
    return WriteResult("updated", list_id, contact_id, tuple(sorted(changed)))


def remove(client: ClickSendClient, list_id: int, number: str, region: str) -> WriteResult:
    """Every contact with `number` leaves the list (a list may hold a number twice)."""
    existing = find_contacts(client, list_id, number, region)
    for contact in existing:
        client.delete_contact(list_id, int(contact["contact_id"]))
    if not existing:
        return WriteResult("absent", list_id)
    return WriteResult("removed", list_id, to_int(existing[0].get("contact_id")))
