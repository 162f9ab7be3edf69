"""The simulated contact lists (`/v3/lists...`, `/v3/search/contacts-lists`): create, view, rename, delete,
remove duplicates and opted-out contacts, in the shape of ClickSend's `ContactList` model. Every account has
its Opt-Out List (id 428).

Owns the lists' routes; the rows live in `SimLists`, a list's contacts are served by `contacts`.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from workers.clicksend.sim.wire import envelope, json_object, paginate, state

bp = Blueprint("lists", __name__)


def missing_list(list_id: int) -> Response:
    """ClickSend's 404 for a list that is not there."""
    return envelope(404, "NOT_FOUND", f"List #{list_id} not found.")


def list_name() -> str | None:
    """The request's `list_name`, when it is a non-empty string."""
    name = json_object().get("list_name")
    return name.strip() if isinstance(name, str) and name.strip() else None


@bp.get("/v3/lists")
def lists() -> Response:
    """The account's lists, paged."""
    return envelope(200, "SUCCESS", "Here are your data.", paginate(state().directory.all_lists(), request.path))


@bp.get("/v3/search/contacts-lists")
def search() -> Response:
    """Lists whose name contains `q` (case-insensitive), paged."""
    q = (request.args.get("q") or "").lower()
    found = [row for row in state().directory.all_lists() if q in str(row["list_name"]).lower()]
    return envelope(200, "SUCCESS", "Here are your data.", paginate(found, request.path))


@bp.post("/v3/lists")
def create() -> Response:
    """A new list (`list_name` required)."""
    name = list_name()
    if name is None:
        return envelope(400, "BAD_REQUEST", "Invalid input.", {"list_name": "The list name field is required."})
    return envelope(200, "SUCCESS", "New list has been created.", state().directory.create_list(name))


@bp.get("/v3/lists/<int:list_id>")
def show(list_id: int) -> Response:
    """One list."""
    row = state().directory.get_list(list_id)
    return envelope(200, "SUCCESS", "Here is your list.", row) if row else missing_list(list_id)


@bp.put("/v3/lists/<int:list_id>")
def rename(list_id: int) -> Response:
    """Rename a list."""
    name = list_name()
    if name is None:
        return envelope(400, "BAD_REQUEST", "Invalid input.", {"list_name": "The list name field is required."})
    row = state().directory.rename_list(list_id, name)
    return envelope(200, "SUCCESS", "Your list has been updated.", row) if row else missing_list(list_id)


@bp.delete("/v3/lists/<int:list_id>")
def delete(list_id: int) -> Response:
    """Delete a list with its contacts; `data` is an empty list, as ClickSend's example has it."""
    if not state().directory.delete_list(list_id):
        return missing_list(list_id)
    return envelope(200, "SUCCESS", f"List #{list_id} has been deleted.", [])


@bp.put("/v3/lists/<int:list_id>/remove-duplicates/")
def remove_duplicates(list_id: int) -> Response:
    """Delete contacts repeating an earlier one's number (and the `fields` named, e.g. first_name)."""
    if state().directory.get_list(list_id) is None:
        return missing_list(list_id)
    fields = json_object().get("fields")
    by = tuple(sorted(k for k, v in fields.items() if v)) if isinstance(fields, dict) else ()
    deleted = state().directory.remove_duplicates(list_id, tuple(f for f in by if f in ("first_name", "last_name")))
    return envelope(200, "SUCCESS", "Your list duplicate contacts has been deleted.", {"deleted": deleted})


@bp.put("/v3/lists/<int:list_id>/remove-opted-out-contacts/<int:opt_out_list_id>")
def remove_opted_out(list_id: int, opt_out_list_id: int) -> Response:
    """Delete the contacts of a list whose numbers are on the opt-out list."""
    directory = state().directory
    for wanted in (list_id, opt_out_list_id):
        if directory.get_list(wanted) is None:
            return missing_list(wanted)
    deleted = directory.remove_opted_out(list_id, opt_out_list_id)
    return envelope(200, "SUCCESS", "Opted out contacts have been removed.", {"deleted": deleted})
