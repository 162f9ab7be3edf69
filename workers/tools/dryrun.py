"""`hookline rules test`: what an event would do, shown without sending or storing anything.

Reads the event file and the rules directory; everything else is the pure core's planning.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workers.core import intake, payloads
from workers.core.contactlists import reaches_no_one
from workers.core.decisions import decide_approval
from workers.core.events import Event
from workers.core.lifecycle import State
from workers.core.planning import plan_event
from workers.core.storedtemplates import Snapshot
from workers.errors import BadJSON, DryRunError, EventTypeMissing, PayloadInvalid
from workers.flow.admission import assess, describe
from workers.store import Store
from workers.wiring.rulesdir import Config


def build_event(config: Config, event_file: Path, source_name: str, event_type: str | None,
                headers: Mapping[str, str], now: float) -> Event:
    """The Event a webhook with this body and these headers would have become (built by the live intake code;
    no signature is checked)."""
    source = config.sources.get(source_name)
    if source is None:
        raise DryRunError(f"no source named {source_name!r} (have: {', '.join(sorted(config.sources))})")
    try:
        return intake.build_event(source, headers, event_file.read_bytes(), now, event_type=event_type)
    except BadJSON as exc:
        raise DryRunError(f"{event_file}: not valid JSON: {exc.reason}") from exc
    except EventTypeMissing as exc:
        raise DryRunError(f"event type not found ({'; '.join(exc.errors)}): pass --type or that header") from exc
    except PayloadInvalid as exc:
        raise DryRunError(f"{exc.message}: " + "; ".join(exc.errors)) from exc


def report(config: Config, event: Event, now: float, zone: str, region: str,
           store: Store | None = None, stored: Snapshot | None = None) -> dict[str, Any]:
    """Which rules matched and why the others did not, every message as it would be sent, and the policy
    decision with the facts it used (read from `store` when given; nothing is written); `stored` is the
    account's stored templates, for rules that name one."""
    out_rules = []
    for outcome in plan_event(event, list(config.rules), now, zone, region, stored):
        fan_out = sum(m.state == State.PLANNED for m in outcome.messages)
        entry: dict[str, Any] = {"rule": outcome.rule, "matched": outcome.matched, "reasons": outcome.reasons}
        if outcome.cancel_key:
            entry["cancels_key"] = outcome.cancel_key
        messages = []
        for msg in outcome.messages:
            doc = msg.to_json()
            shown = {k: doc[k] for k in ("id", "channel", "operation", "list_ref", "contact", "to", "list_id", "from",
                                         "body", "subject", "media_file", "encoding", "segments", "non_gsm", "key",
                                         "state", "reasons")
                     if doc.get(k) not in (None, [], "", {})}
            shown["sends"] = ("now" if msg.send_at is None else
                              datetime.fromtimestamp(msg.send_at, tz=UTC).isoformat())
            what = reaches_no_one(msg)
            if msg.state == State.PLANNED and what:
                written = decide_approval(config.policy(msg.policy), msg.approved_by, what)
                shown.update(decision=written.action, policy=msg.policy, decision_reasons=list(written.reasons))
            elif msg.state == State.PLANNED:
                policy = config.policy(msg.policy)
                decision, facts = assess(store, policy, msg, msg.send_at or now, fan_out, True, zone)
                shown["decision"] = decision.action
                shown["policy"] = policy.name
                shown["decision_reasons"] = list(decision.reasons)
                shown["facts"] = describe(facts)
                if decision.until:
                    shown["deferred_until"] = datetime.fromtimestamp(decision.until, tz=UTC).isoformat()
                shown["clicksend_request"] = {
                    "endpoint": f"POST {payloads.ENDPOINTS[msg.channel]}",
                    "body": payloads.request_body(msg.channel, [msg]),
                }
            messages.append(shown)
        entry["messages"] = messages
        out_rules.append(entry)
    report: dict[str, Any] = _printable({"event": event.to_dict(), "now": datetime.fromtimestamp(now, tz=UTC)
                                         .isoformat(), "rules": out_rules})
    return report


def _printable(value: Any) -> Any:
    """`value` with every lone surrogate in its strings written as its `\\uXXXX` escape. A template can render
    one (`{{ "\\ud800" }}`); planning fails that message, and printing it must not fail the whole report."""
    if isinstance(value, str):
        # Only non-ASCII text can hold a surrogate; backslashreplace leaves every real character as it is.
        return value if value.isascii() else value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value


def as_text(result: dict[str, Any]) -> str:
    """The report for a person."""
    ev = result["event"]
    lines = [f"event {ev['id']}  source={ev['source']}  type={ev['type']}  (as of {result['now']})", ""]
    for rule in result["rules"]:
        if not rule["matched"]:
            lines.append(f"  - {rule['rule']}: no match: {'; '.join(rule['reasons'])}")
            continue
        lines.append(f"  + {rule['rule']}: matched")
        lines.extend(f"      note: {reason}" for reason in rule["reasons"])
        if "cancels_key" in rule:
            lines.append(f"      cancels pending messages with key {rule['cancels_key']!r}")
        for msg in rule["messages"]:
            lines.extend(_message_lines(msg))
    return "\n".join(lines)


def _message_lines(msg: dict[str, Any]) -> list[str]:
    """One planned message of the report, for a person."""
    lines: list[str] = []
    target = msg.get("to") or f"list {msg.get('list_id') or msg.get('list_ref')}"
    if msg.get("operation"):
        lines.append(f"      contact {msg['operation']} {target} on list {msg['list_ref']}" +
                     "".join(f"\n        {k}: {v}" for k, v in msg.get("contact", {}).items()))
    else:
        lines.append(f"      {msg['channel']} to {target}" + (f" from {msg['from']}" if msg.get("from")
                                                              else ""))
    if msg.get("body"):
        lines.append(f"        body: {msg['body']}")
    if msg.get("encoding"):  # not counted when the message failed before (or while) counting
        lines.append(f"        {msg.get('encoding')}, {msg.get('segments')} segment(s)" +
                     (f"; non-GSM characters: {' '.join(msg['non_gsm'])}" if msg.get("non_gsm") else ""))
    lines.append(f"        state: {msg['state']}; sends: {msg['sends']}")
    for reason in msg.get("reasons", []):
        lines.append(f"        why: {reason}")
    if "decision" in msg:
        lines.append(f"        policy {msg['policy']}: {msg['decision']}" +
                     (f" until {msg['deferred_until']}" if msg.get("deferred_until") else ""))
        for reason in msg["decision_reasons"]:
            lines.append(f"          because: {reason}")
    if "facts" in msg:
        facts = msg["facts"]
        lines.append(f"          facts: local time {', '.join(facts['local_time']) or '?'}; "
                     f"{facts['recent_sends']} recent sends; spent today {facts['spent_today']}; "
                     f"estimate {facts['estimate']}")
    if "clicksend_request" in msg:
        req = msg["clicksend_request"]
        lines.append(f"        {req['endpoint']} {json.dumps(req['body'], ensure_ascii=False)}")
    return lines
