"""Signing in and out of the operator pages, and the guard in front of every other page.

The sign-in form carries a CSRF token bound to a pre-session cookie (so another site cannot sign you in as
someone else); once signed in, every form carries the session's token and the guard refuses a POST without it.
`next` returns to the page asked for, only ever one of ours under /ui/.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Blueprint, redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from webhooks.auth import token_ok
from webhooks.ui.base import page, safe_next

bp = Blueprint("auth", __name__)

_OPEN = frozenset({"ui.auth.login_page", "ui.auth.login"})


def signed_in() -> bool:
    """True when this browser's session belongs to someone who signed in."""
    return bool(session.get("user")) and bool(session.get("csrf"))


def csrf_ok(key: str = "csrf") -> bool:
    """True when the form's `csrf` field matches the session's token `key`."""
    given = request.form.get("csrf", "")
    expected = session.get(key, "")
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def guard() -> ResponseReturnValue | None:
    """Before every page but sign-in: the sign-in form (401) for someone not signed in, returning them to the
    page they asked for; 403 for a form without this session's CSRF token."""
    if request.endpoint in _OPEN:
        return None
    if not signed_in():
        back = request.full_path if request.method == "GET" else request.form.get("back")
        return login_form(401, next_url=back)
    if request.method == "POST" and not csrf_ok():
        return page("message.html", 403, title="Form expired",
                    text="The form expired or did not come from this site; reload the page and try again.")
    return None


def login_form(status: int = 200, problem: str | None = None, next_url: str | None = None) -> ResponseReturnValue:
    """The sign-in form, with the token of this browser's pre-session cookie (made on first sight)."""
    token = session.get("login_csrf") or secrets.token_urlsafe(32)
    session["login_csrf"] = token
    return page("login.html", status, title="Sign in", login_csrf=token, next_url=safe_next(next_url),
                problem=problem)


@bp.get("/login")
def login_page() -> ResponseReturnValue:
    """The sign-in form; `next` is the page to return to (one of ours under /ui/)."""
    return login_form(next_url=request.args.get("next"))


@bp.post("/login")
def login() -> ResponseReturnValue:
    """Sign in with a name and the API token from this site's own form (403 without its token); a wrong
    token gets 401 and says so, without saying more."""
    next_url = request.form.get("next")
    if not csrf_ok("login_csrf"):
        return login_form(403, "This sign-in form has expired or did not come from this site. Sign in again here.",
                          next_url)
    if not token_ok(request.form.get("token")):
        return login_form(401, "Sign-in failed: that API token is not the right one.", next_url)
    session.clear()
    session["user"] = (request.form.get("name") or "operator").strip()[:80] or "operator"
    session["csrf"] = secrets.token_urlsafe(32)
    return redirect(safe_next(next_url) or url_for("ui.dashboard.page"))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """Sign out (a CSRF-checked form, so another site cannot sign you out)."""
    session.clear()
    return redirect(url_for("ui.auth.login_page"))
