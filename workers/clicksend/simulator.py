"""A local ClickSend v3 stand-in (Flask): same endpoints, envelopes, statuses and pagination, plus faults.

Serves `hookline simulator`, `hookline up` without credentials, the tests and the benchmarks. Admin API
under `/_sim/`: faults, ledger, inbound injection, reset. State lives in `simstate.SimState`.
"""

from __future__ import annotations

import base64
import math
import time
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from workers.clicksend.simstate import CURRENCY, SUBACCOUNT_ID, USER_ID, SimState

MAX_RECIPIENTS = 1000
SEND_CHANNELS = {"sms", "mms", "voice"}


def envelope(status: int, code: str, message: str, data: Any = None) -> Response:
    """ClickSend's reply shape."""
    response = jsonify({"http_code": status, "response_code": code, "response_msg": message, "data": data})
    response.status_code = status
    return response


def paginate(items: list[dict[str, Any]], path: str) -> dict[str, Any]:
    """Laravel-style pagination from `page` and `limit` (limit between 15 and 100, as ClickSend's)."""
    page = max(1, _int(request.args.get("page"), 1))
    limit = min(100, max(15, _int(request.args.get("limit"), 15)))
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


def _json_object() -> dict[str, Any]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def create_simulator(state: SimState | None = None, username: str | None = None, api_key: str | None = None,
                     bearer: str | None = None) -> Flask:
    """The simulator app. Credentials, when given, must match; otherwise any basic or bearer auth is accepted."""
    state = state or SimState()
    app = Flask("clicksend-simulator")
    app.extensions["simstate"] = state

    def authorised() -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value:
            return bearer is None or value == bearer
        if scheme.lower() == "basic" and value:
            try:
                user, _, key = base64.b64decode(value).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return bool(user and key) and (username is None or (user, key) == (username, api_key))
        return False

    @app.before_request
    def faults() -> Response | None:
        if request.path.startswith("/_sim/") or request.path == "/healthz":
            return None
        f = state.faults
        if f.latency:
            time.sleep(f.latency)
        if not authorised():
            return envelope(401, "UNAUTHORIZED", "Invalid credentials.")
        wait = state.rate_limited()
        if wait is not None or state.chance(f.rate_429):
            state.count_call("429")
            response = envelope(429, "TOO_MANY_REQUESTS", "Too many requests.")
            response.headers["Retry-After"] = str(int(wait or 1))
            return response
        if state.chance(f.rate_500):
            return envelope(500, "INTERNAL_SERVER_ERROR", "Simulated failure.")
        return None

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_FOUND", 400: "BAD_REQUEST"}.get(exc.code or 500, "ERROR")
        return envelope(exc.code or 500, code, exc.description or exc.name)

    @app.get("/v3/account")
    def account() -> Response:
        return envelope(200, "SUCCESS", "Here's your account", {
            "user_id": USER_ID, "username": username or "simulator", "user_email": "sim@example.com",
            "active": 1, "banned": 0, "balance": state.faults.balance, "user_phone": "+61400000000",
            "account": 1, "account_name": "Hookline Simulator", "country": "AU", "default_country_sms": "AU",
            "setting_sms_message_char_limit": 6, "timezone": "Australia/Melbourne", "_currency": CURRENCY,
            "_subaccount": {"subaccount_id": SUBACCOUNT_ID, "api_username": username or "simulator"},
        })

    def send_or_price(channel: str, commit: bool) -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return envelope(400, "BAD_REQUEST", "messages: a non-empty list is required.")
        messages = body["messages"]
        if len(messages) > MAX_RECIPIENTS:
            return envelope(400, "TOO_MANY_RECIPIENTS", f"At most {MAX_RECIPIENTS} recipients per request.")
        if channel == "mms" and not body.get("media_file"):
            return envelope(400, "INVALID_MEDIA_FILE", "media_file is required.")
        f = state.faults
        bad = {f"messages.{i}.to": "The to field is invalid." for i, m in enumerate(messages)
               if isinstance(m, dict) and m.get("to") in f.bad_request_numbers}
        if bad:
            state.count_call(request.path)
            return envelope(400, "BAD_REQUEST", "Invalid input.", bad)
        hang = commit and state.chance(f.hang_rate)
        fail = commit and not hang and state.chance(f.fail_after_accept)
        state.count_call(request.path)
        entries = [state.accept(channel, m if isinstance(m, dict) else {}, commit) for m in messages]
        if not commit:
            for entry in entries:  # a price reply has no send time (ClickSend gives empty strings)
                entry["date"] = entry["schedule"] = ""
        if hang:
            time.sleep(f.hang_seconds)
        if fail:
            return envelope(500, "INTERNAL_SERVER_ERROR", "Simulated failure after accepting the messages.")
        queued = sum(e["status"] == "SUCCESS" for e in entries)
        data = {
            "total_price": round(sum(float(e["message_price"]) for e in entries), 4),
            "total_count": len(entries), "queued_count": queued, "blocked_count": 0,
            "messages": entries, "_currency": CURRENCY,
        }
        if channel == "mms":
            data["_media_file_url"] = body["media_file"]
        verb = "Messages queued for delivery." if commit else "Here is some pricing."
        return envelope(200, "SUCCESS", verb, data)

    @app.post("/v3/<channel>/send")
    def send(channel: str) -> Response:
        if channel not in SEND_CHANNELS:
            return envelope(404, "NOT_FOUND", "Unknown endpoint.")
        return send_or_price(channel, commit=True)

    @app.post("/v3/<channel>/price")
    def price(channel: str) -> Response:
        if channel not in SEND_CHANNELS:
            return envelope(404, "NOT_FOUND", "Unknown endpoint.")
        return send_or_price(channel, commit=False)

    @app.get("/v3/<channel>/history")
    def history(channel: str) -> Response:
        if channel not in SEND_CHANNELS:
            return envelope(404, "NOT_FOUND", "Unknown endpoint.")
        date_from = _int(request.args.get("date_from"), 0)
        date_to = _int(request.args.get("date_to"), 2**62)
        rows = [state.history_item(s) for s in state.history(channel) if date_from <= s.date <= date_to]
        for term in filter(None, (request.args.get("q") or "").split(",")):
            field, _, value = term.partition(":")
            rows = [r for r in rows if str(r.get(field.strip(), "")).lower() == value.strip().lower()]
        order_field, _, direction = (request.args.get("order_by") or "date:asc").partition(":")
        rows.sort(key=lambda r: (r.get(order_field) is None, str(r.get(order_field) or "")),
                  reverse=direction == "desc")
        if order_field == "date":
            rows.sort(key=lambda r: r["date"], reverse=direction == "desc")
        return envelope(200, "SUCCESS", "Here is your history.", paginate(rows, request.path))

    @app.get("/v3/<channel>/receipts")
    def receipts(channel: str) -> Response:
        if channel not in ("sms", "voice", "mms"):
            return envelope(404, "NOT_FOUND", "Unknown endpoint.")
        return envelope(200, "SUCCESS", "Here are your delivery receipts.",
                        paginate(state.unread_receipts(channel), request.path))

    @app.get("/v3/sms/receipts/<message_id>")
    def receipt(message_id: str) -> Response:
        sent = state.by_id.get(message_id)
        if sent is None:
            return envelope(404, "NOT_FOUND", "Receipt not found.")
        return envelope(200, "SUCCESS", "Your receipt.", state.receipt_of(sent))

    @app.put("/v3/<channel>/receipts-read")
    def receipts_read(channel: str) -> Response:
        body = _json_object()
        state.mark_receipts_read(channel, body.get("date_before"))
        return envelope(200, "SUCCESS", "Receipts have been marked as read.", [])

    @app.get("/v3/sms/inbound")
    def inbound() -> Response:
        with state.lock:
            unread = [{k: v for k, v in m.items() if k != "read"} for m in state.inbound if not m["read"]]
        return envelope(200, "SUCCESS", "Here are your inbound messages.", paginate(unread, request.path))

    @app.put("/v3/sms/inbound-read")
    def inbound_read() -> Response:
        before = _json_object().get("date_before")
        with state.lock:
            for m in state.inbound:
                if before is None or m["timestamp"] <= before:
                    m["read"] = True
        return envelope(200, "SUCCESS", "Inbound messages have been marked as read.", [])

    @app.put("/v3/sms/<message_id>/cancel")
    def cancel(message_id: str) -> Response:
        if message_id not in state.by_id:
            return envelope(404, "NOT_FOUND", "Message not found.")
        return envelope(200, "SUCCESS", "Message cancelled.", {"message_id": message_id})

    @app.get("/v3/voice/lang")
    def voice_lang() -> Response:
        langs = [{"code": c, "country": c, "gender": ["female", "male"]}
                 for c in ("en-us", "en-au", "en-gb", "de-de", "fr-fr", "es-es")]
        return envelope(200, "SUCCESS", "Here are the possible languages.", langs)

    @app.get("/v3/lists")
    def lists() -> Response:
        return envelope(200, "SUCCESS", "Here are your lists.", paginate(
            [{"list_id": 428, "list_name": "Opt-Out List", "_contacts_count": 0}], request.path))

    # --- admin --------------------------------------------------------------------------------------

    @app.get("/_sim/ledger")
    def ledger() -> Response:
        return jsonify(state.ledger_view())

    @app.route("/_sim/faults", methods=["GET", "PUT", "POST"])
    def set_faults() -> Response:
        if request.method != "GET":
            try:
                unknown = state.faults.update(_json_object())
            except (TypeError, ValueError) as exc:
                return envelope(400, "BAD_REQUEST", f"bad fault setting: {exc}")
            if unknown:
                return envelope(400, "BAD_REQUEST", f"unknown fault settings: {', '.join(unknown)}")
        return jsonify(state.ledger_view()["faults"])

    @app.post("/_sim/inbound")
    def add_inbound() -> Response:
        body = _json_object()
        if not body.get("from") or "body" not in body:
            return envelope(400, "BAD_REQUEST", "from and body are required.")
        return jsonify(state.add_inbound(body["from"], body["body"], body.get("to"),
                                         body.get("original_message_id")))

    @app.post("/_sim/reset")
    def reset() -> Response:
        state.reset()
        return jsonify({"reset": True})

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok", "simulator": True})

    return app
