"""From one event and the rules to planned messages and cancellations, each with the reasons behind it.

Pure: the event, the rules, `now`, the zone and the default region are handed in; nothing is stored here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jmespath
import phonenumbers

from workers.core import phones, segments
from workers.core.contactlists import ContactWrite
from workers.core.events import Event
from workers.core.lifecycle import State
from workers.core.messages import Channel, ContactOp, Message
from workers.core.rules import Rule, Send
from workers.core.storedtemplates import Snapshot, render_stored
from workers.core.templates import parse_time, render
from workers.errors import RenderError

Body = Callable[[dict[str, Any]], str]  # a message's context → its body
_SPLIT = re.compile(r"[,;\n]+")


def message_id_for(event_id: str, rule: str, recipient: str) -> str:
    """Deterministic: the same event, rule and recipient always give the same message id."""
    return "msg_" + hashlib.sha256(f"{event_id}\0{rule}\0{recipient}".encode()).hexdigest()[:32]


@dataclass
class RuleOutcome:
    """What one rule did with one event: matched or why not, the messages it planned, the key it cancels."""

    rule: str
    matched: bool
    reasons: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    cancel_key: str | None = None
    order: float | None = None  # the rule's `order`, as seconds or a number: older than its key's newest = stale


def plan_event(event: Event, rules: list[Rule], now: float, zone: str, region: str,
               stored: Snapshot | None = None) -> list[RuleOutcome]:
    """Match `event` against every rule and plan what each matching rule sends or cancels; `stored` is the
    account's stored templates (None: none could be fetched), for rules that name one."""
    doc = event.to_dict()
    context = {"event": doc, "payload": event.payload}
    outcomes = []
    for rule in rules:
        selected, why = rule.selects(event.source, event.type)
        if not selected:
            outcomes.append(RuleOutcome(rule.name, False, [why]))
            continue
        ok, failures = rule.when.evaluate(doc)
        if not ok:
            outcomes.append(RuleOutcome(rule.name, False, failures))
            continue
        outcome = RuleOutcome(rule.name, True)
        if rule.order is not None:
            try:
                outcome.order = parse_time(render(rule.order, context, "order"), zone).timestamp()
            except RenderError as exc:
                outcome.reasons.append(f"{exc}; handled without ordering")
            except ValueError as exc:
                outcome.reasons.append(f"order: {exc}; handled without ordering")
        if rule.cancel_key is not None:
            try:
                outcome.cancel_key = render(rule.cancel_key, context, "cancel.key")
            except RenderError as exc:
                outcome.reasons.append(f"cannot cancel: {exc}")
        elif rule.send is not None:
            outcome.messages = _plan_sends(event, rule, rule.send, context, now, zone, region, _body(rule.send, stored))
        elif rule.write is not None:
            outcome.messages = [_plan_write(event, rule, rule.write, context, now, region)]
        outcomes.append(outcome)
    return outcomes


def _body(send: Send, stored: Snapshot | None) -> Body:
    """How this send's body renders: its own template, or the stored template it names."""
    if send.stored is not None:
        ref, placeholders = send.stored, send.placeholders
        return lambda context: render_stored(ref, placeholders, stored, context)
    body = send.body
    assert body is not None
    return lambda context: render(body, context, "send.body")


def _plan_sends(event: Event, rule: Rule, send: Send, context: dict[str, Any], now: float, zone: str,
                region: str, body: Body) -> list[Message]:
    base: dict[str, Any] = {"event_id": event.id, "source": event.source, "rule": rule.name,
                            "channel": Channel(send.channel), "policy": rule.policy, "critical": rule.critical,
                            "replace": rule.replace, "created_at": now}
    try:
        recipients = _recipients(send, context)
    except RenderError as exc:
        return [Message(id=message_id_for(event.id, rule.name, ""), state=State.FAILED, reasons=(str(exc),), **base)]
    out = []
    seen: set[str] = set()
    whole_list = send.list_id is not None or send.to_list is not None
    for raw in recipients:
        if whole_list:
            recipient, country, problem = raw, send.country, None
        else:
            recipient, country, problem = _normalise(raw, send.country or region)
        if recipient in seen:
            continue  # the same number written two ways gets one message
        seen.add(recipient)
        planned = base | {"id": message_id_for(event.id, rule.name, recipient), "to": None if whole_list else recipient,
                          "list_id": send.list_id, "list_ref": send.to_list, "country": country}
        if problem:
            out.append(Message(**planned, state=State.FAILED, reasons=(problem,)))
            continue
        out.append(_rendered(planned, rule, send, context | {"recipient": recipient}, event, now, zone, body))
    return out


def _plan_write(event: Event, rule: Rule, write: ContactWrite, context: dict[str, Any], now: float,
                region: str) -> Message:
    """One contact write as a message of channel `contact`: its number normalised, its fields rendered (a field
    that renders empty is left as ClickSend has it); failed, with the reason, when either cannot be."""
    key = "contact" if write.operation is ContactOp.UPSERT else "contact_remove"
    # The message's fields so far, built into a Message once, where planning it ends.
    planned: dict[str, Any] = {
        "id": message_id_for(event.id, rule.name, ""), "event_id": event.id, "source": event.source,
        "rule": rule.name, "channel": Channel.CONTACT, "operation": write.operation, "list_ref": write.list_ref,
        "policy": rule.policy, "critical": rule.critical, "created_at": now}
    try:
        raw = render(write.phone_number, context, f"{key}.phone_number")
    except RenderError as exc:
        return Message(**planned, state=State.FAILED, reasons=(str(exc),))
    number, country, problem = _normalise(raw.strip(), write.country or region)
    planned |= {"id": message_id_for(event.id, rule.name, number), "to": number, "country": country}
    if problem:
        return Message(**planned, state=State.FAILED, reasons=(f"{key}.phone_number: {problem}",))
    values: dict[str, str] = {}
    try:
        for name, template in write.fields:
            value = render(template, context, f"{key}.{name}").strip()
            if value:
                values[name] = value
    except RenderError as exc:
        return Message(**planned, contact=values, state=State.FAILED, reasons=(str(exc),))
    verb = "add or update the contact on" if write.operation is ContactOp.UPSERT else "remove the number from"
    return Message(**planned, contact=values, state=State.PLANNED, reasons=(f"{verb} list {write.list_ref}",))


def list_members(parent: Message, numbers: list[str], opted_out: set[str], region: str) -> list[Message]:
    """The messages of a send to a list (`parent`, planned by a rule whose `send.to` names the list), one per
    number on it, with the ids the rule would have given them had it named the numbers itself. A number on
    `opted_out` (ClickSend's Opt-Out List) is suppressed; an invalid one fails; the rest are planned.

    Each carries who approved the send to the list (`list_approved_by`), not an approval of its own: the
    approver saw the list, not what each number's send costs, so each is admitted by its policy in full but for
    `approval: manual`, and one the budget or a hold stops waits for its own approval."""
    shared = {k: v for k, v in parent.document().items() if k in _INHERITED}
    out: list[Message] = []
    seen: set[str] = set()
    for raw in numbers:
        number, country, problem = _normalise(raw, parent.country or region)
        if number in seen:
            continue
        seen.add(number)
        msg = Message.from_json(shared | {
            "id": message_id_for(parent.event_id, parent.rule, number), "to": number, "country": country,
            "state": State.PLANNED, "reasons": [f"on list {parent.list_ref}"],
            "list_approved_by": parent.approved_by})
        if problem:
            msg = msg.but(state=State.FAILED, reasons=(*msg.reasons, problem))
        elif number in opted_out:
            msg = msg.but(state=State.SUPPRESSED, reasons=(*msg.reasons, "on ClickSend's Opt-Out List"))
        out.append(msg)
    return out


# What a list's messages take from the send to the list: what and how, not where it is in its life.
_INHERITED = ("event_id", "source", "rule", "channel", "from", "body", "subject", "media_file", "voice", "lang",
              "require_input", "machine_detection", "encoding", "segments", "non_gsm", "key", "policy", "timezone",
              "critical", "created_at")


def _recipients(send: Send, context: dict[str, Any]) -> list[str]:
    if send.list_id is not None or send.to_list is not None:
        return [f"list:{send.list_id or send.to_list}"]
    found: list[str] = []
    for template in send.to:
        rendered = render(template, context, "send.to")
        found.extend(part.strip() for part in _SPLIT.split(rendered) if part.strip())
    if not found:
        raise RenderError("send.to: rendered no recipients")
    return list(dict.fromkeys(found))


def _normalise(raw: str, region: str) -> tuple[str, str | None, str | None]:
    """(E.164 number, its region, problem) — the problem names what is wrong without the full number."""
    try:
        number = phones.read(raw, region)
    except phonenumbers.NumberParseException as exc:
        return raw, None, f"invalid recipient: {exc}"
    if not number.valid:
        masked = raw[:4] + "…" if len(raw) > 4 else "…"
        return raw, None, f"invalid recipient: {masked} is not a valid number (default region {region})"
    return number.e164, number.region, None


def _rendered(planned: dict[str, Any], rule: Rule, send: Send, context: dict[str, Any], event: Event, now: float,
              zone: str, body: Body) -> Message:
    """The planned message whose other fields are `planned`, with what `send` renders for it and when it goes
    out; failed, with what did render and the reason, when something cannot be rendered. Built once, with
    everything (the drain's hot path: a copy per step cost as much as the rest of the message)."""
    fields: dict[str, Any] = {}
    reasons: list[str] = []
    try:
        _render_fields(fields, reasons, rule, send, context, event, now, zone, body)
    except RenderError as exc:
        return Message(**planned, **fields, state=State.FAILED, reasons=(str(exc),))
    state = State.SUPPRESSED if fields.pop("skipped") else State.PLANNED
    return Message(**planned, **fields, state=state, reasons=tuple(reasons))


def _render_fields(fields: dict[str, Any], reasons: list[str], rule: Rule, send: Send, context: dict[str, Any],
                   event: Event, now: float, zone: str, render_body: Body) -> None:
    """Fill `fields` (and `reasons`) step by step, so what rendered before a failure is kept to show."""
    body = fields["body"] = render_body(context)
    if not body:
        raise RenderError("send.template: rendered empty" if send.stored else "send.body: rendered empty")
    if send.from_ is not None:
        fields["from_"] = render(send.from_, context, "send.from") or None
    if rule.key is not None:
        fields["key"] = render(rule.key, context, "key")
    if send.channel == "mms":
        subject = render(send.subject, context, "send.subject") if send.subject else ""
        if not subject or len(subject) > 20:
            raise RenderError("send.subject: must be 1 to 20 characters")
        media = render(send.media_file, context, "send.media_file") if send.media_file else None
        fields.update(subject=subject, media_file=media)
    if send.channel == "voice":
        fields.update(voice=send.voice, lang=send.lang, require_input=send.require_input,
                      machine_detection=send.machine_detection)
    seg = segments.count(body)
    fields.update(encoding=seg.encoding, segments=seg.parts, non_gsm=tuple(seg.non_gsm))
    if seg.non_gsm:
        reasons.append(f"UCS-2 because of {', '.join(repr(c) for c in seg.non_gsm)}: {seg.parts} part(s)")
    if rule.recipient_timezone:
        # The payload knows where the recipient is better than the number's region does.
        try:
            found = jmespath.search(rule.recipient_timezone, event.to_dict())
        except jmespath.exceptions.JMESPathError as exc:
            found = None
            reasons.append(f"recipient_timezone: {exc}; using the number's region")
        fields["timezone"] = str(found) if found else None
    fields["send_at"], fields["skipped"], why = _schedule(rule, context, event, now, zone)
    if why:
        reasons.append(why)


def _schedule(rule: Rule, context: dict[str, Any], event: Event, now: float,
              zone: str) -> tuple[float | None, bool, str | None]:
    """(when it goes out, None for now; whether it is skipped; why, when that needs saying)."""
    spec = rule.schedule
    if spec is None:
        return None, False, None
    if spec.delay is not None:
        # From the event's arrival, so re-processing the event plans the same time.
        at = event.received_at + spec.delay
        return (at if at > now else None), False, None
    assert spec.at is not None
    rendered = render(spec.at, context, "schedule.at")
    if spec.zone is not None:
        zone = render(spec.zone, context, "schedule.zone")
        try:
            ZoneInfo(zone)
        except (ValueError, ZoneInfoNotFoundError):
            raise RenderError(f"schedule.zone: unknown time zone {zone!r}") from None
    try:
        at = parse_time(rendered, zone).timestamp() + spec.offset
    except ValueError as exc:
        raise RenderError(f"schedule.at: {exc}") from None
    if at > now:
        return at, False, None
    if spec.if_past == "send":
        return None, False, "scheduled time already passed; sending now (if_past: send)"
    return None, True, "scheduled time already passed (if_past: skip)"
