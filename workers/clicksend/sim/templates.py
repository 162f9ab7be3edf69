"""The simulated SMS templates (`/v3/sms/templates...`): list, create, view, update, delete, in the shape of
ClickSend's `SmsTemplate` model (`template_id` an integer, `template_name` and `body` strings).

Owns the templates' routes; the rows live in `SimLists`. Templates are stored text only: sends never use them.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from workers.clicksend.sim.wire import envelope, json_object, paginate, search, state

bp = Blueprint("templates", __name__)
KIND, ID = "templates", "template_id"


def _fields(partial: bool) -> dict[str, Any] | Response:
    body = json_object()
    fields = {k: body[k] for k in ("template_name", "body") if isinstance(body.get(k), str) and body[k]}
    missing = {k: f"The {k.replace('_', ' ')} field is required." for k in ("template_name", "body")
               if k not in fields}
    if missing and not (partial and fields):
        return envelope(400, "BAD_REQUEST", "Invalid input.", missing)
    return fields


def _missing(template_id: int) -> Response:
    return envelope(404, "NOT_FOUND", f"Template #{template_id} not found.")


@bp.get("/v3/sms/templates")
def templates() -> Response:
    """Every template (those matching `q`, e.g. `template_name:welcome`), paged."""
    rows = search(list(state().directory.rows(KIND).values()), request.args.get("q") or "")
    return envelope(200, "SUCCESS", "Here are your templates.", paginate(rows, request.path))


@bp.post("/v3/sms/templates")
def create() -> Response:
    """A new template (`template_name` and `body` required)."""
    fields = _fields(partial=False)
    if isinstance(fields, Response):
        return fields
    return envelope(200, "SUCCESS", "New template has been saved.", state().directory.insert(KIND, ID, fields))


@bp.get("/v3/sms/templates/<int:template_id>")
def show(template_id: int) -> Response:
    """One template."""
    row = state().directory.rows(KIND).get(template_id)
    return envelope(200, "SUCCESS", "Here is your template.", row) if row else _missing(template_id)


@bp.put("/v3/sms/templates/<int:template_id>")
def update(template_id: int) -> Response:
    """Change the name, the body or both."""
    fields = _fields(partial=True)
    if isinstance(fields, Response):
        return fields
    row = state().directory.change(KIND, template_id, fields)
    return envelope(200, "SUCCESS", "Your template has been updated.", row) if row else _missing(template_id)


@bp.delete("/v3/sms/templates/<int:template_id>")
def delete(template_id: int) -> Response:
    """Delete a template; `data` is null, as ClickSend's example has it."""
    if state().directory.change(KIND, template_id, None) is None:
        return _missing(template_id)
    return envelope(200, "SUCCESS", "Your template has been deleted.")
