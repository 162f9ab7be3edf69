"""The simulator's contact lists, their contacts, SMS templates and verified sender e-mail addresses.

In-process and thread-safe (one lock); time from the clock function `SimState` passes in. Rows are kept in
ClickSend's shapes (`ContactList`, `Contact`, `SmsTemplate`, `EmailAddress`), so the blueprints in
`workers.clicksend.sim` only page and wrap them. Knows no HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from workers.core.contactfields import CONTACT_FIELDS

OPT_OUT_LIST_ID = 428
OPT_OUT_LIST_NAME = "Opt-Out List"
# The fields a contact may carry (ClickSend's `Contact` model, CONTACT_FIELDS), all strings; a create or update
# sets these only.


class SimLists:
    """Lists with contacts, templates and e-mail addresses. Every account starts with its Opt-Out List."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.lists: dict[int, dict[str, Any]] = {}
        self.contacts: dict[int, dict[str, Any]] = {}
        self.templates: dict[int, dict[str, Any]] = {}
        self.emails: dict[int, dict[str, Any]] = {}
        self._next = {"list": OPT_OUT_LIST_ID + 1, "contact": 552786, "template": 587713, "email": 2}
        self.lists[OPT_OUT_LIST_ID] = _list_row(OPT_OUT_LIST_ID, OPT_OUT_LIST_NAME)

    def _id(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] = value + 1
        return value

    # --- lists --------------------------------------------------------------------------------------

    def all_lists(self) -> list[dict[str, Any]]:
        """Every list with its contact count, oldest first."""
        with self.lock:
            return [self._counted(row) for row in self.lists.values()]

    def get_list(self, list_id: int) -> dict[str, Any] | None:
        """One list, or None."""
        with self.lock:
            row = self.lists.get(list_id)
            return self._counted(row) if row else None

    def create_list(self, name: str) -> dict[str, Any]:
        """A new empty list."""
        with self.lock:
            row = _list_row(self._id("list"), name)
            self.lists[row["list_id"]] = row
            return self._counted(row) | {"_import_in_progress": 0, "_optout_in_progress": 0}

    def rename_list(self, list_id: int, name: str) -> dict[str, Any] | None:
        """Rename a list; None when there is no such list."""
        with self.lock:
            row = self.lists.get(list_id)
            if row is None:
                return None
            row["list_name"] = name
            return self._counted(row)

    def delete_list(self, list_id: int) -> bool:
        """Delete a list and its contacts; False when there is no such list."""
        with self.lock:
            if self.lists.pop(list_id, None) is None:
                return False
            self.contacts = {k: c for k, c in self.contacts.items() if c["list_id"] != list_id}
            return True

    def _counted(self, row: dict[str, Any]) -> dict[str, Any]:
        count = sum(c["list_id"] == row["list_id"] for c in self.contacts.values())
        return row | {"_contacts_count": count}

    # --- contacts -----------------------------------------------------------------------------------

    def list_contacts(self, list_id: int, updated_after: int | None = None) -> list[dict[str, Any]]:
        """The contacts of a list, oldest first (those updated after `updated_after`, when given)."""
        with self.lock:
            return [dict(c) for c in self.contacts.values() if c["list_id"] == list_id
                    and (updated_after is None or c["date_updated"] > updated_after)]

    def get_contact(self, list_id: int, contact_id: int) -> dict[str, Any] | None:
        """One contact of a list, or None."""
        with self.lock:
            found = self.contacts.get(contact_id)
            return dict(found) if found and found["list_id"] == list_id else None

    def add_contact(self, list_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """A new contact on a list (the list must exist)."""
        now = int(self.clock())
        with self.lock:
            row = {"contact_id": self._id("contact"), "list_id": list_id, **_fields(fields),
                   "date_added": now, "date_updated": now, "_list_name": self.lists[list_id]["list_name"]}
            self.contacts[row["contact_id"]] = row
            return dict(row)

    def update_contact(self, list_id: int, contact_id: int, fields: dict[str, Any]) -> dict[str, Any] | None:
        """Change some fields of a contact; None when it is not on that list."""
        with self.lock:
            row = self.contacts.get(contact_id)
            if row is None or row["list_id"] != list_id:
                return None
            row.update({k: v for k, v in _fields(fields).items() if k in fields})
            row["date_updated"] = int(self.clock())
            return dict(row)

    def delete_contact(self, list_id: int, contact_id: int) -> bool:
        """Remove a contact from its list; False when it is not on that list."""
        with self.lock:
            row = self.contacts.get(contact_id)
            if row is None or row["list_id"] != list_id:
                return False
            del self.contacts[contact_id]
            return True

    def copy_contact(self, from_list: int, contact_id: int, to_list: int, move: bool) -> dict[str, Any] | None:
        """Copy (or, with `move`, transfer) a contact to another list; None when either is missing."""
        now = int(self.clock())
        with self.lock:
            row = self.contacts.get(contact_id)
            if row is None or row["list_id"] != from_list or to_list not in self.lists:
                return None
            target = row if move else dict(row, contact_id=self._id("contact"), date_added=now)
            target.update(list_id=to_list, date_updated=now, _list_name=self.lists[to_list]["list_name"])
            self.contacts[target["contact_id"]] = target
            return dict(target)

    def remove_duplicates(self, list_id: int, by: tuple[str, ...]) -> int:
        """Delete the later contacts of a list that repeat an earlier one's phone number (and `by` fields)."""
        with self.lock:
            seen: set[tuple[Any, ...]] = set()
            doomed = []
            for cid, row in self.contacts.items():
                if row["list_id"] != list_id:
                    continue
                key = (row.get("phone_number"), *(row.get(f) for f in by))
                if key in seen:
                    doomed.append(cid)
                seen.add(key)
            for cid in doomed:
                del self.contacts[cid]
            return len(doomed)

    def remove_opted_out(self, list_id: int, opt_out_list_id: int) -> int:
        """Delete the contacts of a list whose number is on the opt-out list."""
        with self.lock:
            out = {c.get("phone_number") for c in self.contacts.values() if c["list_id"] == opt_out_list_id}
            doomed = [cid for cid, c in self.contacts.items()
                      if c["list_id"] == list_id and c.get("phone_number") in out]
            for cid in doomed:
                del self.contacts[cid]
            return len(doomed)

    # --- templates and e-mail addresses: a small table each -------------------------------------------

    def rows(self, kind: str) -> dict[int, dict[str, Any]]:
        """A copy of the `templates` or `emails` table, each row copied too, as it stood at one moment: request
        threads change the table itself under the lock."""
        with self.lock:
            return {row_id: dict(row) for row_id, row in self._table(kind).items()}

    def _table(self, kind: str) -> dict[int, dict[str, Any]]:
        # The live table: only under the lock.
        if kind not in ("templates", "emails"):
            raise ValueError(f"no table {kind!r}")
        table: dict[int, dict[str, Any]] = getattr(self, kind)
        return table

    def insert(self, kind: str, id_field: str, row: dict[str, Any]) -> dict[str, Any]:
        """Add a row to `kind` ("templates"/"emails") under a new id in `id_field`."""
        with self.lock:
            new = {id_field: self._id(kind.rstrip("s")), **row}
            self._table(kind)[new[id_field]] = new
            return dict(new)

    def change(self, kind: str, row_id: int, fields: dict[str, Any] | None) -> dict[str, Any] | None:
        """Update a row (`fields`) or delete it (`None`); the row as it was left, None when missing."""
        with self.lock:
            table = self._table(kind)
            row = table.get(row_id)
            if row is None:
                return None
            if fields is None:
                return table.pop(row_id)
            row.update(fields)
            return dict(row)


def _list_row(list_id: int, name: str) -> dict[str, Any]:
    return {"list_id": list_id, "list_name": name, "list_email_id": f"SIM{list_id:013d}", "_contacts_count": 0}


def _fields(fields: dict[str, Any]) -> dict[str, Any]:
    # Every field present, as ClickSend's contact rows have them: strings or null.
    return {k: None if fields.get(k) is None else str(fields[k]) for k in CONTACT_FIELDS}
