"""Callbacks to originating systems: decide who to tell about which state, then deliver signed requests
that refuse private addresses (checked where each connection is made, redirects included) unless the
source allows them.

Rendering and retry policy are `core.callbacks`'; the address check is `netguard`'s; this module does the
HTTP and the bookkeeping.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import standardwebhooks

from workers.core.callbacks import after_attempt, render_request
from workers.core.coerce import parse_retry_after
from workers.core.sources import Callback
from workers.errors import DestinationRefused, HooklineError, RenderError
from workers.net.guard import session
from workers.wiring import pipeline
from workers.wiring.runtime import Runtime

log = logging.getLogger("hookline.origin")
MAX_REDIRECTS = 3


def callback_id_for(message_id: str, state: str) -> str:
    """Deterministic: one callback per message and state, however often the state is reported."""
    return "cb_" + hashlib.sha256(f"{message_id}\0{state}".encode()).hexdigest()[:32]


def notify(rt: Runtime, messages: Iterable[dict[str, Any]], state: str, now: float,
           extra: dict[str, Any] | None = None) -> int:
    """Create and enqueue a callback for each message whose source wants to hear about `state`.

    Then the changes are marked reported; until then they stay listed (the store lists them with the change
    itself), so a worker that dies before this completes leaves them to `sweep_unreported`.
    """
    try:
        callbacks = rt.rules.current().callbacks
    except HooklineError:
        return 0
    messages = list(messages)
    started = 0
    for msg in messages:
        cb = callbacks.get(msg.get("source") or "")
        if cb is None or state not in cb.spec.on:
            continue
        if state == "reply" and not cb.spec.forward_replies and "reply" not in cb.spec.on:
            continue
        cid = callback_id_for(msg["id"], state if state != "reply" else f"reply:{(extra or {}).get('id')}")
        record = {"message_id": msg["id"], "event_id": msg.get("event_id"), "source": msg["source"], "state": state,
                  "created_at": now, **(extra or {})}
        if rt.store.create_callback(cid, record, now):
            pipeline.enqueue_callback(rt.rq_connection, cid)
            started += 1
    if state != "reply":
        rt.store.reported([(msg["id"], state) for msg in messages])
    return started


def sweep_unreported(rt: Runtime, now: float, grace: float = 60.0) -> int:
    """Create the callbacks of state changes made more than `grace` ago whose worker died before telling
    anyone; callback ids are per message and state, so one that was created after all is not created twice."""
    entries = rt.store.unreported(now - grace)
    for (mid, state), msg in zip(entries, rt.store.get_messages([mid for mid, _ in entries]), strict=True):
        if msg is None:  # expired since: nothing left to report
            rt.store.reported([(mid, state)])
            continue
        extra = {"receipt": msg["receipt"]} if msg.get("receipt") and state in ("delivered", "undelivered") else None
        notify(rt, [msg | {"state": state}], state, now, extra)
    return len(entries)


def check_scheme(url: str) -> None:
    """Raise DestinationRefused unless `url` is an http(s) URL with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefused(f"not an http(s) URL: {url!r}")


class CallbackSender:
    """Delivers callbacks over sessions that resolve and check each destination as they connect."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        # Sources with `allow_private` (an origin on the same network) get a session that skips the check.
        self.sessions = {allow: session(allow_private=allow) for allow in (False, True)}
        for s in self.sessions.values():
            s.headers["User-Agent"] = "Hookline-Callbacks/0.1"

    def deliver(self, callback_id: str, now: float) -> str:
        """One attempt; records it, then schedules the next or stops. Returns the callback's new status."""
        store = self.rt.store
        record = store.get_callback(callback_id)
        if record is None:
            store.forget_callback(callback_id)  # expired: the sweep must not keep re-enqueueing it
            return "missing"
        if record["status"] != "pending":
            return record["status"]
        cb = self.rt.rules.current().callbacks.get(record["source"])
        lock = (cb.spec.timeout + 5) * (MAX_REDIRECTS + 1) + 30 if cb else 60  # outlives any one attempt
        if not store.lock_callback(callback_id, lock):
            return "busy"  # another job is attempting it right now
        try:
            return self._attempt(callback_id, record, now)
        finally:
            store.unlock_callback(callback_id)

    def _attempt(self, callback_id: str, record: dict[str, Any], now: float) -> str:
        store = self.rt.store
        cb = self.rt.rules.current().callbacks.get(record["source"])
        if cb is None:
            store.record_attempt(callback_id, {"at": now, "error": "source has no callback any more"}, "failed", now)
            return "failed"
        attempt_no = len(record["attempts"]) + 1
        started = time.monotonic()
        status, error, retry_after = None, None, None
        try:
            method, url, headers, body = render_request(cb, self._context(record))
            response = self._send(callback_id, method, url, headers, body, cb.spec)
            status = response.status_code
            retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
        except (RenderError, DestinationRefused) as exc:
            error = str(exc)
            store.record_attempt(callback_id, {"at": now, "attempt": attempt_no, "error": error}, "failed", now)
            store.note(record["message_id"], {"at": now, "kind": "callback", "state": record["state"],
                                              "result": "failed", "reason": error})
            log.warning("callback %s refused: %s", callback_id, error)
            return "failed"
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        step = after_attempt(status, error, attempt_no, now - float(record["created_at"]), cb.spec, retry_after)
        attempt = {"at": now, "attempt": attempt_no, "status": status, "error": error,
                   "ms": round((time.monotonic() - started) * 1000), "next": step.status}
        final = "pending" if step.status == "retry" else step.status
        store.record_attempt(callback_id, attempt, final, now, next_at=now + step.delay)
        store.note(record["message_id"], {"at": now, "kind": "callback", "state": record["state"],
                                          "result": step.status, "reason": step.reason})
        if step.status == "retry":
            pipeline.enqueue_callback(self.rt.rq_connection, callback_id,
                                      at=datetime.fromtimestamp(now + step.delay, tz=UTC))
        return final

    def _context(self, record: dict[str, Any]) -> dict[str, Any]:
        store = self.rt.store
        message = store.get_message(record["message_id"], with_log=False) or {"id": record["message_id"]}
        event = store.get_event(record.get("event_id") or "") or {}
        return {"event": event, "payload": event.get("payload"), "message": message, "state": record["state"],
                "receipt": record.get("receipt"), "reply": record.get("reply")}

    def _send(self, callback_id: str, method: str, url: str, headers: dict[str, str], body: bytes,
              spec: Callback) -> requests.Response:
        secret = None
        if spec.secret:
            # whsec_ secrets as Standard Webhooks writes them; any other string is used as the raw key.
            secret = standardwebhooks.Webhook(spec.secret if spec.secret.startswith("whsec_") else spec.secret.encode())
        for _ in range(MAX_REDIRECTS + 1):
            check_scheme(url)
            signed = dict(headers)
            signed["Content-Type"] = "application/json"
            if secret is not None:
                stamp = datetime.now(tz=UTC)
                signed.update({"webhook-id": callback_id, "webhook-timestamp": str(int(stamp.timestamp())),
                               "webhook-signature": secret.sign(callback_id, stamp, body.decode())})
            response = self.sessions[spec.allow_private].request(
                method, url, data=body, headers=signed, timeout=(5, spec.timeout), allow_redirects=False)
            if response.status_code in (301, 302, 303, 307, 308) and response.headers.get("Location"):
                url = urljoin(url, response.headers["Location"])  # its address is checked as it connects
                continue
            return response
        raise DestinationRefused(f"more than {MAX_REDIRECTS} redirects")


def replay(rt: Runtime, ids: list[str]) -> list[str]:
    """Re-open exhausted or failed callbacks (by callback id, or all of a message's) and send them again."""
    replayed = []
    for item in ids:
        targets = rt.store.message_callback_ids(item) if item.startswith("msg_") else [item]
        for cid in targets:
            record = rt.store.get_callback(cid)
            if record and record["status"] in ("exhausted", "failed") and rt.store.reopen_callback(cid):
                pipeline.enqueue_callback(rt.rq_connection, cid)
                replayed.append(cid)
    return replayed


def sweep(rt: Runtime, now: float, grace: float = 120.0) -> list[str]:
    """Re-enqueue pending callbacks whose attempt is overdue by `grace` (their job died with a worker or was
    never enqueued); the per-callback lock keeps a duplicate job from sending twice."""
    overdue = rt.store.overdue_callbacks(now - grace)
    for cid in overdue:
        pipeline.enqueue_callback(rt.rq_connection, cid)
    return overdue
