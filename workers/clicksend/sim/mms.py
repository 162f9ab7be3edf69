"""The simulated MMS resource: send and price (`/v3/mms/...`).

Owns the MMS-only routes; its history lives with the other channels' in `history`.
"""

from __future__ import annotations

from flask import Blueprint, Response

from workers.clicksend.sim.sending import send_or_price

bp = Blueprint("mms", __name__)


@bp.post("/v3/mms/send")
def send() -> Response:
    """Accept MMS (one `media_file` for the whole request)."""
    return send_or_price("mms", commit=True)


@bp.post("/v3/mms/price")
def price() -> Response:
    """What the MMS would cost; nothing is sent."""
    return send_or_price("mms", commit=False)
