"""The simulator's memory: accounts, sent messages, receipts, inbound, the ledger and the fault settings
(lists, contacts, templates and e-mail addresses are in `simlists`, held here).

In-process and thread-safe; time comes from a clock function so tests can drive it. Rows come out in the
SMS shape; each resource blueprint in `workers.clicksend.sim` turns them into its own channel's shape.
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

from workers.clicksend.simlists import SimLists
from workers.core.coerce import to_int
from workers.core.segments import count as count_segments

USER_ID = 123456
SUBACCOUNT_ID = 654321
PRICE_PER_PART = {"sms": "0.0792", "mms": "0.3300", "voice": "0.1100"}
CURRENCY = {"currency_name_short": "AUD", "currency_prefix_d": "$", "currency_prefix_c": "c",
            "currency_name_long": "Australian Dollars"}
# ClickSend's documented test recipients (fact sheet §12): always accepted, whatever their shape.
TEST_NUMBERS = frozenset({"+61411111111", "+61422222222", "+61433333333", "+61444444444", "+14055555555",
                          "+14055555666", "+447777777777", "+8615555555555"})
CANCELLED_ERROR = 5  # the gateway's error_code for a cancelled message (status_code 301)


@dataclass
class Faults:
    """What the simulator does wrong on purpose. Every field can be set by `PUT /_sim/faults`, most also by a
    CLI flag (`omitted_numbers` only through the control API)."""

    rate_limit: float = 0.0  # requests per second across all callers; 0 = unlimited
    rate_429: float = 0.0  # chance a request gets 429 (Retry-After: 1)
    rate_500: float = 0.0  # chance a request gets 500 before anything happens
    # The rates above as exact shares of requests, spread evenly (0.15: 3 of every 20, the first at the 4th),
    # instead of a coin per request: a run of a few requests then meets its share, the same each time.
    spread: bool = False
    latency: float = 0.0  # seconds added to every request
    hang_rate: float = 0.0  # chance a send is accepted and then the reply hangs
    hang_seconds: float = 60.0
    fail_after_accept: float = 0.0  # chance a send is accepted and then answered with 500
    invalid_numbers: list[str] = field(default_factory=list)
    no_credit_numbers: list[str] = field(default_factory=list)
    throttled_numbers: list[str] = field(default_factory=list)
    bad_request_numbers: list[str] = field(default_factory=list)  # a request including one is refused whole (400)
    # Accepted (history, receipts, ledger) but left out of the send reply's `messages`, as a reply that does not
    # mention every message: the sender cannot tell what happened to them and must look in history.
    omitted_numbers: list[str] = field(default_factory=list)
    receipt_delay: float = 2.0  # seconds until a receipt leaves 200 (sent) for its final status
    undelivered_numbers: list[str] = field(default_factory=list)  # their receipts end in 301
    balance: str = "1000.000000"

    def update(self, changes: dict[str, Any]) -> dict[str, str]:
        """Apply `changes` all together, or none of them when any is not a fault setting or not of its setting's
        type: what is wrong with each such one, by name (empty when applied)."""
        wrong: dict[str, str] = {}
        typed: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in self.__dataclass_fields__:
                wrong[key] = "not a fault setting"
                continue
            kind = type(getattr(self, key))
            try:
                typed[key] = _as(kind, value)
            except (TypeError, ValueError):
                wrong[key] = f"{value!r} is not {_KINDS[kind]}"
        if not wrong:
            for key, value in typed.items():
                setattr(self, key, value)
        return wrong


_KINDS = {float: "a number", bool: "true or false", list: "a list of strings", str: "a string"}


def _as(kind: type, value: Any) -> Any:
    """A fault setting's `value` (JSON, or text from a form) as its field's type; TypeError or ValueError when it
    is not one of those (`list("+614…")` would be a string's characters, `float(True)` 1.0)."""
    if kind is list:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise TypeError(value)
        return list(value)
    if isinstance(value, (list, dict)) or value is None or (isinstance(value, bool) and kind is not bool):
        raise TypeError(value)
    if kind is bool and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")  # bool("false") would be true
    return kind(value)


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
    schedule: int = 0  # Unix time it is due; 0 = at once
    cancelled: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # the channel's own fields (MMS subject, voice lang…)

    def due(self) -> float:
        """When the message leaves (now, or its schedule)."""
        return max(self.sent_at, float(self.schedule))


class SimState:
    """Everything the simulator remembers. Safe to use from several request threads."""

    def __init__(self, clock: Callable[[], float] = time.time, seed: int | None = None) -> None:
        self.clock = clock
        self.rand = random.Random(seed)
        self.lock = threading.Lock()
        self.faults = Faults()
        self.country_codes = sorted(phonenumbers.SUPPORTED_REGIONS)  # what `GET /v3/countries` lists
        self.connections: dict[str, dict[str, Any]] = {}  # the Maton stand-in's connections (kept by reset)
        self.reset()

    def reset(self) -> None:
        """Forget every message, receipt, inbound and counter (fault settings stay)."""
        with self.lock:
            self.sent: list[Sent] = []
            self.by_id: dict[str, Sent] = {}
            self.ledger: dict[str, int] = {}
            self.calls: dict[str, int] = {}
            self.inbound: list[dict[str, Any]] = []
            self.directory = SimLists(self.clock)  # lists, contacts, templates, e-mail addresses
            self._bucket = (0.0, self.clock())
            self._owed: dict[str, float] = {}  # spread faults: each kind's share not yet given

    # --- faults ------------------------------------------------------------------------------------

    def chance(self, probability: float, kind: str | None = None) -> bool:
        """True with `probability`; for a `kind` of fault under `faults.spread`, true for exactly that share of
        the calls of that kind, spread evenly (error diffusion from one half)."""
        if probability <= 0:
            return False
        if kind is None or not self.faults.spread:
            return self.rand.random() < probability
        with self.lock:
            owed = self._owed.get(kind, 0.5) + probability
            hit = owed >= 1.0
            self._owed[kind] = owed - 1.0 if hit else owed
        return hit

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

    def status_for(self, to: str | None, body: str | None, country: str | None = None) -> str:
        """The per-message status a recipient gets, by the fault lists and whether the number is valid."""
        if not body:
            return "EMPTY_MESSAGE"
        if not _valid_recipient(to, country) or to in self.faults.invalid_numbers:
            return "INVALID_RECIPIENT"
        if to in self.faults.no_credit_numbers:
            return "INSUFFICIENT_CREDIT"
        if to in self.faults.throttled_numbers:
            return "THROTTLED"
        return "SUCCESS"

    def expand_lists(self, messages: list[Any]) -> list[Any]:
        """`messages` with each one that names a `list_id` (and no `to`) replaced by one per number on that list,
        as ClickSend counts them (fact sheet §13: a list's numbers count against the 1000 of a request). Numbers
        on the Opt-Out List are not left out: the fact sheet (§7.3) says not to assume ClickSend blocks them in
        API sends, so the simulator assumes the worse. A list that is not there stays one message, refused."""
        out: list[Any] = []
        for message in messages:
            list_id = to_int(message.get("list_id")) if isinstance(message, dict) and not message.get("to") else None
            if list_id is None or self.directory.get_list(list_id) is None:
                out.append(message)
                continue
            out.extend(dict(message, to=c["phone_number"], contact_id=c["contact_id"])
                       for c in self.directory.list_contacts(list_id) if c.get("phone_number"))
        return out

    def accept(self, channel: str, message: dict[str, Any], commit: bool,
               media_file: str | None = None) -> dict[str, Any]:
        """The reply entry for one message; when `commit`, remember it (history, receipt, ledger)."""
        to = message.get("to")
        body = str(message.get("body") or "")
        status = ("NOT_ENOUGH_PERMISSION_TO_LIST_ID" if message.get("list_id") and not to
                  else self.status_for(to, body, message.get("country")))
        parts = max(1, count_segments(body).parts) if body else 0
        unit = PRICE_PER_PART[channel]
        price = f"{float(unit) * parts:.4f}" if status == "SUCCESS" else "0.0000"
        now = int(self.clock())
        schedule = _schedule(message.get("schedule"))
        entry = {
            "direction": "out", "date": now, "to": to, "body": body, "from": message.get("from"),
            "schedule": schedule or now, "message_id": str(uuid.uuid4()).upper(),
            "message_parts": parts, "message_price": price, "from_email": message.get("from_email"),
            "list_id": to_int(message.get("list_id")), "custom_string": message.get("custom_string"),
            "contact_id": to_int(message.get("contact_id")),
            "user_id": USER_ID, "subaccount_id": SUBACCOUNT_ID, "is_shared_system_number": False,
            "country": message.get("country") or _country(to), "carrier": "Simulated", "status": status,
        }
        extra = _channel_fields(channel, message, media_file)
        entry.update(extra)
        if commit and status == "SUCCESS":
            final = 301 if to in self.faults.undelivered_numbers else 201
            record = Sent(channel, str(entry["message_id"]), to or "", body, message.get("from"),
                          message.get("custom_string"), now, parts, price, _str(entry["country"]), final,
                          self.clock(), schedule=schedule, extra=extra)
            with self.lock:
                self.sent.append(record)
                self.by_id[record.message_id] = record
                key = record.custom_string or record.message_id
                self.ledger[key] = self.ledger.get(key, 0) + 1
        return entry

    def cancel(self, message_id: str) -> bool | None:
        """Cancel one message: None when unknown, False when it already left, True when it was cancelled."""
        with self.lock:
            sent = self.by_id.get(message_id)
            if sent is None:
                return None
            return self._cancel(sent)

    def cancel_all(self, channel: str, custom_string: str | None = None) -> int:
        """Cancel every message on `channel` still waiting for its schedule (only those with `custom_string`)."""
        with self.lock:
            return sum(self._cancel(s) for s in self.sent if s.channel == channel
                       and (custom_string is None or s.custom_string == custom_string))

    def _cancel(self, sent: Sent) -> bool:
        # Only a message still waiting for its schedule can be stopped; one that has left cannot.
        if sent.cancelled or sent.due() <= self.clock():
            return False
        sent.cancelled = True
        return True

    # --- receipts, history, inbound ----------------------------------------------------------------

    def receipt_of(self, sent: Sent) -> dict[str, Any]:
        """The receipt as it stands now: 200 until the delay after it left has passed, then the final status."""
        due = sent.due()
        done = sent.cancelled or self.clock() - due >= self.faults.receipt_delay
        code = (301 if sent.cancelled else sent.final_status) if done else 200
        texts = {200: ("Sent", None, None), 201: ("Success: Message received on handset.", 4, None),
                 301: ("Failed: Delivery failure.", 8, "Unknown subscriber")}
        text, error_code, error_text = texts[code]
        if sent.cancelled:
            text, error_code, error_text = "Cancelled", CANCELLED_ERROR, "Cancelled"
        stamp = sent.date if not done or sent.cancelled else int(due + self.faults.receipt_delay)
        return {"timestamp_send": sent.date, "timestamp": stamp,
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
        """A history row in the SMS shape (string-typed fields as the SDK's model wants them)."""
        receipt = self.receipt_of(sent)
        status = {200: "Sent", 201: "Completed", 301: "Failed"}[receipt["status_code"]]
        if sent.cancelled:
            status = "Cancelled"
        elif sent.due() > self.clock():
            status = "Scheduled"
        return {"direction": "out", "date": sent.date, "to": sent.to, "body": sent.body, "status": status,
                "from": sent.sender, "schedule": str(sent.schedule or sent.date),
                "status_code": str(receipt["status_code"]), "status_text": receipt["status_text"],
                "error_code": None if receipt["error_code"] is None else str(receipt["error_code"]),
                "error_text": receipt["error_text"], "message_id": sent.message_id,
                "message_parts": sent.parts, "message_price": sent.price, "from_email": None, "list_id": None,
                "custom_string": sent.custom_string, "contact_id": None, "user_id": USER_ID,
                "subaccount_id": SUBACCOUNT_ID, "country": sent.country, "carrier": "Simulated",
                "first_name": None, "last_name": None, "_api_username": "simulator", **sent.extra}

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

    def unread_inbound(self) -> list[dict[str, Any]]:
        """Replies not yet marked read, oldest first."""
        with self.lock:
            return [_public(m) for m in self.inbound if not m["read"]]

    def reply_to(self, original_message_id: str) -> dict[str, Any] | None:
        """The latest reply to one of our messages, read or not."""
        with self.lock:
            replies = [m for m in self.inbound if m["original_message_id"] == original_message_id]
        return _public(replies[-1]) if replies else None

    def mark_inbound_read(self, date_before: float | None = None, message_id: str | None = None) -> int:
        """Mark replies read: all, those up to `date_before`, or the one `message_id`. Returns how many."""
        with self.lock:
            marked = 0
            for m in self.inbound:
                if m["read"] or (message_id is not None and m["message_id"] != message_id):
                    continue
                if date_before is None or m["timestamp"] <= date_before:
                    m["read"] = True
                    marked += 1
            return marked

    def usage(self, year: int, month: int) -> dict[str, tuple[int, float]]:
        """Messages accepted per channel in that UTC month: (count, total price)."""
        totals: dict[str, tuple[int, float]] = {channel: (0, 0.0) for channel in PRICE_PER_PART}
        with self.lock:
            for sent in self.sent:
                when = time.gmtime(sent.date)
                if (when.tm_year, when.tm_mon) == (year, month):
                    count, price = totals[sent.channel]
                    totals[sent.channel] = (count + 1, round(price + float(sent.price), 4))
        return totals

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


def _valid_recipient(to: Any, country: Any) -> bool:
    # What ClickSend accepts: a valid number for its region (local formats need `country`), or a test number.
    if not isinstance(to, str) or not to:
        return False
    if to in TEST_NUMBERS:
        return True
    try:
        number = phonenumbers.parse(to, str(country or "").upper() or None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number)


def _schedule(value: Any) -> int:
    # ClickSend takes the schedule as Unix seconds, a numeric string, or empty for "now".
    try:
        return max(0, int(float(value)))
    except (TypeError, ValueError, OverflowError):
        return 0


def _channel_fields(channel: str, message: dict[str, Any], media_file: str | None) -> dict[str, Any]:
    """What an accepted MMS or voice message carries beyond an SMS's fields."""
    if channel == "mms":
        return {"subject": message.get("subject"), "_media_file_url": media_file}
    if channel == "voice":
        return {"to_type": "mobile", "voice": message.get("voice"), "lang": message.get("lang"),
                "require_input": message.get("require_input", 0),
                "machine_detection": message.get("machine_detection", 0), "from": None}
    return {}


def _public(item: dict[str, Any]) -> dict[str, Any]:
    # The `read` flag is ours, not ClickSend's.
    return {k: v for k, v in item.items() if k != "read"}


def _str(value: object) -> str | None:
    return None if value is None else str(value)
