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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import standardwebhooks

from workers.core.callbacks import ANSWER_READ, after_attempt, answer_excerpt, render_request, request_secrets
from workers.core.coerce import parse_retry_after
from workers.core.lifecycle import State
from workers.core.messages import Message
from workers.core.records import CallbackRecord
from workers.core.sources import Callback
from workers.errors import DestinationRefused, HooklineError, RenderError
from workers.net.guard import session
from workers.store import Store
from workers.tools.trace import mask
from workers.wiring.pipeline import Enqueuer
from workers.wiring.rulesdir import RulesDir

log = logging.getLogger("hookline.origin")
outcomes = logging.getLogger("hookline.messages")
MAX_REDIRECTS = 3


def log_outcomes(messages: Iterable[Message], state: str) -> None:
    """One line per message that entered `state` (sent or a final one): ids, rule, channel, masked recipient."""
    for msg in messages:
        to = mask(msg.to) if msg.to else f"list {msg.list_id or msg.list_ref}"
        outcomes.info("message %s %s: event %s rule %s %s to %s", msg.id, state, msg.event_id, msg.rule,
                      msg.channel, to, extra={"message_id": msg.id, "event_id": msg.event_id, "state": state,
                                              "rule": msg.rule, "channel": msg.channel, "to": to})


def callback_id_for(message_id: str, state: str) -> str:
    """Deterministic: one callback per message and state, however often the state is reported."""
    return "cb_" + hashlib.sha256(f"{message_id}\0{state}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Notifier:
    """Decides who hears about which state and creates their callbacks (delivered by `CallbackSender`)."""

    store: Store
    rules: RulesDir
    enqueuer: Enqueuer

    def notify(self, messages: Iterable[Message], state: str, now: float,
               extra: dict[str, Any] | None = None) -> int:
        """Create and enqueue a callback for each message whose source wants to hear about `state`.

        Then the changes are marked reported; until then they stay listed (the store lists them with the change
        itself), so a worker that dies before this completes leaves them to `sweep_unreported`.
        """
        return self.notify_each([(msg, state, extra) for msg in messages], now)

    def notify_each(self, changes: Iterable[tuple[Message, str, dict[str, Any] | None]], now: float) -> int:
        """`notify` for (message, state, extra) changes of different states and extras (a page of receipts),
        marked reported in one round trip."""
        try:
            callbacks = self.rules.current().callbacks
        except HooklineError:
            return 0
        started, reported = 0, []
        for msg, state, extra in changes:
            if state != "reply":
                log_outcomes([msg], state)
                reported.append((msg.id, state))
            cb = callbacks.get(msg.source)
            if cb is None or state not in cb.spec.on:
                continue
            if state == "reply" and not cb.spec.forward_replies and "reply" not in cb.spec.on:
                continue
            cid = callback_id_for(msg.id, state if state != "reply" else f"reply:{(extra or {}).get('id')}")
            record = {"message_id": msg.id, "event_id": msg.event_id, "source": msg.source, "state": state,
                      "created_at": now, **(extra or {})}
            if self.store.callbacks.create_callback(cid, record, now):
                self.enqueuer.callback(cid)
                started += 1
        self.store.messages.reported(reported)
        return started

    def sweep_unreported(self, now: float, grace: float = 60.0) -> int:
        """Create the callbacks of state changes made more than `grace` ago whose worker died before telling
        anyone; callback ids are per message and state, so one that was created after all is not created twice."""
        entries = self.store.messages.unreported(now - grace)
        found = self.store.messages.get_messages([mid for mid, _ in entries])
        for (mid, state), msg in zip(entries, found, strict=True):
            if msg is None:  # expired since: nothing left to report
                self.store.messages.reported([(mid, state)])
                continue
            receipt = msg.receipt if state in ("delivered", "undelivered") else None
            extra = {"receipt": dict(receipt)} if receipt else None
            self.notify([msg.but(state=State(state))], state, now, extra)
        return len(entries)


def check_scheme(url: str) -> None:
    """Raise DestinationRefused unless `url` is an http(s) URL with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefused(f"not an http(s) URL: {url!r}")


class CallbackSender:
    """Delivers callbacks over sessions that resolve and check each destination as they connect."""

    def __init__(self, store: Store, rules: RulesDir, enqueuer: Enqueuer):
        self.store, self.rules, self.enqueuer = store, rules, enqueuer
        # Sources with `allow_private` (an origin on the same network) get a session that skips the check.
        self.sessions = {allow: session(allow_private=allow) for allow in (False, True)}
        for s in self.sessions.values():
            s.headers["User-Agent"] = "Hookline-Callbacks/0.1"

    def deliver(self, callback_id: str, now: float) -> str:
        """One attempt; records it, then schedules the next or stops. Returns the callback's new status."""
        store = self.store
        record = store.callbacks.get_callback(callback_id)
        if record is None:
            store.callbacks.forget_callback(callback_id)  # expired: the sweep must not keep re-enqueueing it
            return "missing"
        if record.status != "pending":
            return record.status
        cb = self.rules.current().callbacks.get(record.source)
        lock = (cb.spec.timeout + 5) * (MAX_REDIRECTS + 1) + 30 if cb else 60  # outlives any one attempt
        if not store.callbacks.lock_callback(callback_id, lock):
            return "busy"  # another job is attempting it right now
        try:
            return self._attempt(callback_id, record, now)
        finally:
            store.callbacks.unlock_callback(callback_id)

    def _attempt(self, callback_id: str, record: CallbackRecord, now: float) -> str:
        store = self.store
        cb = self.rules.current().callbacks.get(record.source)
        if cb is None:
            store.callbacks.record_attempt(callback_id, {"at": now, "error": "source has no callback any more"},
                                           "failed", now, counted=(record.source, "dropped"))
            return "failed"
        attempt_no = len(record.attempts) + 1
        started = time.monotonic()
        status, error, retry_after, answer = None, None, None, None
        try:
            method, url, headers, body = render_request(cb, self._context(record))
            with self._send(callback_id, method, url, headers, body, cb.spec) as response:
                status = response.status_code
                retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
                answer = read_answer(response, request_secrets(cb.spec, headers))
        except (RenderError, DestinationRefused) as exc:
            error = str(exc)
            store.callbacks.record_attempt(callback_id, {"at": now, "attempt": attempt_no, "error": error},
                                           "failed", now, counted=(record.source, "refused"))
            store.messages.note(record.message_id, {"at": now, "kind": "callback", "state": record.state,
                                                    "result": "failed", "reason": error})
            log.warning("callback %s refused: %s", callback_id, error)
            return "failed"
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        step = after_attempt(status, error, attempt_no, now - record.created_at, cb.spec, retry_after)
        attempt = {"at": now, "attempt": attempt_no, "status": status, "error": error, "body": answer,
                   "ms": round((time.monotonic() - started) * 1000), "next": step.status}
        final = "pending" if step.status == "retry" else step.status
        store.callbacks.record_attempt(callback_id, attempt, final, now, next_at=now + step.delay,
                                       counted=(record.source, step.status))
        store.messages.note(record.message_id, {"at": now, "kind": "callback", "state": record.state,
                                                "result": step.status, "reason": step.reason})
        if step.status == "retry":
            self.enqueuer.callback(callback_id, at=now + step.delay)
        return final

    def _context(self, record: CallbackRecord) -> dict[str, Any]:
        """What the callback's templates see (JSON values)."""
        store = self.store
        found = store.messages.get_message(record.message_id, with_log=False)
        message = found.to_json() if found else {"id": record.message_id}
        stored = store.events.get_event(record.event_id or "")
        event = stored.to_json() if stored else {}
        return {"event": event, "payload": event.get("payload"), "message": message, "state": record.state,
                "receipt": record.receipt, "reply": record.reply}

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
            # Streamed, so that no more of the answer is downloaded than `read_answer` keeps.
            response = self.sessions[spec.allow_private].request(
                method, url, data=body, headers=signed, timeout=(5, spec.timeout), allow_redirects=False,
                stream=True)
            if response.status_code in (301, 302, 303, 307, 308) and response.headers.get("Location"):
                response.close()
                url = urljoin(url, response.headers["Location"])  # its address is checked as it connects
                continue
            return response
        raise DestinationRefused(f"more than {MAX_REDIRECTS} redirects")


def read_answer(response: requests.Response, secrets: tuple[str, ...]) -> str | None:
    """The start of the answer's body as the attempt keeps it (`core.callbacks.answer_excerpt`), reading at most
    ANSWER_READ bytes; None when the body could not be read (the status alone then stands)."""
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(ANSWER_READ):
            chunks.append(chunk)
            size += len(chunk)
            if size > ANSWER_READ:
                break
    except requests.RequestException:
        return None
    data = b"".join(chunks)
    return answer_excerpt(data[:ANSWER_READ], secrets, cut=len(data) > ANSWER_READ)


def replay(store: Store, enqueuer: Enqueuer, ids: list[str]) -> list[str]:
    """Re-open exhausted or failed callbacks (by callback id, or all of a message's) and send them again."""
    replayed = []
    for item in ids:
        targets = store.callbacks.message_callback_ids(item) if item.startswith("msg_") else [item]
        for cid in targets:
            record = store.callbacks.get_callback(cid)
            if record and record.status in ("exhausted", "failed") and store.callbacks.reopen_callback(cid):
                enqueuer.callback(cid)
                replayed.append(cid)
    return replayed


def sweep(store: Store, enqueuer: Enqueuer, now: float, grace: float = 120.0) -> list[str]:
    """Re-enqueue pending callbacks whose attempt is overdue by `grace` (their job died with a worker or was
    never enqueued); the per-callback lock keeps a duplicate job from sending twice."""
    overdue = store.callbacks.overdue_callbacks(now - grace)
    for cid in overdue:
        enqueuer.callback(cid)
    return overdue
