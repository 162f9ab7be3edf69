"""A stand-in for Maton's connection API (`https://ctrl.maton.ai/connections...`): list, create, view and
delete the connections a Maton key has, in the shape Maton's public docs show (`{"connections": [...]}`,
`{"connection": {...}}`; connection_id, status, creation_time, last_updated_time, url, app, metadata).

A new connection's `url` is where a person finishes it: Maton's page asks there for the ClickSend credentials
the gateway will use; the simulator's (`/_sim/connect`, open like the rest of `/_sim/`) has nothing to ask, so
opening it makes the connection ACTIVE and says so.

Third-party shapes: Maton documents no error bodies, so errors here are `{"error", "message"}`. Owns those
routes and their state on `SimState.connections` (changed under `SimState.lock`); the bearer check is the
gate's.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, request
from markupsafe import escape

from workers.clicksend.sim.wire import json_object, state
from workers.clicksend.simstate import SimState

bp = Blueprint("maton", __name__)
CONNECT_PATH = "/_sim/connect"  # the simulator's stand-in for the page a new connection's `url` leads to


def _error(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": code, "message": message})
    response.status_code = status
    return response


def _stamp(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(now))


def new_connection(app: str, status: str, now: float, connection_id: str | None = None) -> dict[str, Any]:
    """A connection row as Maton shows it (its `url` a path on the simulator: `_shown` makes it whole)."""
    stamp = _stamp(now)
    cid = connection_id or str(uuid.uuid4())
    return {"connection_id": cid, "status": status, "creation_time": stamp, "last_updated_time": stamp,
            "url": f"{CONNECT_PATH}?session_token={cid}", "app": app, "metadata": {}}


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    """A copy of `row` for the caller, its `url` on the host it asked (Maton's is a whole URL to open)."""
    return row | {"url": request.host_url.rstrip("/") + row["url"]}


def seed(sim: SimState, connection_id: str) -> None:
    """The connection the simulator was started with, ACTIVE for ClickSend."""
    sim.connections.setdefault(connection_id, new_connection("clicksend", "ACTIVE", sim.clock(), connection_id))


@bp.get("/connections")
def connections() -> Response:
    """The key's connections (`app`, `status` filter them)."""
    app, status = request.args.get("app"), request.args.get("status")
    sim = state()
    with sim.lock:
        rows = [_shown(c) for c in sim.connections.values()
                if (app is None or c["app"] == app) and (status is None or c["status"] == status)]
    return jsonify({"connections": rows})


@bp.post("/connections")
def create() -> Response:
    """A new connection for `app`, PENDING until someone completes it at its `url`."""
    app = json_object().get("app")
    if not isinstance(app, str) or not app:
        return _error(400, "BAD_REQUEST", "app is required.")
    sim = state()
    row = new_connection(app, "PENDING", sim.clock())
    with sim.lock:
        sim.connections[row["connection_id"]] = row
    return jsonify({"connection": _shown(row)})


@bp.get("/connections/<connection_id>")
def show(connection_id: str) -> Response:
    """One connection."""
    sim = state()
    with sim.lock:
        row = sim.connections.get(connection_id)
        shown = _shown(row) if row else None
    return jsonify({"connection": shown}) if shown else _error(404, "NOT_FOUND", "Connection not found.")


@bp.delete("/connections/<connection_id>")
def delete(connection_id: str) -> Response:
    """Delete a connection."""
    sim = state()
    with sim.lock:
        gone = sim.connections.pop(connection_id, None)
    if gone is None:
        return _error(404, "NOT_FOUND", "Connection not found.")
    return jsonify({})


@bp.get(CONNECT_PATH)
def connect() -> Response:
    """The page a new connection's `url` opens: the connection named by `session_token` becomes ACTIVE (Maton's
    page would first ask for the ClickSend credentials), and the page says so; an unknown one is a 404 page."""
    token = request.args.get("session_token", "")
    sim = state()
    with sim.lock:
        row = sim.connections.get(token)
        if row is not None:
            row.update(status="ACTIVE", last_updated_time=_stamp(sim.clock()))
    if row is None:
        return _page(404, "No such connection", "No connection waits to be finished under this link: it may have "
                                                "been deleted. Create a new one.")
    return _page(200, "Connection active", f"The {escape(row['app'])} connection {escape(row['connection_id'])} "
                                           "is active: the gateway now relays calls through it.")


def _page(status: int, title: str, text: str) -> Response:
    body = (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\n"
            f"<body><h1>{title}</h1><p>{text}</p></body></html>\n")
    return Response(body, status=status, mimetype="text/html")
