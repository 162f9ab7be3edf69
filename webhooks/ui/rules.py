"""The rules page: the loaded set (sources, rules, policies), the errors of the last load with `file:line`, and
when the set in use was loaded. Read-only: rules change by editing the rules directory."""

from __future__ import annotations

import contextlib

from flask import Blueprint
from flask.typing import ResponseReturnValue

from webhooks.context import runtime
from webhooks.ui.base import page
from workers.errors import HooklineError

bp = Blueprint("rules", __name__, url_prefix="/rules")


@bp.get("", endpoint="page")
def rules_page() -> ResponseReturnValue:
    """What is loaded now (after a check for edited files) and what did not load."""
    rules_dir = runtime().rules
    with contextlib.suppress(HooklineError):  # nothing good was ever loaded: the errors say why
        rules_dir.current()
    return page("rules.html", title="Rules", config=rules_dir.config, errors=rules_dir.errors,
                reloaded_at=rules_dir.reloaded_at, directory=str(rules_dir.directory))
