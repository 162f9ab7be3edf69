"""The `hookline` commands about the rules directory: `init` (write the examples), `rules check` (validate,
with or without the production secrets, and against the ClickSend account when credentials are set), `rules
test` (dry run) and `sources providers` (the catalog).

None of them needs Redis; `rules test` reads facts from one when it answers.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from workers.clicksend.client import ClickSendClient
from workers.clicksend.facts import fetch_facts
from workers.clicksend.templates import fetch_templates
from workers.core import providers
from workers.core.storedtemplates import Snapshot, compile_snapshot
from workers.core.templates import environment, parse_time
from workers.entry.cli_shared import (
    RET_CONFIG,
    RET_FAILED,
    echo_json,
    echo_table,
    environ,
    fail,
    redis_url_option,
    settings,
)
from workers.entry.runtime import clicksend_client
from workers.errors import ConfigError, DryRunError, HooklineError
from workers.store import Store
from workers.tools import dryrun, examples
from workers.tools.localredis import redis_answers
from workers.wiring.connections import open_store
from workers.wiring.rulesdir import (
    Config,
    PlaceholderEnviron,
    check_against_account,
    check_config,
    load_config,
    names_stored,
)
from workers.wiring.settings import Settings


@click.command("init")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that are already there.")
def init(directory: Path | None, force: bool) -> None:
    """Write the example rules (a shop, alerts, appointments) into DIRECTORY (default $HOOKLINE_RULES_DIR or
    ./rules), ready for `hookline up`. Writes nothing if any of their files is already there, unless --force."""
    directory = directory or Path(settings(require_redis=False).rules_dir)
    clashes = examples.clashes(directory)
    if clashes and not force:
        fail(f"error: {', '.join(str(p) for p in clashes)} already there; nothing written (--force overwrites)")
    written = examples.write(directory)
    click.echo(f"wrote {len(written)} example files into {directory}/ — sources.yaml names the secrets each "
               "source needs; `hookline up` generates development values for them")


@click.group("rules")
def rules() -> None:
    """Check and try out the rules directory."""


@rules.command("check")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--require-secrets", is_flag=True,
              help="An unset ${VAR} is an error, as for the running service (default: a warning).")
def rules_check(directory: Path | None, require_secrets: bool) -> None:
    """Validate every file in DIRECTORY (default $HOOKLINE_RULES_DIR or ./rules); list every problem.

    An unset ${VAR} (a secret the environment lacks) is a warning, and the rest is checked as if it were set,
    so a rules repository's CI needs no production secrets; --require-secrets makes it an error. With ClickSend
    credentials set, the rules are also checked against the account, as the service does when it loads them.
    Exit codes: 0 valid (warnings may be printed), 1 ClickSend could not be asked, 2 problems found (or an
    invalid setting).
    """
    found = settings(require_redis=False)
    directory = directory or Path(found.rules_dir)
    checked = check_config(directory, environ(), found.timezone, found.default_region)
    errors = [*checked.errors, *(checked.unset if require_secrets else ())]
    for problem in errors:
        click.echo(str(problem), err=True)
    if not require_secrets:
        for problem in checked.unset:
            click.echo(f"warning: {problem}", err=True)
    if errors:
        sys.exit(RET_CONFIG)
    assert checked.config is not None
    account = _check_account(found, directory, checked.config)
    unset = (f"; {len(checked.unset)} secret(s) not set (warnings above; --require-secrets makes them errors)"
             if checked.unset else "")
    click.echo(f"{directory}: ok ({len(checked.config.sources)} sources, {len(checked.config.rules)} rules){unset}; "
               f"{account}")


def _check_account(found: Settings, directory: Path, config: Config) -> str:
    """Check `config` against the ClickSend account when credentials are set, as the service does at load
    (voices, countries, the stored templates rules name); what was checked. Exit 2 listing the problems, 1 when
    ClickSend cannot be asked."""
    if found.provider_mode == "simulated":
        return ("not checked against a ClickSend account: no credentials set (CLICKSEND_USERNAME + "
                "CLICKSEND_API_KEY, or MATON_API_KEY)")
    try:
        client = clicksend_client(found)
        facts = fetch_facts(client)
        stored = _stored(found, config, client)
    except HooklineError as exc:
        fail(f"error: not checked against the ClickSend account: {exc}", RET_FAILED)
    problems = check_against_account(directory, config, facts, stored)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        sys.exit(RET_CONFIG)
    templates = f", stored templates ({len(stored.templates)} on the account)" if stored is not None else ""
    return f"checked against the ClickSend account (voices, countries{templates})"


def _stored(found: Settings, config: Config, client: ClickSendClient) -> Snapshot | None:
    """The account's stored templates as they are now, when a rule names one (read only: no cache)."""
    if not names_stored(config):
        return None
    return compile_snapshot(environment(found.timezone, found.default_region), fetch_templates(client))


def _headers(items: tuple[str, ...]) -> dict[str, str]:
    header_map = {}
    for item in items:
        key, sep, value = item.partition(":")
        if not sep:
            raise click.BadParameter(f"{item!r} is not K:V", param_hint="--header")
        header_map[key.strip()] = value.strip()
    return header_map


@rules.command("test")
@click.argument("event_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", "source_name", required=True, help="The source the event comes from.")
@click.option("--type", "event_type", help="Event type (else read the way the source reads it).")
@click.option("--header", "headers", multiple=True, help="A request header, K:V (repeatable).")
@click.option("--now", "now_text", help="Pretend it is this time (ISO 8601; naive = HOOKLINE_TIMEZONE).")
@click.option("--dir", "directory", type=click.Path(path_type=Path), help="Rules directory.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@redis_url_option
def rules_test(event_file: Path, source_name: str, event_type: str | None, headers: tuple[str, ...],
               now_text: str | None, directory: Path | None, as_json: bool) -> None:
    """Dry run: which rules EVENT_FILE matches and exactly what would be sent. Sends and stores nothing."""
    found = settings(require_redis=False)
    directory = directory or Path(found.rules_dir)
    zone, region = found.timezone, found.default_region
    try:
        config = load_config(directory, PlaceholderEnviron(environ()), zone, region)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(RET_CONFIG)
    header_map = _headers(headers)
    try:
        now = parse_time(now_text, zone).timestamp() if now_text else time.time()
        event = dryrun.build_event(config, event_file, source_name, event_type, header_map, now)
    except (DryRunError, ValueError) as exc:
        fail(f"error: {exc}", RET_FAILED)
    try:
        stored = _stored(found, config, clicksend_client(found))
    except ConfigError:
        stored = None  # no ClickSend to ask: messages from stored templates show why they would fail
    except HooklineError as exc:
        fail(f"error: stored templates not fetched from ClickSend: {exc}", RET_FAILED)
    result = dryrun.report(config, event, now, zone, region, _read_only_store(found), stored)
    if as_json:
        echo_json(result)
    else:
        click.echo(dryrun.as_text(result))


def _read_only_store(found: Settings) -> Store | None:
    """The store for a dry run's facts when REDIS_URL answers, else None (facts are then zero)."""
    if not found.redis_url or not redis_answers(found.redis_url):
        return None
    return open_store(found)


@click.group("sources")
def sources_group() -> None:
    """Where events come from: the provider catalog a source can name."""


@sources_group.command("providers")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def sources_providers(as_json: bool) -> None:
    """List the providers a source can name: how each authenticates, its secret's name there, its event types."""
    catalog = list(providers.CATALOG.values())
    if as_json:
        echo_json([{"name": p.name, "title": p.title, "scheme": p.scheme, "authenticates": p.authenticates,
                    "secret": p.secret_name, "event_types": list(p.event_types), "body": p.body,
                    "needs": list(p.needs), "dedupe_window": p.dedupe_window, "tolerance": p.tolerance,
                    "docs": p.docs} for p in catalog])
        return
    rows = []
    for p in catalog:
        notes = "".join(f"; needs {n}:" for n in p.needs) + ("; form bodies" if p.body == "form" else "")
        rows.append((p.name, p.authenticates + notes, p.secret_name, ", ".join(p.event_types) or
                     "(defined by the sender)"))
    echo_table(("PROVIDER", "AUTHENTICATES", "SECRET (as the provider calls it)", "EVENT TYPES"), rows)
