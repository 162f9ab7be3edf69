"""A stand-in for Maton's connection API (`https://ctrl.maton.ai/connections...`): list, create, view and
delete the connections a Maton key has, in the shape Maton's public docs show (`{"connections": [...]}`,
`{"connection": {...}}`; connection_id, status, creation_time, last_updated_time, url, app, metadata).

Third-party shapes: Maton documents no error bodies, so errors here are `{"error", "message"}`. Owns those
routes and their state on `SimState.connections`; the bearer check is the gate's.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, request

from workers.clicksend.sim.wire import json_object, state
from workers.clicksend.simstate import SimState

bp = Blueprint("maton", __name__)


def _error(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": code, "message": message})
    response.status_code = status
    return response


def new_connection(app: str, status: str, now: float, connection_id: str | None = None) -> dict[str, Any]:
    """A connection row as Maton shows it."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(now))
    cid = connection_id or str(uuid.uuid4())
    return {"connection_id": cid, "status": status, "creation_time": stamp, "last_updated_time": stamp,
            "url": f"/_sim/connect?session_token={cid}", "app": app, "metadata": {}}


def seed(sim: SimState, connection_id: str) -> None:
    """The connection the simulator was started with, ACTIVE for ClickSend."""
    sim.connections.setdefault(connection_id, new_connection("clicksend", "ACTIVE", sim.clock(), connection_id))


@bp.get("/connections")
def connections() -> Response:
    """The key's connections (`app`, `status` filter them)."""
    app, status = request.args.get("app"), request.args.get("status")
    rows = [c for c in state().connections.values()
            if (app is None or c["app"] == app) and (status is None or c["status"] == status)]
    return jsonify({"connections": rows})


@bp.post("/connections")
def create() -> Response:
    """A new connection for `app`, PENDING until someone completes it at its `url`."""
    app = json_object().get("app")
    if not isinstance(app, str) or not app:
        return _error(400, "BAD_REQUEST", "app is required.")
    row = new_connection(app, "PENDING", state().clock())
    state().connections[row["connection_id"]] = row
    return jsonify({"connection": row})


@bp.get("/connections/<connection_id>")
def show(connection_id: str) -> Response:
    """One connection."""
    row = state().connections.get(connection_id)
    return jsonify({"connection": row}) if row else _error(404, "NOT_FOUND", "Connection not found.")


@bp.delete("/connections/<connection_id>")
def delete(connection_id: str) -> Response:
    """Delete a connection."""
    if state().connections.pop(connection_id, None) is None:
        return _error(404, "NOT_FOUND", "Connection not found.")
    return jsonify({})
