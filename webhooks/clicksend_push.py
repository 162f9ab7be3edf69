"""ClickSend's pushed delivery receipts and inbound replies (`/clicksend/receipts`, `/clicksend/inbound`).

ClickSend signs nothing, so the checks are layered: a secret token in the URL, the account's user_id,
and (in `workers.flow.feedback`) a custom_string that must name a message we sent with that provider id.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

import redis
from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from webhooks.context import error, json_object, runtime
from workers.core.coerce import to_int
from workers.store.pushed import Pushed

bp = Blueprint("clicksend_push", __name__, url_prefix="/clicksend")
log = logging.getLogger("hookline.push")


def _payload() -> dict[str, Any]:
    if request.is_json:
        return json_object()
    return request.form.to_dict() or request.args.to_dict()


def _guarded(kind: str, token: str | None) -> ResponseReturnValue:
    rt = runtime()
    expected = rt.settings.receipt_token
    given = token or request.args.get("token") or ""
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return error(401, "unauthorized", "a valid receipt token is required in the URL")
    data = _payload()
    if not data:
        return error(400, "bad_request", "expected a form-encoded or JSON body")
    known = rt.store.account.account_facts().get("user_id")
    if known is None:
        # The workers' poller has not learned the account yet; ClickSend retries a push that is not a 2xx.
        return error(503, "unavailable", "the account is not known yet; try again shortly")
    if to_int(data.get("user_id")) != to_int(known):
        log.warning("push refused: user_id does not match the account")
        return error(403, "forbidden", "user_id does not match this account")
    token = rt.store.pushed.push(Pushed(kind, {str(k): v for k, v in data.items()}))
    if token:
        try:
            rt.enqueuer.apply_pushed(token)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            # It is kept; the periodic sweep starts the job this enqueue missed.
            log.warning("push kept, its job not started (%s); the sweep will start it", exc)
    rt.store.replicated()  # ClickSend does not push again after a 200: the push must survive a failover
    return jsonify({"ok": True, "queued": True})


@bp.post("/receipts")
@bp.post("/receipts/<token>")
def receipts(token: str | None = None) -> ResponseReturnValue:
    """A pushed delivery receipt, applied through the same code as polling."""
    return _guarded("receipt", token)


@bp.post("/inbound")
@bp.post("/inbound/<token>")
def inbound(token: str | None = None) -> ResponseReturnValue:
    """A pushed inbound reply (STOP/START handling and the link to the message it answers)."""
    return _guarded("inbound", token)
