"""The simulated account resource: `GET /v3/account`.

Owns the account's shape; must not touch messages, receipts or faults (it only reads the balance setting).
"""

from __future__ import annotations

from flask import Blueprint, Response

from workers.clicksend.sim.gate import credentials
from workers.clicksend.sim.wire import envelope, state
from workers.clicksend.simstate import CURRENCY, SUBACCOUNT_ID, USER_ID

bp = Blueprint("account", __name__)


@bp.get("/v3/account")
def account() -> Response:
    """The account, as ClickSend's `Account` model has it (balance a decimal string)."""
    username = credentials().username or "simulator"
    return envelope(200, "SUCCESS", "Here's your account", {
        "user_id": USER_ID, "username": username, "user_email": "sim@example.com",
        "active": 1, "banned": 0, "balance": state().faults.balance, "user_phone": "+61400000000",
        "account": 1, "account_name": "Hookline Simulator", "country": "AU", "default_country_sms": "AU",
        "setting_sms_message_char_limit": 6, "timezone": "Australia/Melbourne", "_currency": CURRENCY,
        "_subaccount": {"subaccount_id": SUBACCOUNT_ID, "api_username": username},
    })
