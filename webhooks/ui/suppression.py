"""The suppression list page: every number that receives nothing, since when, how and by whom; add and remove
(logged with who did it)."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, request, url_for
from flask.typing import ResponseReturnValue

from webhooks.context import runtime
from webhooks.ui.base import back, flash, note, page, user
from workers.core.phones import e164
from workers.tools.trace import mask

bp = Blueprint("suppression", __name__, url_prefix="/suppression")
log = logging.getLogger("hookline.ui")


@bp.get("", endpoint="page")
def suppression_page() -> ResponseReturnValue:
    """The list, newest first."""
    entries = sorted(runtime().store.optouts.optouts().items(), key=lambda kv: -float(kv[1].get("since") or 0))
    return page("suppression.html", title="Suppression list", entries=entries)


@bp.post("/add")
def add() -> ResponseReturnValue:
    """Suppress a number (E.164, or national in the default region)."""
    rt = runtime()
    number = e164(request.form.get("number", "").strip(), rt.settings.default_region)
    if number is None:
        flash("That is not a valid phone number; nothing was added.")
        return back(url_for("ui.suppression.page"))
    by = user()
    rt.store.optouts.opt_out(number, time.time(), via="operator", detail=f"added by {by}" + (f": {note()}" if note()
                                                                                           else ""))
    log.info("%s added to the suppression list by %s", mask(number), by)
    flash(f"{mask(number)} receives nothing from now on.")
    return back(url_for("ui.suppression.page"))


@bp.post("/remove")
def remove() -> ResponseReturnValue:
    """Lift a number's suppression."""
    number = request.form.get("number", "")
    if runtime().store.optouts.opt_in(number):
        log.info("%s removed from the suppression list by %s", mask(number), user())
        flash(f"{mask(number)} may receive messages again.")
    else:
        flash("That number was not on the suppression list.")
    return back(url_for("ui.suppression.page"))
