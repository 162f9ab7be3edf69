"""Signing in to the operator pages: the form's CSRF token, what a failed sign-in says, and where it returns to."""

from __future__ import annotations

import re

import pytest

from tests.conftest import API_TOKEN
from tests.webhooks.test_ingest import post_shop


def form_token(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def signed_in(browser) -> bool:  # noqa: ANN001
    return browser.get("/ui/approvals").status_code == 200


def test_a_sign_in_without_the_forms_token_is_refused_with_a_clear_page(app) -> None:  # noqa: ANN001
    # Login CSRF: another site's form posting the attacker's token must not sign the visitor in as the attacker.
    browser = app.test_client()
    refused = browser.post("/ui/login", data={"name": "Mallory", "token": API_TOKEN})
    assert refused.status_code == 403
    page = refused.get_data(as_text=True)
    assert "This sign-in form has expired or did not come from this site" in page
    assert 'name="token"' in page  # and a fresh form to sign in with
    assert not signed_in(browser)


def test_a_token_from_another_browsers_form_is_refused(app) -> None:  # noqa: ANN001
    attacker, victim = app.test_client(), app.test_client()
    theirs = form_token(attacker.get("/ui/login").get_data(as_text=True))
    victim.get("/ui/login")  # the victim has a pre-session cookie of their own
    sent = victim.post("/ui/login", data={"name": "Mallory", "token": API_TOKEN, "csrf": theirs})
    assert sent.status_code == 403
    assert not signed_in(victim)
    mine = form_token(attacker.get("/ui/login").get_data(as_text=True))
    assert mine == theirs  # the token stays the same for one browser until it signs in
    assert attacker.post("/ui/login", data={"name": "M", "token": API_TOKEN, "csrf": theirs}).status_code == 302


def test_a_failed_sign_in_says_so(app) -> None:  # noqa: ANN001
    browser = app.test_client()
    csrf = form_token(browser.get("/ui/login").get_data(as_text=True))
    failed = browser.post("/ui/login", data={"name": "Ann", "token": "wrong", "csrf": csrf})
    assert failed.status_code == 401
    assert "Sign-in failed: that API token is not the right one." in failed.get_data(as_text=True)
    assert not signed_in(browser)
    # The same form may be sent again with the right token.
    assert browser.post("/ui/login", data={"name": "Ann", "token": API_TOKEN, "csrf": csrf}).status_code == 302
    assert signed_in(browser)


def test_sign_in_returns_to_the_page_asked_for(app) -> None:  # noqa: ANN001
    browser = app.test_client()
    asked = browser.get("/ui/")
    assert asked.status_code == 401
    page = asked.get_data(as_text=True)
    assert 'name="next" value="/ui/"' in page
    done = browser.post("/ui/login", data={"name": "Ann", "token": API_TOKEN, "csrf": form_token(page),
                                           "next": "/ui/"})
    assert (done.status_code, done.headers["Location"]) == (302, "/ui/")


@pytest.mark.parametrize("target", ["https://evil.example/ui/", "//evil.example/ui/", "/\\evil.example/ui/",
                                    "/api/events/x", "/ui/../api/events/x", "/ui/%2e%2e/api/events/x",
                                    "/ui/%2E%2E/api/x", "/ui/.%2e/api/x", "ui/approvals", "/ui/\r\nX: y",
                                    "javascript:alert(1)"])
def test_next_only_leads_to_our_own_pages(app, target: str) -> None:  # noqa: ANN001
    browser = app.test_client()
    page = browser.get("/ui/login", query_string={"next": target}).get_data(as_text=True)
    assert 'name="next"' not in page
    done = browser.post("/ui/login", data={"name": "Ann", "token": API_TOKEN, "csrf": form_token(page),
                                           "next": target})
    assert (done.status_code, done.headers["Location"]) == (302, "/ui/")


def test_the_next_page_keeps_its_query(app) -> None:  # noqa: ANN001
    browser = app.test_client()
    page = browser.get("/ui/login", query_string={"next": "/ui/approvals?rule=x"}).get_data(as_text=True)
    done = browser.post("/ui/login", data={"name": "Ann", "token": API_TOKEN, "csrf": form_token(page),
                                           "next": "/ui/approvals?rule=x"})
    assert done.headers["Location"] == "/ui/approvals?rule=x"


def test_only_the_pages_open_the_signed_session(app, monkeypatch) -> None:  # noqa: ANN001
    # Opening the signed-cookie session builds a signing serializer: webhooks and the API must not pay for it.
    interface = app.session_interface
    built = []
    real = interface.get_signing_serializer
    monkeypatch.setattr(interface, "get_signing_serializer", lambda flask_app: built.append(1) or real(flask_app))
    browser = app.test_client()
    csrf = form_token(browser.get("/ui/login").get_data(as_text=True))
    assert browser.post("/ui/login", data={"name": "Ann", "token": API_TOKEN, "csrf": csrf}).status_code == 302
    assert built
    pages_opened = len(built)
    hook = post_shop(browser, webhook_id="wh-session")
    assert hook.status_code == 202, hook.get_json()
    assert browser.get("/healthz").status_code == 200
    assert len(built) == pages_opened
    assert "Set-Cookie" not in hook.headers
    assert signed_in(browser)  # the session cookie sent with the webhook is still the pages' own
