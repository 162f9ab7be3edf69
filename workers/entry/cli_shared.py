"""What every `hookline` command shares: where its settings come from (`--home`, `--redis-url`, the
environment, the files `hookline up` leaves), the runtime it works on, and how it prints tables, JSON and
failures.

Owns no command; the commands live in `cli`, `cli_rules` and `cli_store`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from workers.entry.runtime import Runtime
from workers.errors import ConfigError
from workers.store.connection import shown_url
from workers.tools.localredis import redis_answers
from workers.wiring.settings import DEFAULT_HOME, RUNNING_FILE, Settings, beside_up, recorded_redis_url

RET_OK, RET_FAILED, RET_CONFIG = 0, 1, 2
"""Exit codes: done; failed (an unknown id, nothing to act on, Redis not answering); configuration invalid."""

_HOME, _REDIS_URL = "hookline.home", "hookline.redis_url"

_Command = TypeVar("_Command", bound=Callable[..., Any])


def remember_home(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """The group's `--home`, kept where every command finds it."""
    ctx.meta[_HOME] = value
    return value


def home() -> Path:
    """The folder of `hookline up`'s files for this invocation (`--home`, default ./.hookline)."""
    return Path(click.get_current_context().meta.get(_HOME, DEFAULT_HOME))


def _remember_redis_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value:
        ctx.meta[_REDIS_URL] = value
    return value


def redis_url_option(fn: _Command) -> _Command:
    """`--redis-url URL` on a command: the Redis to use, before REDIS_URL and before `hookline up`'s."""
    return click.option("--redis-url", metavar="URL", expose_value=False, callback=_remember_redis_url,
                        help=f"The Redis to use (else $REDIS_URL, else the one `hookline up` runs here, from "
                             f"{DEFAULT_HOME}/{RUNNING_FILE}).")(fn)


def environ() -> dict[str, str]:
    """The environment this command works in: `--redis-url`, then the real one, then `hookline up`'s files."""
    return beside_up(home(), redis_url=click.get_current_context().meta.get(_REDIS_URL))


def settings(require_redis: bool = True) -> Settings:
    """Settings (read by `Settings.from_env`, the one reader); exit 2 listing every problem."""
    try:
        return Settings.from_env(environ(), require_redis=require_redis)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(RET_CONFIG)


def runtime() -> Runtime:
    """The runtime on the configured Redis; exit 1 saying so when that Redis does not answer."""
    found = settings()
    if not redis_answers(found.redis_url):
        recorded = recorded_redis_url(home()) == found.redis_url
        hint = (f" (recorded by `hookline up` in {home() / RUNNING_FILE}: is it still running?)" if recorded
                else "")
        fail(f"error: Redis at {shown_url(found.redis_url)} does not answer{hint}")
    # A bad rules directory is logged, not raised: only settings can stop us.
    return Runtime.build(found, environ())


def fail(message: str, code: int = RET_FAILED) -> NoReturn:
    """Say what went wrong on stderr and exit with `code`."""
    click.echo(message, err=True)
    sys.exit(code)


def echo_json(data: Any) -> None:
    """`data` as indented JSON on stdout (what `--json` prints)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def echo_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Rows under a header, every column but the last padded to its widest cell (the last runs free)."""
    lines = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    for line in lines:
        padded = [cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)]
        click.echo("  ".join([*padded, line[-1]]).rstrip())
