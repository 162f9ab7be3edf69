"""The `hookline` command: a click group whose commands call into the rest of `workers`.

This module holds the group, the commands that run servers (`up`, `simulator`) and `demo`, which talks to one;
the others are in `cli_rules` (init, rules, sources) and `cli_store` (trace, replay, approvals, optout), and what
they share (settings beside `hookline up`, tables, JSON) in `cli_shared`.
"""

from __future__ import annotations

import logging
import os
import sys
from importlib import metadata
from pathlib import Path

import click
from werkzeug.serving import make_server

from workers.clicksend.simstate import SimState
from workers.clicksend.simulator import create_simulator
from workers.entry import cli_rules, cli_store
from workers.entry.cli_shared import RET_CONFIG, environ, fail, home, redis_url_option, remember_home, runtime
from workers.entry.clicksend_cli import clicksend
from workers.errors import ToolError
from workers.tools import demo as demo_tool
from workers.tools import supervisor
from workers.wiring.settings import DEFAULT_HOME, recorded_web_url


def _version() -> str:
    try:
        return metadata.version("hookline")
    except metadata.PackageNotFoundError:
        return "unknown (not installed: run from a checkout)"


@click.group()
@click.version_option(_version(), "--version", prog_name="hookline", message="%(prog)s %(version)s")
@click.option("--home", default=DEFAULT_HOME, show_default=True, type=click.Path(file_okay=False, path_type=Path),
              callback=remember_home, expose_value=False, is_eager=True,
              help="Folder of `hookline up`'s files: its Redis's data, generated secrets, where it runs.")
def main() -> None:
    """Hookline: events in, SMS/MMS/voice out through ClickSend, outcomes reported back.

    Commands run in the folder where `hookline up` runs need nothing exported: they read where its Redis is and
    its generated secrets from ./.hookline/. The environment, when set, wins over those files, and a command's
    --redis-url over both.
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the web server binds.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port the web server listens on.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 32), help="RQ worker processes.")
@click.option("--redis-url", metavar="URL", help="Use this Redis (else $REDIS_URL, else start a private one).")
def up(host: str, port: int, workers: int, redis_url: str | None) -> None:
    """Run everything on this machine: Redis (unless one is given), web, workers and cron."""
    try:
        code = supervisor.up(host, port, workers, os.environ, home(), redis_url=redis_url)
    except ToolError as exc:  # what it started is stopped already
        click.echo(f"hookline: {exc}", err=True)
        code = 1
    sys.exit(code)


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


@main.command()
@click.option("--url", metavar="URL", help="The Hookline to post to (else the `hookline up` running here, from "
              f"{DEFAULT_HOME}/up.env, else http://127.0.0.1:8000).")
@click.option("--timeout", default=120.0, show_default=True, type=click.FloatRange(1), help="Seconds to wait "
              "for everything to settle.")
@redis_url_option
def demo(url: str | None, timeout: float) -> None:
    """Post a signed order, a critical alert and a booking (then moved and cancelled) and follow each live.

    Signs with the secrets `hookline up` generated (or the environment's); exits 0 when every event settled as
    expected, 1 otherwise (nothing answering at the URL included), 2 for a URL that is not an http(s) address.
    """
    env = environ()
    missing = [n for n in ("SHOP_WEBHOOK_SECRET", "ALERTMANAGER_TOKEN", "CALCOM_WEBHOOK_SECRET") if not env.get(n)]
    if missing:
        raise click.UsageError(f"{', '.join(missing)}: not set (is `hookline up` running in this folder?)")
    try:
        base = demo_tool.target(url or recorded_web_url(home()) or "http://127.0.0.1:8000")
    except ToolError as exc:
        fail(f"hookline demo: {'--url: ' if url else ''}{exc}", RET_CONFIG)
    try:
        demo_tool.check_answers(base)  # before Redis: a stopped `hookline up` is the likelier story
    except ToolError as exc:
        fail(f"hookline demo: {exc}")
    sys.exit(demo_tool.run(base, env, runtime().store, timeout, say=lambda line: click.echo(line)))


for _command in (cli_rules.init, cli_rules.rules, cli_rules.sources_group, cli_store.trace_cmd,
                 cli_store.replay_cmd, cli_store.approvals_group, cli_store.optout, clicksend):
    main.add_command(_command)

if __name__ == "__main__":
    main()
