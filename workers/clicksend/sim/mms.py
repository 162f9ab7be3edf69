"""The simulated MMS resource: send and price (`/v3/mms/...`), in the shape of ClickSend's `Mms` model.

Owns the MMS-only routes and the MMS message shape; its history lives with the other channels' in `history`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from workers.clicksend.sim.sending import send_or_price

bp = Blueprint("mms", __name__)


def mms_message(entry: dict[str, Any], commit: bool) -> dict[str, Any]:
    """An accepted message as an MMS reply has it: `schedule` is a string there, unlike SMS's integer."""
    return (entry | {"schedule": str(entry["schedule"])}) if commit else entry


@bp.post("/v3/mms/send")
def send() -> Response:
    """Accept MMS (one `media_file` for the whole request)."""
    return send_or_price("mms", commit=True, shape=mms_message)


@bp.post("/v3/mms/price")
def price() -> Response:
    """What the MMS would cost; nothing is sent."""
    return send_or_price("mms", commit=False, shape=mms_message)
