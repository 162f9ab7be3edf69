"""Server-rendered operator pages under `/ui/`: log in with the API token, see the dashboard, and approve
or reject held messages. Every form carries a CSRF token: the sign-in form one bound to a pre-session cookie
(so another site cannot sign you in as someone else), the others one per session. Pages are escaped by
Jinja's autoescape."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Blueprint, Flask, redirect, render_template_string, request, session, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from webhooks.auth import token_ok
from webhooks.context import runtime
from workers.tools.trace import mask
from workers.wiring import handover

bp = Blueprint("ui", __name__, url_prefix="/ui")

_LAYOUT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Hookline · {{ title }}</title>
<style>body{font:15px system-ui,sans-serif;margin:2rem;max-width:70rem}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}.why{color:#8a4b00}
.flash{background:#eef6ee;padding:.5rem}.problem{background:#fbeaea;padding:.5rem}form.inline{display:inline}
</style></head><body>
<nav>Hookline{% if user %} · <a href="{{ url_for('ui.dashboard') }}">dashboard</a> ·
<a href="{{ url_for('ui.approvals_page') }}">approvals</a> · signed in as {{ user }}
<form class="inline" method="post" action="{{ url_for('ui.logout') }}">
<input type="hidden" name="csrf" value="{{ csrf }}"><button>sign out</button></form>{% endif %}</nav>
{% if flash %}<p class="flash">{{ flash }}</p>{% endif %}<h1>{{ title }}</h1>{{ body }}</body></html>"""

_LOGIN = """{% if problem %}<p class="problem">{{ problem }}</p>{% endif %}
<form method="post" action="{{ url_for('ui.login') }}"><input type="hidden" name="csrf" value="{{ login_csrf }}">
{% if next_url %}<input type="hidden" name="next" value="{{ next_url }}">{% endif %}
<p><label>Your name <input name="name" required maxlength="80"></label></p>
<p><label>API token <input name="token" type="password" required></label></p><button>Sign in</button></form>"""

_DASHBOARD = """<table><tr><th>state</th><th>messages</th></tr>{% for state, n in counts %}
<tr><td>{{ state }}</td><td>{{ n }}</td></tr>{% endfor %}</table>
{% if alerts %}<h2>Alerts</h2><ul>{% for name, a in alerts.items() %}<li>{{ name }}: {{ a.message }}</li>
{% endfor %}</ul>{% endif %}"""

_APPROVALS = """{% if not held %}<p>Nothing is waiting for approval.</p>{% else %}<table>
<tr><th>message</th><th>to</th><th>body</th><th>cost</th><th>why held</th><th>decide</th></tr>
{% for m in held %}<tr><td>{{ m.rule }}<br><small>{{ m.id }}<br>event {{ m.event_id }}</small></td>
<td>{{ m.to }}<br><small>{{ m.channel }}</small></td>
<td>{{ m.body }}<br><small>{{ m.encoding }}, {{ m.segments }} segment(s)</small></td><td>{{ m.estimate }}</td>
<td class="why">{{ m.why }}</td><td>{% for action in ("approve", "reject") %}
<form method="post" action="{{ url_for('ui.decide', message_id=m.id, action=action) }}">
<input type="hidden" name="csrf" value="{{ csrf }}"><input name="note" placeholder="note (optional)">
<button>{{ action }}</button></form>{% endfor %}</td></tr>{% endfor %}</table>{% endif %}"""


def init_app(app: Flask) -> None:
    """Session settings: a key derived from the API token, cookies HttpOnly and SameSite=Lax."""
    token = runtime_token(app)
    app.secret_key = hmac.new((token or secrets.token_hex(16)).encode(), b"hookline-ui-session",
                              hashlib.sha256).hexdigest()
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    app.register_blueprint(bp)


def runtime_token(app: Flask) -> str | None:
    token: str | None = app.extensions["hookline"].settings.api_token
    return token


def _page(title: str, body_template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    inner = Markup(render_template_string(body_template, **context))  # already escaped where it matters
    return render_template_string(_LAYOUT, title=title, body=inner, user=session.get("user"),
                                  csrf=session.get("csrf"), flash=session.pop("flash", None)), status


def _signed_in() -> bool:
    return bool(session.get("user")) and bool(session.get("csrf"))


def _csrf_ok(key: str = "csrf") -> bool:
    given = request.form.get("csrf", "")
    expected = session.get(key, "")
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _safe_next(target: str | None) -> str | None:
    """`target` when it is a page of ours under /ui/ (a path on this site, nothing that leaves it), else None."""
    if not target or "\\" in target or any(ord(c) < 0x21 for c in target):
        return None
    parts = urlsplit(target)
    # The browser decodes %2e%2e to ".." before it resolves the path, so judge the decoded segments.
    segments = unquote(parts.path).split("/")
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui/") or {".", ".."} & set(segments):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _login(status: int = 200, problem: str | None = None, next_url: str | None = None) -> ResponseReturnValue:
    """The sign-in form, with the token of this browser's pre-session cookie (made on first sight)."""
    token = session.get("login_csrf") or secrets.token_urlsafe(32)
    session["login_csrf"] = token
    return _page("Sign in", _LOGIN, status, login_csrf=token, next_url=_safe_next(next_url), problem=problem)


@bp.get("/login")
def login_page() -> ResponseReturnValue:
    """The sign-in form; `next` is the page to return to (one of ours under /ui/)."""
    return _login(next_url=request.args.get("next"))


@bp.post("/login")
def login() -> ResponseReturnValue:
    """Sign in with a name and the API token from this site's own form (403 without its token); a wrong
    token gets 401 and says so, without saying more."""
    next_url = request.form.get("next")
    if not _csrf_ok("login_csrf"):
        return _login(403, "This sign-in form has expired or did not come from this site. Sign in again here.",
                      next_url)
    if not token_ok(request.form.get("token")):
        return _login(401, "Sign-in failed: that API token is not the right one.", next_url)
    session.clear()
    session["user"] = (request.form.get("name") or "operator").strip()[:80] or "operator"
    session["csrf"] = secrets.token_urlsafe(32)
    return redirect(_safe_next(next_url) or url_for("ui.approvals_page"))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """Sign out (a CSRF-checked form, so another site cannot sign you out)."""
    if _signed_in() and _csrf_ok():
        session.clear()
    return redirect(url_for("ui.login_page"))


@bp.get("/")
def dashboard() -> ResponseReturnValue:
    """Messages by state and raised alerts."""
    if not _signed_in():
        return _login(401, next_url=request.full_path)
    store = runtime().store
    counts = [(s, n) for s, n in store.messages.state_counts().items() if n]
    return _page("Dashboard", _DASHBOARD, counts=counts, alerts=store.account.alerts())


@bp.get("/approvals")
def approvals_page() -> ResponseReturnValue:
    """Held messages with approve and reject forms."""
    if not _signed_in():
        return _login(401, next_url=request.full_path)
    rt = runtime()
    rows = []
    for msg in rt.store.messages.held():
        full = rt.store.messages.get_message(msg.id) or msg
        why = [t.get("reason") for t in full.timeline if t.get("to") == "held"]
        rows.append(full.to_json() | {"to": mask(full.to), "why": (why or ["held"])[-1]})
    return _page("Approvals", _APPROVALS, held=rows, csrf=session.get("csrf"))


@bp.post("/approvals/<message_id>/<action>")
def decide(message_id: str, action: str) -> ResponseReturnValue:
    """Approve or reject one message from the page."""
    if not _signed_in():
        return _login(401, next_url=url_for("ui.approvals_page"))
    if not _csrf_ok():
        return _page("Approvals", "<p>The form expired; reload the page and try again.</p>", 403)
    if action not in ("approve", "reject"):
        return _page("Approvals", "<p>Unknown action.</p>", 404)
    rt = runtime()
    result = handover.decide(rt.store, rt.enqueuer, [message_id], handover.Verdict(action), session["user"],
                             (request.form.get("note") or "")[:500], time.time())
    session["flash"] = f"{message_id}: {result[message_id]}"
    return redirect(url_for("ui.approvals_page"))
