"""The simulated contact lists: only the account's Opt-Out List (`GET /v3/lists`).

Owns the lists' shape; Hookline keeps its own suppression list, so contacts are not simulated.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from workers.clicksend.sim.wire import envelope, paginate

bp = Blueprint("lists", __name__)
OPT_OUT_LIST = {"list_id": 428, "list_name": "Opt-Out List", "_contacts_count": 0}


@bp.get("/v3/lists")
def lists() -> Response:
    """The account's lists, paged."""
    return envelope(200, "SUCCESS", "Here are your lists.", paginate([dict(OPT_OUT_LIST)], request.path))
