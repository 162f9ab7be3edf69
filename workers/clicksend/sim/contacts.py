"""The simulated contacts of a list (`/v3/lists/{list_id}/contacts...`): list, create, view, update, delete,
copy and transfer, in the shape of ClickSend's `Contact` model (every field present, strings or null; dates
integers).

Owns the contacts' routes and what a contact must carry; the rows live in `SimLists`.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from workers.clicksend.sim.lists import missing_list
from workers.clicksend.sim.wire import as_int, envelope, json_object, paginate, state

bp = Blueprint("contacts", __name__)
CONTACTS = "/v3/lists/<int:list_id>/contacts"


def missing_contact(contact_id: int) -> Response:
    """ClickSend's 404 for a contact that is not on the list."""
    return envelope(404, "NOT_FOUND", f"Contact #{contact_id} not found.")


@bp.get(CONTACTS)
def contacts(list_id: int) -> Response:
    """A list's contacts, paged (`updated_after`: only those changed since)."""
    directory = state().directory
    if directory.get_list(list_id) is None:
        return missing_list(list_id)
    after = request.args.get("updated_after")
    rows = directory.list_contacts(list_id, as_int(after, 0) if after else None)
    return envelope(200, "SUCCESS", "Here's your list of contacts.", paginate(rows, request.path))


@bp.post(CONTACTS)
def create(list_id: int) -> Response:
    """A new contact: a phone number, e-mail or fax number is required."""
    directory = state().directory
    if directory.get_list(list_id) is None:
        return missing_list(list_id)
    fields = json_object()
    if not any(isinstance(fields.get(k), str) and fields[k] for k in ("phone_number", "email", "fax_number")):
        return envelope(400, "BAD_REQUEST", "Invalid input.",
                        {"phone_number": "A phone number, email or fax number is required."})
    return envelope(200, "SUCCESS", "New contact has been created.", directory.add_contact(list_id, fields))


@bp.get(f"{CONTACTS}/<int:contact_id>")
def show(list_id: int, contact_id: int) -> Response:
    """One contact."""
    row = state().directory.get_contact(list_id, contact_id)
    return envelope(200, "SUCCESS", "Here is your contact.", row) if row else missing_contact(contact_id)


@bp.put(f"{CONTACTS}/<int:contact_id>")
def update(list_id: int, contact_id: int) -> Response:
    """Change the fields given; the others stay."""
    row = state().directory.update_contact(list_id, contact_id, json_object())
    return envelope(200, "SUCCESS", "Your contact has been updated.", row) if row else missing_contact(contact_id)


@bp.delete(f"{CONTACTS}/<int:contact_id>")
def delete(list_id: int, contact_id: int) -> Response:
    """Remove a contact; `data` is an empty list, as ClickSend's example has it."""
    if not state().directory.delete_contact(list_id, contact_id):
        return missing_contact(contact_id)
    return envelope(200, "SUCCESS", f"Contact #{contact_id} has been deleted.", [])


@bp.put("/v3/lists/<int:from_list_id>/contacts/<int:contact_id>/<any(copy, transfer):verb>/<int:to_list_id>")
def copy(from_list_id: int, contact_id: int, verb: str, to_list_id: int) -> Response:
    """Copy a contact to another list, or transfer it (it leaves the first)."""
    row = state().directory.copy_contact(from_list_id, contact_id, to_list_id, move=verb == "transfer")
    if row is None:
        return missing_contact(contact_id)
    done = "copied" if verb == "copy" else "transferred"
    return envelope(200, "SUCCESS", f"Contact #{contact_id} has been {done} to List #{to_list_id}", row)
