"""The simulated voice resource: send, price and languages (`/v3/voice/...`), in the shape of ClickSend's
`VoiceMessage` model.

Owns the voice-only routes and the voice message shape; voice receipts live in `receipts`, voice history in
`history`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from workers.clicksend.sim.sending import send_or_price
from workers.clicksend.sim.wire import envelope

bp = Blueprint("voice", __name__)
LANGUAGES = ("en-us", "en-au", "en-gb", "de-de", "fr-fr", "es-es")


def voice_message(entry: dict[str, Any], commit: bool) -> dict[str, Any]:
    """An accepted message as a voice reply has it: `date` is a string there and `date_added` the integer."""
    if not commit:
        return entry
    return entry | {"date": str(entry["date"]), "date_added": entry["date"]}


@bp.post("/v3/voice/send")
def send() -> Response:
    """Accept text-to-speech calls."""
    return send_or_price("voice", commit=True, shape=voice_message)


@bp.post("/v3/voice/price")
def price() -> Response:
    """What the calls would cost; nothing is sent."""
    return send_or_price("voice", commit=False, shape=voice_message)


@bp.get("/v3/voice/lang")
def languages() -> Response:
    """The voice languages and their genders."""
    langs = [{"code": c, "country": c, "gender": ["female", "male"]} for c in LANGUAGES]
    return envelope(200, "SUCCESS", "Here are the possible languages.", langs)
