"""The opt-out sync: keeps Hookline's suppression list and ClickSend's account opt-out list (the contact list
named "Opt-Out List") in step in both directions, so a STOP either side received suppresses sends from both.

Reads both sides, lets `workers.core.optoutsync` decide, applies the steps (our side only where no newer
change arrived meanwhile), and remembers what ClickSend's list held, which dates removals made there. One
sync at a time (a lease in Redis). Must not decide conflicts itself.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from workers.clicksend.client import ClickSendClient, iter_pages
from workers.clicksend.contacts import find_list
from workers.core.coerce import to_int
from workers.core.optoutsync import Known, Side, Step, reconcile, remote_states
from workers.core.phones import e164
from workers.errors import ListUnknown
from workers.store import Store

log = logging.getLogger("hookline.optouts")
OPT_OUT_LIST_NAME = "Opt-Out List"  # the list every ClickSend account has (fact sheet §7.3)
LEASE_SECONDS = 300.0  # a sync that dies lets the next start after this
VIA = "clicksend"


@dataclass(frozen=True)
class OptoutSync:
    """One pass of the two-way sync."""

    store: Store
    client: Callable[[], ClickSendClient]  # built only when the sync runs
    default_region: str

    def run(self, now: float) -> dict[str, int]:
        """Sync once; counts of what changed on each side (`busy` when another sync holds the lease)."""
        token = self.store.optouts.claim_sync(LEASE_SECONDS)
        if token is None:
            return {"busy": 1}
        try:
            return self._sync(self.client(), now)
        finally:
            self.store.optouts.release_sync(token)

    def _sync(self, client: ClickSendClient, now: float) -> dict[str, int]:
        list_id = opt_out_list_id(client)
        if list_id is None:
            log.warning("the ClickSend account has no %r list: opt-outs are not synced", OPT_OUT_LIST_NAME)
            return {"no_list": 1}
        remote = self._remote_contacts(client, list_id)
        added = {n: max(float(to_int(c.get("date_added")) or now) for c in rows) for n, rows in remote.items()}
        previous = {n: float(v["seen_at"]) for n, v in self.store.optouts.remote_snapshot().items()}
        local = {n: Known(s.present, s.at, s.via) for n, s in self.store.optouts.local_states().items()}
        counts: Counter[str] = Counter()
        for step in reconcile(local, remote_states(added, previous)):
            counts[self._apply(client, list_id, remote, step)] += 1
        self.store.optouts.save_remote_snapshot({n: {"contact_ids": [c.get("contact_id") for c in rows],
                                                     "seen_at": now} for n, rows in remote.items()})
        return dict(counts)

    def _remote_contacts(self, client: ClickSendClient, list_id: int) -> dict[str, list[dict[str, Any]]]:
        # By number in E.164: the list may hold a number twice, or in a local form.
        found: dict[str, list[dict[str, Any]]] = {}
        for page in iter_pages(partial(client.list_contacts, list_id)):
            for contact in page.items:
                number = e164(str(contact.get("phone_number") or ""), self.default_region, strict=False)
                if number:
                    found.setdefault(number, []).append(contact)
        return found

    def _apply(self, client: ClickSendClient, list_id: int, remote: dict[str, list[dict[str, Any]]],
               step: Step) -> str:
        """Carry one step out; what was done. `remote` is kept to what ClickSend's list now holds."""
        action = "added" if step.present else "removed"
        if step.side is Side.LOCAL:
            detail = f"ClickSend opt-out list ({'added' if step.present else 'removed'} there)"
            applied = self.store.optouts.apply_if_newer(step.number, step.present, step.at, VIA, detail)
            return f"local_{action}" if applied else "local_newer"
        if step.present:
            remote[step.number] = [client.add_contact(list_id, {"phone_number": step.number})]
        else:
            for contact in remote.pop(step.number, []):
                client.delete_contact(list_id, int(contact["contact_id"]))
        self.store.optouts.note_remote(step.number, "add" if step.present else "remove", step.at, step.via)
        return f"remote_{action}"


def opt_out_list_id(client: ClickSendClient) -> int | None:
    """The id of the account's opt-out list (found by name as every list is, `contacts.find_list`), or None when
    the account has none (or several: which one ClickSend uses is then unknown, so nothing is synced)."""
    try:
        return to_int(find_list(client, OPT_OUT_LIST_NAME).get("list_id"))
    except ListUnknown as exc:
        log.warning("%s", exc)
        return None
