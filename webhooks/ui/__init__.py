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

from flask import Blueprint, Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from webhooks.ui import approvals, auth, dashboard, events, messages, outboxes, rules, suppression
from webhooks.ui.base import install_filters

bp = Blueprint("ui", __name__, url_prefix="/ui")
bp.before_request(auth.guard)
for child in (auth.bp, dashboard.bp, events.bp, messages.bp, approvals.bp, outboxes.bp, suppression.bp, rules.bp):
    bp.register_blueprint(child)


class PagesSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie session, opened for the pages only. Every other request that reaches Flask (the API,
    health, metrics; webhooks are answered before Flask) gets Flask's null session, which reads as empty, refuses
    writes, and is never saved, so no cookie is set: opening one costs a signing serializer each."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """The session of a request under /ui; None (Flask's null session) for any other."""
        if request.path.startswith(f"{bp.url_prefix}/") or request.path == bp.url_prefix:
            return super().open_session(app, request)
        return None


def init_app(app: Flask) -> None:
    """Session settings (a key derived from the API token, cookies HttpOnly and SameSite=Lax; opened for the
    pages only), the pages' template filters, and the blueprints."""
    token: str | None = app.extensions["hookline"].settings.api_token
    app.session_interface = PagesSessions()
    app.secret_key = hmac.new((token or secrets.token_hex(16)).encode(), b"hookline-ui-session",
                              hashlib.sha256).hexdigest()
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    install_filters(app)
    app.register_blueprint(bp)
