"""The send and price reply that SMS, MMS and voice share: validation, faults, acceptance and totals.

Owns `/v3/{channel}/send` and `/price` semantics; each channel's blueprint calls `send_or_price` with its
own per-message shape. Must not register routes itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Response, request

from workers.clicksend.sim.wire import envelope, state
from workers.clicksend.simstate import CURRENCY

MAX_RECIPIENTS = 1000
Shape = Callable[[dict[str, Any], bool], dict[str, Any]]  # (accepted entry, is_send) -> the channel's reply entry


def same(entry: dict[str, Any], commit: bool) -> dict[str, Any]:
    """The accepted entry unchanged."""
    return entry


def send_or_price(channel: str, commit: bool, shape: Shape = same) -> Response:
    """Answer a send (`commit`) or a price check for `channel`, every message shaped by `shape`."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        return envelope(400, "BAD_REQUEST", "messages: a non-empty list is required.")
    sim = state()
    messages = sim.expand_lists(body["messages"])
    if len(messages) > MAX_RECIPIENTS:
        return envelope(400, "TOO_MANY_RECIPIENTS", f"At most {MAX_RECIPIENTS} recipients per request.")
    if channel == "mms" and not body.get("media_file"):
        return envelope(400, "INVALID_MEDIA_FILE", "media_file is required.")
    f = sim.faults
    bad = {f"messages.{i}.to": "The to field is invalid." for i, m in enumerate(messages)
           if isinstance(m, dict) and m.get("to") in f.bad_request_numbers}
    if bad:
        sim.count_call(request.path)
        return envelope(400, "BAD_REQUEST", "Invalid input.", bad)
    hang = commit and sim.chance(f.hang_rate)
    fail = commit and not hang and sim.chance(f.fail_after_accept)
    sim.count_call(request.path)
    media_file = body.get("media_file") if channel == "mms" else None
    entries = [sim.accept(channel, m if isinstance(m, dict) else {}, commit, media_file) for m in messages]
    if not commit:
        for entry in entries:  # a price reply has no send time (ClickSend gives empty strings)
            entry["date"] = entry["schedule"] = ""
    if hang:
        sim.count_call("hang")
        time.sleep(f.hang_seconds)
    if fail:
        return envelope(500, "INTERNAL_SERVER_ERROR", "Simulated failure after accepting the messages.")
    queued = sum(e["status"] == "SUCCESS" for e in entries)
    listed = [e for e in entries if not (commit and e.get("to") in f.omitted_numbers)]  # the rest: accepted, unsaid
    data = {
        "total_price": round(sum(float(e["message_price"]) for e in entries), 4),
        "total_count": len(entries), "queued_count": queued, "blocked_count": 0,
        "messages": [shape(e, commit) for e in listed], "_currency": CURRENCY,
    }
    if channel == "mms":
        data["_media_file_url"] = body["media_file"]
    verb = "Messages queued for delivery." if commit else "Here is some pricing."
    return envelope(200, "SUCCESS", verb, data)
