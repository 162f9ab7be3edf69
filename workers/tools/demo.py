"""`hookline demo`: post signed, realistic events for the three uses to a running Hookline and follow what
happens to them, live, until it settles.

Owns the demo's payloads (the shipped examples, package data read through `tools.examples` so an installed
Hookline needs no checkout, with fresh ids and future times), how each sender signs them, checking the address
it posts to first, and the rolling account printed while the timelines fill in. Reads the store only (as
`hookline trace` does); never changes it, and never sends anything itself but the webhooks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests

from workers.core.lifecycle import State
from workers.errors import ToolError
from workers.store import Store
from workers.tools import examples
from workers.tools.trace import mask, story, when

SETTLED = frozenset({State.HELD, State.SCHEDULED, State.DELIVERED, State.UNDELIVERED, State.FAILED,
                     State.SUPPRESSED, State.REJECTED, State.EXPIRED, State.CANCELLED, State.UNKNOWN})
"""States a demo message can stop in: nothing more happens to it without a person or the clock."""
HEALTH_TIMEOUT = 5.0
"""Seconds to wait for the server's `/healthz`, which answers without touching Redis."""


@dataclass(frozen=True)
class Post:
    """One webhook to send: where, the exact body, its signed headers, and what its messages should end as."""

    label: str
    source: str
    body: bytes
    headers: Mapping[str, str]
    expect: frozenset[State]


@dataclass
class Followed:
    """An accepted event being followed: what was printed of it already."""

    label: str
    event_id: str
    expect: frozenset[State]
    seen: set[tuple[str, int]] = field(default_factory=set)
    hinted: set[str] = field(default_factory=set)


def _b64(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def order(secret: str, run: str) -> Post:
    """Shopify's sample order (examples/shop-order.json) with a fresh id, signed as Shopify does."""
    data = json.loads(examples.event("shop-order.json"))
    data["id"] = int(time.time() * 1000)
    data["name"] = f"#D{run[:6]}"
    body = json.dumps(data).encode()
    headers = {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
               "X-Shopify-Webhook-Id": f"demo-{run}", "X-Shopify-Shop-Domain": "demo.myshopify.com",
               "X-Shopify-Hmac-Sha256": _b64(secret, body)}
    # Quiet hours may defer it (scheduled); a policy may hold it for a person.
    return Post("order", "shop", body, headers, frozenset({State.DELIVERED, State.SCHEDULED, State.HELD}))


def alert(token: str, run: str) -> Post:
    """Alertmanager's firing notification (examples/alertmanager-firing.json) for a group of its own."""
    data = json.loads(examples.event("alertmanager-firing.json"))
    data["groupKey"] = data["groupKey"].rstrip("}") + f', demo="{run}"}}'  # Alertmanager dedupes on it
    for item in data["alerts"]:  # a body of its own: a repeat within duplicate_window is not paged again
        item["annotations"]["summary"] += f" (demo {run})"
        item["labels"]["demo"] = run
    body = json.dumps(data).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    return Post("alert", "alerts", body, headers, frozenset({State.DELIVERED}))


def bookings(secret: str, run: str, now: datetime) -> list[Post]:
    """A Cal.com booking three days out, moved a day later (a new uid naming the old in rescheduleUid), then
    cancelled: each signed as Cal.com does. Its reminders end cancelled."""
    created = json.loads(examples.event("booking-created.json"))
    moved = json.loads(examples.event("booking-rescheduled.json"))
    cancelled = json.loads(examples.event("booking-cancelled.json"))
    start = (now + timedelta(days=3)).replace(hour=23, minute=0, second=0, microsecond=0)
    first, second = f"demo-{run}-a", f"demo-{run}-b"
    created["payload"] |= {"uid": first, "startTime": _iso(start), "endTime": _iso(start + timedelta(hours=1))}
    number = created["payload"]["smsReminderNumber"]
    moved["payload"] |= {"uid": second, "rescheduleUid": first, "smsReminderNumber": number,
                         "startTime": _iso(start + timedelta(days=1)),
                         "endTime": _iso(start + timedelta(days=1, hours=1))}
    cancelled["payload"] |= {"uid": second, "startTime": moved["payload"]["startTime"]}
    posts = []
    for i, (label, data) in enumerate([("booking", created), ("booking moved", moved),
                                       ("booking cancelled", cancelled)]):
        data["createdAt"] = _iso(now + timedelta(seconds=i))  # the order rules compare
        body = json.dumps(data).encode()
        headers = {"Content-Type": "application/json", "X-Cal-Signature-256": _hex(secret, body)}
        expect = frozenset() if label == "booking cancelled" else frozenset({State.CANCELLED})
        posts.append(Post(label, "bookings", body, headers, expect))
    return posts


def target(url: str) -> str:
    """`url` as the base the demo posts to (no trailing slash). ToolError saying what is wrong when it is not an
    http(s) address with a host and a valid port."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError as exc:
        raise ToolError(f"{url!r} is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ToolError(f"{url!r} is not an http:// or https:// address with a host (e.g. http://127.0.0.1:8000)")
    return url.strip().rstrip("/")


def check_answers(base: str) -> None:
    """That a Hookline answers at `base` (its `/healthz`); ToolError saying what happened instead, in one line."""
    try:
        reply = requests.get(f"{base}/healthz", timeout=HEALTH_TIMEOUT)
    except requests.RequestException as exc:
        raise ToolError(f"nothing answers at {base} ({_why(exc)}): is `hookline up` running? (--url names "
                        "another address)") from None
    if reply.status_code != 200:
        raise ToolError(f"{base}/healthz answered {reply.status_code}: is Hookline what runs there?")


def _why(exc: requests.RequestException) -> str:
    """A requests failure in a few words: its errno's text when it has one (`Connection refused`)."""
    if isinstance(exc, requests.Timeout):
        return f"no answer within {HEALTH_TIMEOUT:.0f} s"
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
    return found.group(1).strip() if found else type(exc).__name__


def post(base: str, item: Post, say: Callable[[str], None] = print) -> Followed | None:
    """Send one webhook; the event to follow when it is accepted, else None (the refusal, or why it could not be
    sent, is printed)."""
    try:
        reply = requests.post(f"{base}/hooks/{item.source}", data=item.body, headers=dict(item.headers),
                              timeout=10)
    except requests.RequestException as exc:  # the server went away since it was checked
        say(f"{item.label}: not sent: POST {base}/hooks/{item.source} failed ({_why(exc)})")
        return None
    if reply.status_code != 202:
        say(f"{item.label}: refused {reply.status_code} {reply.text.strip()}")
        return None
    event_id = reply.json()["event_id"]
    say(f"{item.label}: accepted as {event_id} (POST /hooks/{item.source})")
    return Followed(item.label, event_id, item.expect)


def _entry_line(entry: Mapping[str, Any], send_at: float | None) -> str:
    kind = entry.get("kind")
    arrow = f"{kind}" if kind else f"{entry.get('from') or '·'} → {entry.get('to')}"
    due = f" (sends {when(send_at)} UTC)" if entry.get("to") == State.SCHEDULED and send_at else ""
    return f"{when(entry.get('at'))}  {arrow}{due}: {entry.get('reason', '')}".rstrip(": ")


def show(store: Store, followed: Followed, base: str, say: Callable[[str], None] = print) -> bool:
    """Print what is new in `followed`'s timeline; True once its event is processed and every message settled."""
    found = story(store, followed.event_id)
    if found is None:
        return False
    settled = found.event.status != "received"  # processed, or failed
    for item in found.messages:
        msg = item.message
        for i, entry in enumerate(msg.timeline):
            if (msg.id, i) not in followed.seen:
                followed.seen.add((msg.id, i))
                target = mask(msg.to) if msg.to else f"list {msg.list_id or msg.list_ref}"
                line = _entry_line(entry, msg.send_at)
                say(f"{followed.label}: {msg.id} {msg.channel} to {target} ({msg.rule})  {line}")
        for cb in item.callbacks:
            if (cb.id, len(cb.attempts)) not in followed.seen:  # once per attempt made
                followed.seen.add((cb.id, len(cb.attempts)))
                say(f"{followed.label}: callback {cb.id} ({cb.state}) {cb.status}, {len(cb.attempts)} attempt(s)")
        if msg.state == State.HELD and msg.id not in followed.hinted:
            followed.hinted.add(msg.id)
            say(f"{followed.label}: {msg.id} is HELD for approval: approve with "
                f"`hookline approvals approve {msg.id}` or at {base}/ui/approvals")
        settled = settled and msg.state in SETTLED
    return settled


def expected(store: Store, followed: Followed) -> bool:
    """Whether every message of the event ended as the demo expects: planned at least one unless it expects
    none (a cancellation plans nothing)."""
    found = story(store, followed.event_id)
    if found is None:
        return False
    states = [item.message.state for item in found.messages]
    return all(state in followed.expect for state in states) and bool(states) == bool(followed.expect)


def run(base: str, env: Mapping[str, str], store: Store, timeout: float,
        say: Callable[[str], None] = print) -> int:
    """Post the demo's events to `base`, follow them until they settle or `timeout` seconds pass; exit code."""
    tag, now = secrets.token_hex(4), datetime.now(UTC)
    steps = bookings(env["CALCOM_WEBHOOK_SECRET"], tag, now)
    posts = [order(env["SHOP_WEBHOOK_SECRET"], tag), alert(env["ALERTMANAGER_TOKEN"], tag), steps.pop(0)]
    followed = [f for f in (post(base, item, say) for item in posts) if f]
    expected_count = len(posts) + len(steps)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = {f.label: show(store, f, base, say) for f in followed}
        if steps and all(v for k, v in done.items() if k.startswith("booking")):
            # The booking moves (then is cancelled) once what it planned so far has settled.
            step = post(base, steps.pop(0), say)
            followed.extend([step] if step else [])
        elif all(done.values()):
            break
        else:
            time.sleep(0.3)
    ok = len(followed) == expected_count and not steps
    for f in followed:
        found = story(store, f.event_id)
        states = ", ".join(str(m.message.state) for m in found.messages) if found else "gone"
        good = expected(store, f)
        ok = ok and good
        say(f"{f.label}: {'ok' if good else 'NOT as expected'} ({states or 'no messages'})")
    say("demo: every event settled as expected" if ok else "demo: not every event settled as expected")
    return 0 if ok else 1
