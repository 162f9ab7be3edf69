"""The simulated sent-message history of every channel: filter by date, `q` and `order_by`, paged
(`GET /v3/{channel}/history`), each channel's rows in the shape of its SDK model.

Owns history's query semantics and row shapes; rows come from `SimState.history_item`. Changes no state.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from workers.clicksend.sim.wire import as_int, envelope, paginate, search, state

bp = Blueprint("history", __name__)


def mms_row(row: dict[str, Any]) -> dict[str, Any]:
    """MMS history (`ViewMmsHistoryDataAllOfDataInner`) has `date` and `message_parts` as strings."""
    return row | {"date": str(row["date"]), "date_added": row["date"], "message_parts": str(row["message_parts"])}


def voice_row(row: dict[str, Any]) -> dict[str, Any]:
    """Voice history (`VoiceMessage`) has `date` as a string and `date_added` as the integer."""
    return row | {"date": str(row["date"]), "date_added": row["date"]}


SHAPES = {"mms": mms_row, "voice": voice_row}


@bp.get("/v3/<any(sms, mms, voice):channel>/history")
def history(channel: str) -> Response:
    """Accepted messages between `date_from` and `date_to`, filtered and ordered as asked."""
    sim = state()
    date_from = as_int(request.args.get("date_from"), 0)
    date_to = as_int(request.args.get("date_to"), 2**62)
    rows = [sim.history_item(s) for s in sim.history(channel) if date_from <= s.date <= date_to]
    rows = search(rows, request.args.get("q") or "")
    _order(rows, request.args.get("order_by") or "date:asc")
    shape = SHAPES.get(channel)
    if shape is not None:
        rows = [shape(r) for r in rows]
    return envelope(200, "SUCCESS", "Here is your history.", paginate(rows, request.path))


def _order(rows: list[dict[str, Any]], order_by: str) -> None:
    field, _, direction = order_by.partition(":")
    rows.sort(key=lambda r: (r.get(field) is None, str(r.get(field) or "")), reverse=direction == "desc")
    if field == "date":  # dates compare as numbers, not as text
        rows.sort(key=lambda r: as_int(r["date"], 0), reverse=direction == "desc")
