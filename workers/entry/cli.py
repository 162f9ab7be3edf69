"""The `hookline` command: a click group whose commands call into the rest of `workers`."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
from werkzeug.serving import make_server

from workers.clicksend.simstate import SimState
from workers.clicksend.simulator import create_simulator
from workers.core import providers
from workers.core.phones import e164
from workers.core.templates import parse_time
from workers.entry.clicksend_cli import clicksend
from workers.entry.runtime import Runtime
from workers.errors import ConfigError, DryRunError
from workers.flow import origin
from workers.store import Store
from workers.tools import dryrun, supervisor, trace
from workers.tools.localredis import redis_answers
from workers.wiring import handover
from workers.wiring.rulesdir import load_config
from workers.wiring.settings import Settings

RET_OK, RET_FAILED, RET_CONFIG = 0, 1, 2


@click.group()
def main() -> None:
    """Hookline: events in, SMS/MMS/voice out through ClickSend, outcomes reported back."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the web server binds.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port the web server listens on.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 32), help="RQ worker processes.")
@click.option("--home", default=".hookline", show_default=True, type=click.Path(path_type=Path),
              help="Folder for the private Redis's data and generated development secrets.")
def up(host: str, port: int, workers: int, home: Path) -> None:
    """Run everything on this machine: Redis (if REDIS_URL is unset), web, workers and cron."""
    sys.exit(supervisor.up(host, port, workers, os.environ, home))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8400, show_default=True, type=int)
@click.option("--rate-limit", type=float, default=0.0, help="Requests per second before 429 (0: none).")
@click.option("--rate-429", type=float, default=0.0, help="Chance of a random 429.")
@click.option("--rate-500", type=float, default=0.0, help="Chance of a random 500 before accepting.")
@click.option("--latency", type=float, default=0.0, help="Seconds added to every request.")
@click.option("--hang-rate", type=float, default=0.0, help="Chance a send is accepted, then the reply hangs.")
@click.option("--fail-after-accept", type=float, default=0.0, help="Chance a send is accepted, then answered 500.")
@click.option("--invalid", "invalid", multiple=True, help="A number that gets INVALID_RECIPIENT (repeatable).")
@click.option("--no-credit", "no_credit", multiple=True, help="A number that gets INSUFFICIENT_CREDIT.")
@click.option("--throttled", multiple=True, help="A number that gets THROTTLED.")
@click.option("--bad-request", "bad_request", multiple=True,
              help="A number that makes ClickSend refuse its whole request with 400 (repeatable).")
@click.option("--undelivered", multiple=True, help="A number whose receipt ends undelivered (301).")
@click.option("--receipt-delay", type=float, default=2.0, show_default=True, help="Seconds until receipts are final.")
# Credentials may come from the environment so `hookline up` need not put a key on a command line (`ps`).
@click.option("--username", envvar="HOOKLINE_SIMULATOR_USERNAME", show_envvar=True,
              help="Accept only this API username (with --api-key); anything else gets 401.")
@click.option("--api-key", envvar="HOOKLINE_SIMULATOR_API_KEY", show_envvar=True,
              help="The API key that goes with --username.")
@click.option("--maton-key", envvar="HOOKLINE_SIMULATOR_MATON_KEY", show_envvar=True,
              help="Accept the Maton form: this bearer key; anything else gets 401.")
@click.option("--maton-connection", envvar="HOOKLINE_SIMULATOR_MATON_CONNECTION", show_envvar=True,
              help="With --maton-key: the Maton-Connection header requests must carry.")
def simulator(host: str, port: int, rate_limit: float, rate_429: float, rate_500: float, latency: float,
              hang_rate: float, fail_after_accept: float, invalid: tuple[str, ...], no_credit: tuple[str, ...],
              throttled: tuple[str, ...], bad_request: tuple[str, ...], undelivered: tuple[str, ...],
              receipt_delay: float, username: str | None, api_key: str | None, maton_key: str | None,
              maton_connection: str | None) -> None:
    """Run the local ClickSend simulator (faults also settable at PUT /_sim/faults; ledger at /_sim/ledger).

    With no credentials set it accepts any; with --username/--api-key and/or --maton-key only those.
    """
    if bool(username) != bool(api_key):
        raise click.UsageError("--username and --api-key go together")
    if maton_connection and not maton_key:
        raise click.UsageError("--maton-connection needs --maton-key")
    state = SimState()
    state.faults.update({
        "rate_limit": rate_limit, "rate_429": rate_429, "rate_500": rate_500, "latency": latency,
        "hang_rate": hang_rate, "fail_after_accept": fail_after_accept, "invalid_numbers": list(invalid),
        "no_credit_numbers": list(no_credit), "throttled_numbers": list(throttled),
        "bad_request_numbers": list(bad_request),
        "undelivered_numbers": list(undelivered), "receipt_delay": receipt_delay,
    })
    locked = " (credentials required)" if username or maton_key else ""
    click.echo(f"ClickSend simulator on http://{host}:{port}{locked} (ledger: /_sim/ledger, faults: /_sim/faults)")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request drowns `hookline up`
    app = create_simulator(state, username=username or None, api_key=api_key or None, bearer=maton_key or None,
                           connection=maton_connection or None)
    make_server(host, port, app, threaded=True).serve_forever()


@main.group()
def rules() -> None:
    """Check and try out the rules directory."""


@rules.command("check")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
def rules_check(directory: Path | None) -> None:
    """Validate every file in DIRECTORY (default $HOOKLINE_RULES_DIR or ./rules); list every problem."""
    settings = _settings(require_redis=False)
    directory = directory or Path(settings.rules_dir)
    try:
        config = load_config(directory, os.environ, settings.timezone, settings.default_region)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(RET_CONFIG)
    click.echo(f"{directory}: ok ({len(config.sources)} sources, {len(config.rules)} rules)")


@rules.command("test")
@click.argument("event_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", "source_name", required=True, help="The source the event comes from.")
@click.option("--type", "event_type", help="Event type (else read the way the source reads it).")
@click.option("--header", "headers", multiple=True, help="A request header, K:V (repeatable).")
@click.option("--now", "now_text", help="Pretend it is this time (ISO 8601; naive = HOOKLINE_TIMEZONE).")
@click.option("--dir", "directory", type=click.Path(path_type=Path), help="Rules directory.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def rules_test(event_file: Path, source_name: str, event_type: str | None, headers: tuple[str, ...],
               now_text: str | None, directory: Path | None, as_json: bool) -> None:
    """Dry run: which rules EVENT_FILE matches and exactly what would be sent. Sends and stores nothing."""
    settings = _settings(require_redis=False)
    directory = directory or Path(settings.rules_dir)
    zone, region = settings.timezone, settings.default_region
    try:
        config = load_config(directory, dryrun.PlaceholderEnviron(os.environ), zone, region)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(RET_CONFIG)
    header_map = {}
    for item in headers:
        key, sep, value = item.partition(":")
        if not sep:
            raise click.BadParameter(f"{item!r} is not K:V", param_hint="--header")
        header_map[key.strip()] = value.strip()
    try:
        now = parse_time(now_text, zone).timestamp() if now_text else time.time()
        event = dryrun.build_event(config, event_file, source_name, event_type, header_map, now)
    except (DryRunError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(RET_FAILED)
    store = _read_only_store(settings)
    result = dryrun.report(config, event, now, zone, region, store)
    click.echo(json.dumps(result, indent=2, ensure_ascii=False) if as_json else dryrun.as_text(result))


def _read_only_store(settings: Settings) -> Store | None:
    """The store for a dry run's facts when REDIS_URL answers, else None (facts are then zero)."""
    if not settings.redis_url or not redis_answers(settings.redis_url):
        return None
    return Store.from_url(settings.redis_url, settings.message_ttl)


def _settings(require_redis: bool = True) -> Settings:
    """Settings from the environment (the one reader of HOOKLINE_* and REDIS_URL); exit 2 listing every problem."""
    try:
        return Settings.from_env(require_redis=require_redis)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(RET_CONFIG)


def _runtime() -> Runtime:
    return Runtime.build(_settings())  # a bad rules directory is logged, not raised: only settings can stop us


@main.group("sources")
def sources_group() -> None:
    """Where events come from: the provider catalog a source can name."""


@sources_group.command("providers")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def sources_providers(as_json: bool) -> None:
    """List the providers a source can name: how each authenticates, its secret's name there, its event types."""
    catalog = list(providers.CATALOG.values())
    if as_json:
        click.echo(json.dumps([{"name": p.name, "title": p.title, "scheme": p.scheme, "authenticates": p.authenticates,
                                "secret": p.secret_name, "event_types": list(p.event_types), "body": p.body,
                                "needs": list(p.needs), "dedupe_window": p.dedupe_window, "tolerance": p.tolerance,
                                "docs": p.docs} for p in catalog], indent=2))
        return
    table = [("PROVIDER", "AUTHENTICATES", "SECRET (as the provider calls it)", "EVENT TYPES")]
    for p in catalog:
        notes = "".join(f"; needs {n}:" for n in p.needs) + ("; form bodies" if p.body == "form" else "")
        table.append((p.name, p.authenticates + notes, p.secret_name,
                      ", ".join(p.event_types) or "(defined by the sender)"))
    widths = [max(len(line[i]) for line in table) for i in range(3)]
    for line in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line[:3], widths, strict=True)) + "  " + line[3])


@main.command("trace")
@click.argument("event_id")
def trace_cmd(event_id: str) -> None:
    """Print an event, its messages, every transition with its reason, receipts, replies and callbacks."""
    text = trace.trace(_runtime().store, event_id)
    if text is None:
        click.echo(f"no event {event_id}", err=True)
        sys.exit(RET_FAILED)
    click.echo(text)


@main.command("replay")
@click.argument("ids", nargs=-1)
@click.option("--all-exhausted", is_flag=True, help="Replay every callback that gave up.")
def replay_cmd(ids: tuple[str, ...], all_exhausted: bool) -> None:
    """Send exhausted or failed callbacks again (callback ids, or message ids for all of theirs)."""
    rt = _runtime()
    targets = list(ids) + (rt.store.callbacks.exhausted_callbacks(1000) if all_exhausted else [])
    if not targets:
        for cid in rt.store.callbacks.exhausted_callbacks():
            cb = rt.store.callbacks.get_callback(cid)
            if cb is not None:
                click.echo(f"{cid}  {cb.state}  message {cb.message_id}  {cb.status}")
        return
    done = origin.replay(rt.store, rt.enqueuer, targets)
    click.echo(f"replaying {len(done)} callback(s)" + (": " + " ".join(done) if done else ""))


@main.group("approvals")
def approvals_group() -> None:
    """The approval queue: messages held for a person."""


@approvals_group.command("list")
@click.option("--rule", help="Only this rule's messages.")
@click.option("--event", "event_id", help="Only this event's messages.")
def approvals_list(rule: str | None, event_id: str | None) -> None:
    """Held messages: id, rule, masked recipient, estimate and body."""
    rt = _runtime()
    for msg in rt.store.messages.held(rule, event_id):
        click.echo(f"{msg.id}  {msg.rule}  {trace.mask(msg.to)}  est {msg.estimate}  {(msg.body or '')[:60]!r}")


def _decide(action: str, ids: tuple[str, ...], rule: str | None, event_id: str | None, note: str, by: str) -> None:
    rt = _runtime()
    targets = list(ids) or ([m.id for m in rt.store.messages.held(rule, event_id)] if rule or event_id else [])
    if not targets:
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


@main.group()
def optout() -> None:
    """The suppression list: numbers that never get messages."""


@optout.command("list")
def optout_list() -> None:
    """Every suppressed number (masked), since when and why."""
    for number, info in sorted(_runtime().store.optouts.optouts().items()):
        click.echo(f"{trace.mask(number)}  via {info.get('via')}  {info.get('detail', '')}")


@optout.command("add")
@click.argument("number")
@click.option("--note", default="", help="Why (kept with the entry).")
def optout_add(number: str, note: str) -> None:
    """Suppress NUMBER."""
    rt = _runtime()
    e164 = _e164(number, rt.settings.default_region)
    rt.store.optouts.opt_out(e164, time.time(), via="operator", detail=note)
    click.echo(f"suppressed {trace.mask(e164)}")


@optout.command("remove")
@click.argument("number")
def optout_remove(number: str) -> None:
    """Lift the suppression of NUMBER."""
    rt = _runtime()
    e164 = _e164(number, rt.settings.default_region)
    if not rt.store.optouts.opt_in(e164):
        click.echo(f"{trace.mask(e164)} was not suppressed", err=True)
        sys.exit(RET_FAILED)
    click.echo(f"lifted {trace.mask(e164)}")


def _e164(number: str, region: str) -> str:
    found = e164(number, region)
    if found is None:
        raise click.BadParameter("not a valid phone number", param_hint="NUMBER")
    return found


main.add_command(clicksend)

if __name__ == "__main__":
    main()
