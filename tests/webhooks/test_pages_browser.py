"""The operator pages in a real browser: Debian's headless chromium driven by Playwright, against the app served
over real HTTP on 127.0.0.1, with a real RQ worker doing what the pages hand over. Sign in (back to the page
asked for), find an event, open it, approve its held message and see it reach `sent`; at a desktop width and
at a 390 px phone's, where no page may scroll sideways. The browser is never downloaded (`.ci/run` installs
Debian's package) and may reach loopback only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import API_TOKEN, use_policies
from tests.test_end_to_end import post_order
from workers.entry.runtime import Runtime

CHROMIUM = "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"needs Debian's chromium at {CHROMIUM}")

# Loopback only: every name resolves to nothing but localhost, and any connection not to loopback goes to a
# closed loopback port instead (loopback itself is never proxied).
LOOPBACK_ONLY = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1", "--proxy-server=http://127.0.0.1:9",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run"]
WIDTHS = {"desktop": 1280, "phone": 390}
PAGES = ["/ui/", "/ui/events", "/ui/messages?state=sent", "/ui/approvals", "/ui/outboxes", "/ui/suppression",
         "/ui/rules"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=LOOPBACK_ONLY)
        yield launched
        launched.close()


def fits(page: Any, width: int) -> None:
    """Nothing on the page is wider than the window: no sideways scrolling."""
    scroll = page.evaluate("document.scrollingElement.scrollWidth")
    assert scroll <= width, f"{page.url} is {scroll}px wide in a {width}px window"


@pytest.mark.parametrize("size", WIDTHS)
def test_sign_in_find_an_event_and_approve_its_message_until_sent(browser: Any, size: str, e2e: Runtime,
                                                                  client, work, live_server: str) -> None:  # noqa: ANN001
    width = WIDTHS[size]
    use_policies(e2e, "policies:\n  default: {approval: manual}\n  paging: {}\n")
    event_id = post_order(client, f"browser-{size}")
    work()
    [mid] = e2e.store.messages.event_message_ids(event_id)
    # A phone as the browser emulates one: it honours (and needs) the page's viewport meta.
    phone = {"is_mobile": True, "has_touch": True, "device_scale_factor": 3} if size == "phone" else {}
    context = browser.new_context(viewport={"width": width, "height": 800}, **phone)
    page = context.new_page()

    page.goto(f"{live_server}/ui/events")  # asked for before signing in: the sign-in form, then back here
    fits(page, width)
    page.fill("input[name=name]", "Ann")
    page.fill("input[name=token]", "not the token")
    page.get_by_role("button", name="Sign in").click()
    assert page.locator("[role=alert]").inner_text() == "Sign-in failed: that API token is not the right one."
    page.fill("input[name=name]", "Ann")
    page.fill("input[name=token]", API_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    assert page.url == f"{live_server}/ui/events"

    page.fill("input[name=q]", f"browser-{size}")  # the id the shop gave it
    page.get_by_role("button", name="find").click()
    fits(page, width)
    page.click(f"a[href='/ui/events/{event_id}']")
    assert page.url == f"{live_server}/ui/events/{event_id}"
    fits(page, width)
    message = page.locator(f"section[id='{mid}']")
    assert message.locator("h3 .state").inner_text() == "held"
    message.locator("input[name=note]").fill("checked with the customer")
    message.locator("button[value=approve]").click()
    assert page.locator("[role=status]").inner_text() == f"{mid}: approved"
    assert page.url == f"{live_server}/ui/events/{event_id}"  # back where the form was

    work(with_scheduler=True)  # a real RQ worker fires, admits and sends it through the simulator
    page.reload()
    assert message.locator("h3 .state").inner_text() == "sent"
    assert "approved by Ann: checked with the customer" in message.locator("table.timeline").inner_text()
    for path in PAGES:
        page.goto(live_server + path)
        assert page.locator("h1").count() == 1
        fits(page, width)
    context.close()
