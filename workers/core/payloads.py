"""The exact ClickSend v3 request bodies for a batch of messages (`/v3/sms|mms|voice/send`).

Pure: shared by the sender and the dry run, so what the dry run shows is what is sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from workers.core.messages import Message

SOURCE_LABEL = "hookline"
ENDPOINTS = {"sms": "/v3/sms/send", "mms": "/v3/mms/send", "voice": "/v3/voice/send"}


def message_entry(msg: Message) -> dict[str, Any]:
    """One `messages[]` item; `custom_string` is the Hookline message id (the only idempotency handle)."""
    entry: dict[str, Any] = {"body": msg.body, "source": SOURCE_LABEL, "custom_string": msg.id}
    if msg.list_id:
        entry["list_id"] = msg.list_id
    else:
        entry["to"] = msg.to
    if msg.from_:
        entry["from"] = msg.from_
    if msg.country:
        entry["country"] = msg.country
    if msg.channel == "mms":
        entry["subject"] = msg.subject
    elif msg.channel == "voice":
        entry["voice"] = msg.voice or "female"
        entry["lang"] = msg.lang or "en-us"
        entry["require_input"] = 1 if msg.require_input else 0
        entry["machine_detection"] = 1 if msg.machine_detection else 0
    return entry


def request_body(channel: str, messages: Iterable[Message]) -> dict[str, Any]:
    """The JSON body for one send call. MMS batches must share one `media_file` (grouped by the caller)."""
    batch = list(messages)
    body: dict[str, Any] = {"messages": [message_entry(m) for m in batch]}
    if channel == "mms":
        media = {m.media_file for m in batch}
        if len(media) != 1:
            raise ValueError("an MMS batch must share one media_file")
        body["media_file"] = media.pop()
    return body
