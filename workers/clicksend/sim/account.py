"""The simulated account resource: the account (`GET /v3/account`) and its monthly usage per subaccount
(`GET /v3/account/usage/{year}/{month}/subaccount`).

Owns the account's shapes; reads the messages only to total them, and touches no state.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from workers.clicksend.sim.gate import credentials
from workers.clicksend.sim.wire import envelope, state
from workers.clicksend.simstate import CURRENCY, SUBACCOUNT_ID, USER_ID

bp = Blueprint("account", __name__)


def _username() -> str:
    return credentials().username or "simulator"


@bp.get("/v3/account")
def account() -> Response:
    """The account, as ClickSend's `Account` model has it (balance a decimal string)."""
    return envelope(200, "SUCCESS", "Here's your account", {
        "user_id": USER_ID, "username": _username(), "user_email": "sim@example.com",
        "active": 1, "banned": 0, "balance": state().faults.balance, "user_phone": "+61400000000",
        "account": 1, "account_name": "Hookline Simulator", "country": "AU", "default_country_sms": "AU",
        "setting_sms_message_char_limit": 6, "timezone": "Australia/Melbourne", "_currency": CURRENCY,
        "_subaccount": {"subaccount_id": SUBACCOUNT_ID, "api_username": _username()},
    })


@bp.get("/v3/account/usage/<int:year>/<int:month>/subaccount")
def usage(year: int, month: int) -> Response:
    """What the (one) subaccount sent that UTC month, per channel (`ViewAccountUsageData`)."""
    data: dict[str, Any] = {"_currency": CURRENCY}
    for channel, (count, price) in state().usage(year, month).items():
        # The SDK's model has the per-subaccount count as a string and the totals' count as an integer.
        data[channel] = [{"subaccount_id": SUBACCOUNT_ID, "username": _username(), "total_count": str(count),
                          "total_price": price, "notes": None}] if count else []
        data[f"{channel}_total"] = {"count": count, "price": price}
    return envelope(200, "SUCCESS", "Here is your account usage.", data)
