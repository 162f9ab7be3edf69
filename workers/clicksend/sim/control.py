"""The simulator's own control API under `/_sim/` (ledger, faults, inbound injection, reset) and `/healthz`.

Not ClickSend: tests, benchmarks and operators drive the simulator here. Needs no ClickSend credentials.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from workers.clicksend.sim.wire import envelope, json_object, state

bp = Blueprint("control", __name__)


@bp.get("/_sim/ledger")
def ledger() -> Response:
    """Accepted messages by custom_string, duplicates, call counts and the fault settings."""
    return jsonify(state().ledger_view())


@bp.route("/_sim/faults", methods=["GET", "PUT", "POST"])
def faults() -> Response:
    """Read or change the fault settings. A change applies every setting given or, when any is unknown or of the
    wrong type, none: a 400 in ClickSend's shape naming each such setting (`data`: what is wrong, by name)."""
    sim = state()
    if request.method != "GET":
        wrong = sim.faults.update(json_object())
        if wrong:
            return envelope(400, "BAD_REQUEST", "Invalid input.", wrong)
    return jsonify(sim.ledger_view()["faults"])


@bp.post("/_sim/inbound")
def add_inbound() -> Response:
    """Inject a reply as if a handset had sent it (`from`, `body`; optional `to`, `original_message_id`)."""
    body = json_object()
    if not body.get("from") or "body" not in body:
        return envelope(400, "BAD_REQUEST", "from and body are required.")
    return jsonify(state().add_inbound(body["from"], body["body"], body.get("to"), body.get("original_message_id")))


@bp.post("/_sim/reset")
def reset() -> Response:
    """Forget every message, receipt, reply and counter (fault settings stay)."""
    state().reset()
    return jsonify({"reset": True})


@bp.get("/healthz")
def healthz() -> Response:
    """The simulator is up."""
    return jsonify({"status": "ok", "simulator": True})
