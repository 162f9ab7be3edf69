"""The `hookline` commands that read and act on the store: `trace`, `replay`, `approvals` and `optout`.

Each works on the Redis `--redis-url`, REDIS_URL or the `hookline up` running in this folder names; each listing
prints an aligned table (or "nothing to …") or, with `--json`, JSON; an unknown id exits 1 saying so.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from workers.core.messages import Message
from workers.core.phones import e164
from workers.entry.cli_shared import RET_FAILED, echo_json, echo_table, fail, redis_url_option, runtime
from workers.entry.runtime import Runtime
from workers.flow import origin
from workers.tools import trace
from workers.tools.trace import iso, mask, when
from workers.wiring import handover

_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


@click.command("trace")
@click.argument("event_id")
@_json_option
@redis_url_option
def trace_cmd(event_id: str, as_json: bool) -> None:
    """Print an event, its messages, every transition with its reason, receipts, replies and callbacks."""
    store = runtime().store
    found = trace.trace_json(store, event_id) if as_json else trace.trace(store, event_id)
    if found is None:
        fail(f"no event {event_id}")
    if as_json:
        echo_json(found)
    else:
        click.echo(found)


@click.command("replay")
@click.argument("ids", nargs=-1)
@click.option("--all-exhausted", is_flag=True, help="Replay every callback that gave up.")
@_json_option
@redis_url_option
def replay_cmd(ids: tuple[str, ...], all_exhausted: bool, as_json: bool) -> None:
    """Send exhausted or failed callbacks again (callback ids, or message ids for all of theirs); without ids,
    list the callbacks that gave up."""
    rt = runtime()
    if not ids and not all_exhausted:
        _list_exhausted(rt, as_json)
        return
    unknown = [i for i in ids if (rt.store.messages.get_message(i, with_log=False) if i.startswith("msg_")
                                  else rt.store.callbacks.get_callback(i)) is None]
    if unknown:
        fail(f"no callback or message {', '.join(unknown)}; nothing replayed")
    targets = list(ids) + (rt.store.callbacks.exhausted_callbacks(1000) if all_exhausted else [])
    done = origin.replay(rt.store, rt.enqueuer, targets)
    if as_json:
        echo_json({"replayed": done})
    elif done:
        click.echo(f"replaying {len(done)} callback(s): " + " ".join(done))
    else:
        click.echo("nothing to replay: none of these callbacks has given up")


def _list_exhausted(rt: Runtime, as_json: bool) -> None:
    callbacks = [cb for cid in rt.store.callbacks.exhausted_callbacks()
                 if (cb := rt.store.callbacks.get_callback(cid)) is not None]
    if as_json:
        echo_json([trace.callback_json(cb) for cb in callbacks])
    elif not callbacks:
        click.echo("nothing to replay: no callback has given up")
    else:
        echo_table(("CALLBACK", "STATE", "MESSAGE", "STATUS", "ATTEMPTS"),
                   [(cb.id, cb.state, cb.message_id, cb.status, str(len(cb.attempts))) for cb in callbacks])


@click.group("approvals")
def approvals_group() -> None:
    """The approval queue: messages held for a person."""


def _held_json(msg: Message) -> dict[str, Any]:
    return {"id": msg.id, "event_id": msg.event_id, "rule": msg.rule, "channel": str(msg.channel),
            "to": mask(msg.to) if msg.to else None, "list_id": msg.list_id, "list_ref": msg.list_ref,
            "list_size": msg.facts.get("list_size") if msg.list_ref else None,
            "estimate": None if msg.estimate is None else str(msg.estimate), "body": msg.body,
            "created_at": iso(msg.created_at), "send_at": iso(msg.send_at)}


@approvals_group.command("list")
@click.option("--rule", help="Only this rule's messages.")
@click.option("--event", "event_id", help="Only this event's messages.")
@_json_option
@redis_url_option
def approvals_list(rule: str | None, event_id: str | None, as_json: bool) -> None:
    """Held messages: id, rule, masked recipient, estimate and body."""
    held = runtime().store.messages.held(rule, event_id)
    if as_json:
        echo_json([_held_json(msg) for msg in held])
    elif not held:
        click.echo("nothing to approve: no message is held" + (" for that rule or event" if rule or event_id else ""))
    else:
        echo_table(("MESSAGE", "RULE", "TO", "ESTIMATE", "BODY"),
                   [(m.id, m.rule, mask(m.to) if m.to else _list_shown(m), str(m.estimate or "-"),
                     " ".join((m.body or "").split())[:60]) for m in held])


def _list_shown(msg: Message) -> str:
    """A send to a list as the approver sees it: the list, and its size when it was held (when ClickSend said)."""
    size = msg.facts.get("list_size") if msg.list_ref else None
    return f"list {msg.list_id or msg.list_ref}" + ("" if size is None else f" ({size} contacts when held)")


def _decide(action: str, ids: tuple[str, ...], rule: str | None, event_id: str | None, note: str, by: str) -> None:
    rt = runtime()
    unknown = [mid for mid in ids if rt.store.messages.get_message(mid, with_log=False) is None]
    if unknown:
        fail(f"no message {', '.join(unknown)}; nothing decided")
    targets = list(ids) or ([m.id for m in rt.store.messages.held(rule, event_id)] if rule or event_id else [])
    if not targets:
        if rule or event_id:
            fail(f"nothing to {action}: no message is held for that rule or event")
        raise click.UsageError("give message ids, or --rule / --event")
    results = handover.decide(rt.store, rt.enqueuer, targets, handover.Verdict(action), by, note, time.time())
    for mid, result in results.items():
        click.echo(f"{mid}: {result}")
    if not all(r in ("approved", "rejected") for r in results.values()):
        sys.exit(RET_FAILED)


_Command = TypeVar("_Command", bound=Callable[..., None])
_decision_options = [
    click.argument("ids", nargs=-1),
    click.option("--rule", help="Every held message of this rule."),
    click.option("--event", "event_id", help="Every held message of this event."),
    click.option("--note", default="", help="Kept with the decision."),
    click.option("--by", default=lambda: os.environ.get("USER", "cli"), help="Who decides (default $USER)."),
    redis_url_option,
]


def _with_decision_options(fn: _Command) -> _Command:
    """Stack the options every decision command takes."""
    for option in reversed(_decision_options):
        fn = option(fn)
    return fn


@approvals_group.command("approve")
@_with_decision_options
def approvals_approve(ids: tuple[str, ...], rule: str | None, event_id: str | None, note: str, by: str) -> None:
    """Approve held messages (by id, or all of a rule or event)."""
    _decide("approve", ids, rule, event_id, note, by)


@approvals_group.command("reject")
@_with_decision_options
def approvals_reject(ids: tuple[str, ...], rule: str | None, event_id: str | None, note: str, by: str) -> None:
    """Reject held messages (by id, or all of a rule or event)."""
    _decide("reject", ids, rule, event_id, note, by)


@click.group("optout")
def optout() -> None:
    """The suppression list: numbers that never get messages."""


@optout.command("list")
@_json_option
@redis_url_option
def optout_list(as_json: bool) -> None:
    """Every suppressed number (masked), since when, how and why."""
    entries = sorted(runtime().store.optouts.optouts().items())
    if as_json:
        echo_json([{"number": mask(number), "since": iso(info.get("since")), "via": info.get("via"),
                    "detail": info.get("detail", "")} for number, info in entries])
    elif not entries:
        click.echo("nothing suppressed: the list is empty")
    else:
        echo_table(("NUMBER", "SINCE (UTC)", "VIA", "DETAIL"),
                   [(mask(number), when(info.get("since")), str(info.get("via")), info.get("detail", ""))
                    for number, info in entries])


@optout.command("add")
@click.argument("number")
@click.option("--note", default="", help="Why (kept with the entry).")
@redis_url_option
def optout_add(number: str, note: str) -> None:
    """Suppress NUMBER."""
    rt = runtime()
    found = _e164(number, rt.settings.default_region)
    rt.store.optouts.opt_out(found, time.time(), via="operator", detail=note)
    click.echo(f"suppressed {mask(found)}")


@optout.command("remove")
@click.argument("number")
@redis_url_option
def optout_remove(number: str) -> None:
    """Lift the suppression of NUMBER."""
    rt = runtime()
    found = _e164(number, rt.settings.default_region)
    if not rt.store.optouts.opt_in(found):
        fail(f"{mask(found)} was not suppressed")
    click.echo(f"lifted {mask(found)}")


def _e164(number: str, region: str) -> str:
    found = e164(number, region)
    if found is None:
        raise click.BadParameter("not a valid phone number", param_hint="NUMBER")
    return found
