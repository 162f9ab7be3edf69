"""The `hookline` command: a click group whose commands call into the rest of `workers`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from workers import supervisor
from workers.errors import ConfigError
from workers.rulesdir import load_config

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


@main.group()
def rules() -> None:
    """Check and try out the rules directory."""


@rules.command("check")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
def rules_check(directory: Path | None) -> None:
    """Validate every file in DIRECTORY (default $HOOKLINE_RULES_DIR or ./rules); list every problem."""
    directory = directory or Path(os.environ.get("HOOKLINE_RULES_DIR", "rules"))
    try:
        config = load_config(directory, os.environ)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(RET_CONFIG)
    click.echo(f"{directory}: ok ({len(config.sources)} sources)")


if __name__ == "__main__":
    main()
