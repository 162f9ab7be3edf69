"""The outboxes page: each channel's depth, whether it is paused, until when and why, and a resume button
(`handover.resume`)."""

from __future__ import annotations

import time

from flask import Blueprint, url_for
from flask.typing import ResponseReturnValue

from webhooks.context import runtime
from webhooks.ui.base import back, flash, page, user
from workers.wiring import handover
from workers.wiring.pipeline import CHANNELS

bp = Blueprint("outboxes", __name__, url_prefix="/outboxes")


@bp.get("", endpoint="page")
def outboxes_page() -> ResponseReturnValue:
    """Every channel's outbox."""
    outbox, now = runtime().store.outbox, time.time()
    rows = []
    for channel in CHANNELS:
        pause = outbox.paused(channel)
        active = pause is not None and float(pause.get("until") or 0) > now
        rows.append({"channel": channel, "depth": outbox.outbox_length(channel), "pause": pause if active else None,
                     "flushing": outbox.flush_token(channel) is not None, "batch_limit": outbox.batch_limit(channel)})
    return page("outboxes.html", title="Outboxes", rows=rows)


@bp.post("/<channel>/resume")
def resume(channel: str) -> ResponseReturnValue:
    """Lift a channel's pause now and start flushing it."""
    if channel not in CHANNELS:
        return page("message.html", 404, title="Outboxes", text=f"There is no {channel} outbox.")
    rt = runtime()
    done = handover.resume(rt.store, rt.enqueuer, channel, user())
    flash(f"{channel} outbox resumed" if done else f"{channel} outbox was not paused")
    return back(url_for("ui.outboxes.page"))
