"""The simulator's memory: accounts, sent messages, receipts, inbound, the ledger and the fault settings.

In-process and thread-safe; time comes from a clock function so tests can drive it.
"""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import phonenumbers

from workers.core.segments import count as count_segments

USER_ID = 123456
SUBACCOUNT_ID = 654321
PRICE_PER_PART = {"sms": "0.0792", "mms": "0.3300", "voice": "0.1100"}
CURRENCY = {"currency_name_short": "AUD", "currency_prefix_d": "$", "currency_prefix_c": "c",
            "currency_name_long": "Australian Dollars"}


@dataclass
class Faults:
    """What the simulator does wrong on purpose. Every field can be set by CLI flag or `PUT /_sim/faults`."""

    rate_limit: float = 0.0  # requests per second across all callers; 0 = unlimited
    rate_429: float = 0.0  # chance a request gets 429 (Retry-After: 1)
    rate_500: float = 0.0  # chance a request gets 500 before anything happens
    latency: float = 0.0  # seconds added to every request
    hang_rate: float = 0.0  # chance a send is accepted and then the reply hangs
    hang_seconds: float = 60.0
    fail_after_accept: float = 0.0  # chance a send is accepted and then answered with 500
    invalid_numbers: list[str] = field(default_factory=list)
    no_credit_numbers: list[str] = field(default_factory=list)
    throttled_numbers: list[str] = field(default_factory=list)
    bad_request_numbers: list[str] = field(default_factory=list)  # a request including one is refused whole (400)
    receipt_delay: float = 2.0  # seconds until a receipt leaves 200 (sent) for its final status
    undelivered_numbers: list[str] = field(default_factory=list)  # their receipts end in 301
    balance: str = "1000.000000"

    def update(self, changes: dict[str, Any]) -> list[str]:
        """Apply `changes`; return the names that are not fault settings."""
        unknown = [k for k in changes if k not in self.__dataclass_fields__]
        for key, value in changes.items():
            if key not in unknown:
                setattr(self, key, type(getattr(self, key))(value) if not isinstance(value, list) else list(value))
        return unknown


@dataclass
class Sent:
    """One accepted message, as history and receipts show it."""

    channel: str
    message_id: str
    to: str
    body: str
    sender: str | None
    custom_string: str | None
    date: int
    parts: int
    price: str
    country: str | None
    final_status: int  # 201 delivered or 301 failed, reached after the receipt delay
    sent_at: float = 0.0  # exact, for the receipt delay (`date` is whole seconds, as ClickSend gives it)
    receipt_read: bool = False


class SimState:
    """Everything the simulator remembers. Safe to use from several request threads."""

    def __init__(self, clock: Callable[[], float] = time.time, seed: int | None = None):
        self.clock = clock
        self.rand = random.Random(seed)
        self.lock = threading.Lock()
        self.faults = Faults()
        self.reset()

    def reset(self) -> None:
        """Forget every message, receipt, inbound and counter (fault settings stay)."""
        with self.lock:
            self.sent: list[Sent] = []
            self.by_id: dict[str, Sent] = {}
            self.ledger: dict[str, int] = {}
            self.calls: dict[str, int] = {}
            self.inbound: list[dict[str, Any]] = []
            self._bucket = (0.0, self.clock())

    # --- faults ------------------------------------------------------------------------------------

    def chance(self, probability: float) -> bool:
        """True with `probability`."""
        return probability > 0 and self.rand.random() < probability

    def rate_limited(self) -> float | None:
        """Seconds to wait when the request rate is over the limit (a token bucket of one second)."""
        limit = self.faults.rate_limit
        if limit <= 0:
            return None
        with self.lock:
            tokens, stamp = self._bucket
            now = self.clock()
            tokens = min(limit, tokens + (now - stamp) * limit) if stamp else limit
            if tokens >= 1:
                self._bucket = (tokens - 1, now)
                return None
            self._bucket = (tokens, now)
            return max(1.0, math.ceil((1 - tokens) / limit))

    def count_call(self, path: str) -> None:
        """Count a call to `path` (tests assert how many provider calls a flush made)."""
        with self.lock:
            self.calls[path] = self.calls.get(path, 0) + 1

    # --- sending -----------------------------------------------------------------------------------

    def status_for(self, to: str | None, body: str | None) -> str:
        """The per-message status a recipient gets, by the fault lists and the number's shape."""
        if not body:
            return "EMPTY_MESSAGE"
        if not to or not to.startswith("+") or not to[1:].isdigit() or len(to) < 8:
            return "INVALID_RECIPIENT"
        if to in self.faults.invalid_numbers:
            return "INVALID_RECIPIENT"
        if to in self.faults.no_credit_numbers:
            return "INSUFFICIENT_CREDIT"
        if to in self.faults.throttled_numbers:
            return "THROTTLED"
        return "SUCCESS"

    def accept(self, channel: str, message: dict[str, Any], commit: bool) -> dict[str, Any]:
        """The reply entry for one message; when `commit`, remember it (history, receipt, ledger)."""
        to = message.get("to")
        body = str(message.get("body") or "")
        status = self.status_for(to, body)
        parts = max(1, count_segments(body).parts) if body else 0
        unit = PRICE_PER_PART[channel]
        price = f"{float(unit) * parts:.4f}" if status == "SUCCESS" else "0.0000"
        now = int(self.clock())
        entry = {
            "direction": "out", "date": now, "to": to, "body": body, "from": message.get("from"),
            "schedule": int(message.get("schedule") or now), "message_id": str(uuid.uuid4()).upper(),
            "message_parts": parts, "message_price": price, "from_email": message.get("from_email"),
            "list_id": None, "custom_string": message.get("custom_string"), "contact_id": None,
            "user_id": USER_ID, "subaccount_id": SUBACCOUNT_ID, "is_shared_system_number": False,
            "country": message.get("country") or _country(to), "carrier": "Simulated", "status": status,
        }
        if channel == "mms":
            entry["subject"] = message.get("subject")
        if channel == "voice":
            entry.update({"to_type": "mobile", "voice": message.get("voice"), "lang": message.get("lang"),
                          "require_input": message.get("require_input", 0),
                          "machine_detection": message.get("machine_detection", 0), "from": None})
        if commit and status == "SUCCESS":
            final = 301 if to in self.faults.undelivered_numbers else 201
            record = Sent(channel, entry["message_id"], to or "", body, message.get("from"),
                          message.get("custom_string"), now, parts, price, entry["country"], final,
                          self.clock())
            with self.lock:
                self.sent.append(record)
                self.by_id[record.message_id] = record
                key = record.custom_string or record.message_id
                self.ledger[key] = self.ledger.get(key, 0) + 1
        return entry

    # --- receipts, history, inbound ----------------------------------------------------------------

    def receipt_of(self, sent: Sent) -> dict[str, Any]:
        """The receipt as it stands now: 200 until the delay has passed, then the final status."""
        done = self.clock() - sent.sent_at >= self.faults.receipt_delay
        code = sent.final_status if done else 200
        texts = {200: ("Sent", None, None), 201: ("Success: Message received on handset.", 4, None),
                 301: ("Failed: Delivery failure.", 8, "Unknown subscriber")}
        text, error_code, error_text = texts[code]
        return {"timestamp_send": sent.date, "timestamp": int(sent.date + (self.faults.receipt_delay if done else 0)),
                "message_id": sent.message_id, "status_code": code, "status_text": text,
                "error_code": error_code, "error_text": error_text, "custom_string": sent.custom_string,
                "subaccount_id": SUBACCOUNT_ID, "message_type": sent.channel,
                "digits": None}

    def unread_receipts(self, channel: str) -> list[dict[str, Any]]:
        """Final receipts not yet marked read."""
        with self.lock:
            pending = [s for s in self.sent if s.channel == channel and not s.receipt_read]
        return [r for r in (self.receipt_of(s) for s in pending) if r["status_code"] != 200]

    def mark_receipts_read(self, channel: str, date_before: float | None) -> None:
        """Mark final receipts read (those whose receipt time is before `date_before`, when given)."""
        with self.lock:
            for sent in self.sent:
                receipt = self.receipt_of(sent)
                if sent.channel == channel and receipt["status_code"] != 200 and (
                        date_before is None or receipt["timestamp"] <= date_before):
                    sent.receipt_read = True

    def history_item(self, sent: Sent) -> dict[str, Any]:
        """A history row (string-typed fields as the SDK's model wants them)."""
        receipt = self.receipt_of(sent)
        status = {200: "Sent", 201: "Completed", 301: "Failed"}[receipt["status_code"]]
        return {"direction": "out", "date": sent.date, "to": sent.to, "body": sent.body, "status": status,
                "from": sent.sender, "schedule": str(sent.date), "status_code": str(receipt["status_code"]),
                "status_text": receipt["status_text"],
                "error_code": None if receipt["error_code"] is None else str(receipt["error_code"]),
                "error_text": receipt["error_text"], "message_id": sent.message_id,
                "message_parts": sent.parts, "message_price": sent.price, "from_email": None, "list_id": None,
                "custom_string": sent.custom_string, "contact_id": None, "user_id": USER_ID,
                "subaccount_id": SUBACCOUNT_ID, "country": sent.country, "carrier": "Simulated",
                "first_name": None, "last_name": None, "_api_username": "simulator"}

    def history(self, channel: str) -> list[Sent]:
        """Every accepted message on `channel`, oldest first."""
        with self.lock:
            return [s for s in self.sent if s.channel == channel]

    def add_inbound(self, sender: str, body: str, to: str | None = None,
                    original_message_id: str | None = None) -> dict[str, Any]:
        """Inject a reply, as if a handset had sent it."""
        original = self.by_id.get(original_message_id or "")
        item = {"timestamp": int(self.clock()), "from": sender, "body": body, "original_body": original.body
                if original else "", "original_message_id": original_message_id or "", "to": to or "+61400000000",
                "custom_string": original.custom_string if original and original.custom_string else "",
                "message_id": str(uuid.uuid4()).upper(), "_keyword": body.split()[0].lower() if body else "",
                "user_id": USER_ID, "subaccount_id": SUBACCOUNT_ID, "read": False}
        with self.lock:
            self.inbound.append(item)
        return item

    def ledger_view(self) -> dict[str, Any]:
        """Accepted messages by custom_string with how often each arrived, and the duplicates."""
        with self.lock:
            ledger = dict(self.ledger)
            calls = dict(self.calls)
        return {"messages": ledger, "accepted": sum(ledger.values()), "unique": len(ledger),
                "duplicates": {k: v for k, v in ledger.items() if v > 1}, "calls": calls,
                "faults": asdict(self.faults)}


def _country(to: str | None) -> str | None:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(to or "", None))
    except phonenumbers.NumberParseException:
        return None
