"""Messages for tests: a `Message` from the JSON fields a test cares about, the rest filled in."""

from __future__ import annotations

from typing import Any

from workers.core.messages import Message

_DEFAULTS = {"event_id": "evt_test", "source": "shop", "rule": "r", "channel": "sms", "state": "queued"}


def message(**fields: Any) -> Message:
    """A message with `fields` (JSON names: `from`, not `from_`) over test defaults."""
    return Message.from_json(_DEFAULTS | fields)
