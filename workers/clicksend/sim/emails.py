"""The simulated verified sender addresses (`/v3/email/addresses...`, `/v3/email/address-verify...`): list,
add, view, delete, send the verification token and verify, in the shape of ClickSend's `EmailAddress` model
(`verified` an integer, `date_added` a string of Unix seconds).

Owns those routes; the rows live in `SimLists`. The token is not mailed: `/_sim/ledger` does not show it
either; any non-empty token verifies (the simulator cannot read a mailbox).
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from workers.clicksend.sim.wire import envelope, json_object, paginate, state

bp = Blueprint("emails", __name__)
KIND, ID = "emails", "email_address_id"


def _missing(email_address_id: int) -> Response:
    return envelope(404, "NOT_FOUND", f"Email address #{email_address_id} not found.")


@bp.get("/v3/email/addresses")
def addresses() -> Response:
    """Every address, paged."""
    rows = list(state().directory.rows(KIND).values())
    return envelope(200, "SUCCESS", "Here are your email addresses", paginate(rows, request.path))


@bp.post("/v3/email/addresses")
def add() -> Response:
    """A new, unverified address (`email_address` required, one `@`)."""
    address = json_object().get("email_address")
    if not isinstance(address, str) or address.count("@") != 1 or address.startswith("@") or address.endswith("@"):
        return envelope(400, "BAD_REQUEST", "Invalid input.", {"email_address": "A valid email address is required."})
    sim = state()
    row = sim.directory.insert(KIND, ID, {"email_address": address, "verified": 0,
                                          "date_added": str(int(sim.clock()))})
    return envelope(200, "SUCCESS", "Email address has been created.", row)


@bp.get("/v3/email/addresses/<int:email_address_id>")
def show(email_address_id: int) -> Response:
    """One address."""
    row = state().directory.rows(KIND).get(email_address_id)
    return envelope(200, "SUCCESS", "Here is your email address.", row) if row else _missing(email_address_id)


@bp.delete("/v3/email/addresses/<int:email_address_id>")
def delete(email_address_id: int) -> Response:
    """Delete an address; `data` is an empty object (the SDK's model: a dict)."""
    if state().directory.change(KIND, email_address_id, None) is None:
        return _missing(email_address_id)
    return envelope(200, "SUCCESS", "Email address deleted.", {})


@bp.put("/v3/email/address-verify/<int:email_address_id>/send")
def send_token(email_address_id: int) -> Response:
    """Send the verification token (here: pretend to)."""
    row = state().directory.rows(KIND).get(email_address_id)
    return envelope(200, "SUCCESS", "Verification token sent.", row) if row else _missing(email_address_id)


@bp.put("/v3/email/address-verify/<int:email_address_id>/verify/<activation_token>")
def verify(email_address_id: int, activation_token: str) -> Response:
    """Mark an address verified."""
    row = state().directory.change(KIND, email_address_id, {"verified": 1})
    return envelope(200, "SUCCESS", "Email address has been verified.", row) if row else _missing(email_address_id)
