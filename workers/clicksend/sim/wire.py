"""ClickSend's wire shapes that every simulated resource shares: the envelope, Laravel-style pagination,
request-body reading, and the app's `SimState`.

Owns no routes and no state of its own; must not know any one resource's fields.
"""

from __future__ import annotations

import math
from typing import Any

from flask import Response, current_app, jsonify, request

from workers.clicksend.simstate import SimState

STATE_KEY = "simstate"  # app.extensions key holding the app's SimState


def state() -> SimState:
    """The SimState of the app serving this request."""
    found: SimState = current_app.extensions[STATE_KEY]
    return found


def envelope(status: int, code: str, message: str, data: Any = None) -> Response:
    """ClickSend's reply shape."""
    response = jsonify({"http_code": status, "response_code": code, "response_msg": message, "data": data})
    response.status_code = status
    return response


def paginate(items: list[dict[str, Any]], path: str) -> dict[str, Any]:
    """Laravel-style pagination from `page` and `limit` (limit between 15 and 100, as ClickSend's)."""
    page = max(1, as_int(request.args.get("page"), 1))
    limit = min(100, max(15, as_int(request.args.get("limit"), 15)))
    last = max(1, math.ceil(len(items) / limit))
    chunk = items[(page - 1) * limit: page * limit]
    base = request.host_url.rstrip("/") + path
    return {
        "total": len(items), "per_page": limit, "current_page": page, "last_page": last,
        "next_page_url": f"{base}?page={page + 1}" if page < last else None,
        "prev_page_url": f"{base}?page={page - 1}" if page > 1 else None,
        "from": (page - 1) * limit + 1 if chunk else None, "to": (page - 1) * limit + len(chunk) if chunk else None,
        "data": chunk,
    }


def json_object() -> dict[str, Any]:
    """The request's JSON body when it is an object, else an empty one (ClickSend ignores a bad body there)."""
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def as_int(value: Any, default: int) -> int:
    """`value` as an int, or `default` when it is missing or not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def search(rows: list[dict[str, Any]], q: str) -> list[dict[str, Any]]:
    """`q=field:value,field2:value2`: the rows where every term matches, case-insensitively, as ClickSend's
    search does."""
    for term in filter(None, q.split(",")):
        field, _, value = term.partition(":")
        rows = [r for r in rows if str(r.get(field.strip(), "")).lower() == value.strip().lower()]
    return rows
