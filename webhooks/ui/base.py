"""What every page shares: rendering a template with the signed-in person, their CSRF token and the flash line;
the filters that show times (the configured zone, ISO-8601 with offset) and masked numbers; reading a form's
list of ids and a page's time filters. Reads nothing from the store."""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from flask import Flask, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from webhooks.context import runtime
from workers.store.pages import Position
from workers.tools.trace import mask

# The most ids one bulk form may carry (a page never lists more).
MAX_BULK = 500


def page(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    """`ui/<template>` inside the layout, with who is signed in, the session's CSRF token and any flash line."""
    return render_template(f"ui/{template}", user=session.get("user"), csrf=session.get("csrf"),
                           flash=session.pop("flash", None), **context), status


def flash(text: str) -> None:
    """A line shown once, on the next page this browser sees."""
    session["flash"] = text[:2000]


def user() -> str:
    """The signed-in person's name (the guard lets no one else through)."""
    return str(session.get("user") or "operator")


def zone() -> ZoneInfo:
    """The zone pages show times in: HOOKLINE_TIMEZONE."""
    return ZoneInfo(runtime().settings.timezone)


def iso(ts: Any) -> str:
    """A Unix time as ISO-8601 with its offset, in the configured zone; '' for none."""
    try:
        return datetime.fromtimestamp(float(ts), tz=zone()).isoformat(timespec="seconds")
    except (TypeError, ValueError, OverflowError):
        return ""


def when(ts: Any) -> str:
    """A Unix time as a person reads it, `YYYY-MM-DD HH:MM:SS +HH:MM` in the configured zone; `-` for none."""
    stamp = iso(ts)
    return f"{stamp[:10]} {stamp[11:19]} {stamp[19:]}" if stamp else "-"


def ago(ts: Any) -> str:
    """How long ago (or how far ahead) a Unix time is, roughly: `3 min ago`, `in 2 h`."""
    try:
        delta = float(ts) - time.time()
    except (TypeError, ValueError):
        return ""
    size = abs(delta)
    amount = (f"{size:.0f} s" if size < 90 else f"{size / 60:.0f} min" if size < 5400
              else f"{size / 3600:.0f} h" if size < 129600 else f"{size / 86400:.0f} d")
    return f"in {amount}" if delta > 0 else f"{amount} ago"


def install_filters(app: Flask) -> None:
    """The template filters the pages use."""
    app.add_template_filter(when, "when")
    app.add_template_filter(iso, "iso")
    app.add_template_filter(ago, "ago")
    app.add_template_filter(mask, "mask")


def form_ids(name: str = "ids") -> list[str]:
    """The ids a bulk form ticked (at most MAX_BULK, blanks dropped, order kept)."""
    seen = dict.fromkeys(i.strip() for i in request.form.getlist(name) if i.strip())
    return list(seen)[:MAX_BULK]


def note() -> str:
    """The form's note field, bounded."""
    return (request.form.get("note") or "").strip()[:500]


def parse_time(raw: str | None) -> float | None:
    """A page's `since`/`until` filter: Unix seconds, or an ISO-8601 date or time (the configured zone when it
    has no offset); None when empty. ValueError, saying so, when it is neither."""
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"{raw!r} is not a time")
        return seconds
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a time: give an ISO-8601 date or time, or Unix seconds") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone())).timestamp()


def summary(results: dict[str, str]) -> str:
    """A flash line for a bulk action's results: each distinct outcome with how many ids had it."""
    counts: dict[str, int] = {}
    for outcome in results.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    if len(results) == 1:
        [(mid, outcome)] = results.items()
        return f"{mid}: {outcome}"
    return "; ".join(f"{n} {outcome}" for outcome, n in counts.items()) or "nothing was chosen"


def safe_next(target: str | None) -> str | None:
    """`target` when it is a page of ours under /ui/ (a path on this site, nothing that leaves it), else None."""
    if not target or "\\" in target or any(ord(c) < 0x21 for c in target):
        return None
    parts = urlsplit(target)
    # The browser decodes %2e%2e to ".." before it resolves the path, so judge the decoded segments.
    segments = unquote(parts.path).split("/")
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui/") or {".", ".."} & set(segments):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def back(default: str) -> ResponseReturnValue:
    """Redirect to the page the form came from (its `back` field, one of ours), else to `default`."""
    return redirect(safe_next(request.form.get("back")) or default)


def read_cursor() -> Position | None:
    """The page's `cursor` (where the previous page stopped); ValueError saying so when it is not ours."""
    raw = request.args.get("cursor")
    try:
        return Position.from_cursor(raw) if raw else None
    except ValueError:
        raise ValueError("That page link is not one this site made; start again from the first page.") from None


def read_window() -> tuple[Position | None, float | None, float | None]:
    """A list page's `cursor`, `since` and `until`; ValueError saying which is unreadable."""
    return read_cursor(), parse_time(request.args.get("since")), parse_time(request.args.get("until"))


def next_page(endpoint: str, position: Position | None) -> str | None:
    """The link to the page after this one (same filters, `cursor` where this one stopped), None at the end."""
    if position is None:
        return None
    # url_for's own keywords (`endpoint`, `_external`, `_method`…) are not filters: a query naming them is dropped.
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k != "endpoint" and not k.startswith("_")}
    return url_for(endpoint, **(args | {"cursor": position.cursor()}))
