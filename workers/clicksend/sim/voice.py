"""The simulated voice resource: send, price, languages and cancel (`/v3/voice/...`), in the shape of
ClickSend's `VoiceMessage` model.

Owns the voice-only routes and the voice message shape; voice receipts live in `receipts`, voice history in
`history`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from workers.clicksend.sim.sending import send_or_price
from workers.clicksend.sim.wire import envelope, state

bp = Blueprint("voice", __name__)
BOTH = ("female", "male")
# The fact sheet's languages (§10). ClickSend says several have one voice only without saying which: these
# single-voice entries are the simulator's own choice, there so that a missing voice can be tried.
LANGUAGES: dict[str, tuple[str, ...] | str] = {
    "en-us": BOTH, "en-au": BOTH, "en-gb": BOTH, "en-in": "female", "en-gb-wls": "male", "cy-gb-wls": "male",
    "de-de": BOTH, "es-es": BOTH, "es-us": BOTH, "fr-ca": BOTH, "fr-fr": BOTH, "is-is": BOTH, "it-it": BOTH,
    "da-dk": BOTH, "nl-nl": BOTH, "nb-no": BOTH, "pl-pl": BOTH, "pt-pt": BOTH, "pt-br": BOTH, "ro-ro": BOTH,
    "ru-ru": BOTH, "sv-se": BOTH, "tr-tr": BOTH,
}


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
    # One voice is a string, several a list, as in ClickSend's example.
    langs = [{"code": c, "country": c, "gender": list(g) if isinstance(g, tuple) else g} for c, g in LANGUAGES.items()]
    return envelope(200, "SUCCESS", "Here are the possible languages.", langs)


@bp.put("/v3/voice/<message_id>/cancel")
def cancel(message_id: str) -> Response:
    """Cancel one scheduled call (one that already left stays sent); `data` is an empty list, as ClickSend's
    example and the SDK's model have it."""
    sent = state().by_id.get(message_id)
    if sent is None or sent.channel != "voice" or state().cancel(message_id) is None:
        return envelope(404, "NOT_FOUND", "Voice message not found.")
    return envelope(200, "SUCCESS", "Voice have been cancelled.", [])


@bp.put("/v3/voice/cancel-all")
def cancel_all() -> Response:
    """Cancel every scheduled call; says how many."""
    count = state().cancel_all("voice")
    return envelope(200, "SUCCESS", f"{count} voice messages have been cancelled.", {"count": count})
