"""Server-rendered operator pages under `/ui/`: sign in with the API token, then the dashboard, events and an
event's story, messages by state, approvals, outboxes, the suppression list and the loaded rules.

The pages read the store and hand every action over through `workers.wiring.handover` (the workers do the
rest); templates live in `webhooks/templates/ui/`, escaped by Jinja's autoescape. One blueprint per page group,
nested under this one, whose guard (`auth.guard`) signs people in and checks every form's CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Blueprint, Flask

from webhooks.ui import approvals, auth, dashboard, events, messages, outboxes, rules, suppression
from webhooks.ui.base import install_filters

bp = Blueprint("ui", __name__, url_prefix="/ui")
bp.before_request(auth.guard)
for child in (auth.bp, dashboard.bp, events.bp, messages.bp, approvals.bp, outboxes.bp, suppression.bp, rules.bp):
    bp.register_blueprint(child)


def init_app(app: Flask) -> None:
    """Session settings (a key derived from the API token, cookies HttpOnly and SameSite=Lax), the pages'
    template filters, and the blueprints."""
    token: str | None = app.extensions["hookline"].settings.api_token
    app.secret_key = hmac.new((token or secrets.token_hex(16)).encode(), b"hookline-ui-session",
                              hashlib.sha256).hexdigest()
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    install_filters(app)
    app.register_blueprint(bp)
