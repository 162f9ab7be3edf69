"""Alertmanager's quick retries are duplicates; its repeat_interval re-notification (byte-identical) is not.

The alertmanager provider keeps the body's digest as the event id and dedupes for one minute, not 24 hours. The
bodies are real: tests/fixtures/providers/alertmanager/firing.json, sent twice by Alertmanager 0.25 20 s apart.
"""

from __future__ import annotations

import time

from tests.conftest import ROOT
from tests.waiting import wait_for
from workers.core.events import body_digest, event_id_for
from workers.entry.runtime import Runtime
from workers.store.keys import seen_key

FIRING = (ROOT / "tests/fixtures/providers/alertmanager/firing.json").read_bytes()
DEDUPE_ID = event_id_for("alerts", body_digest(FIRING))  # what a repeat is recognised by


def post(client, secrets_env):  # noqa: ANN001, ANN201 - Flask's test client
    return client.post("/hooks/alerts", data=FIRING, headers={
        "Content-Type": "application/json", "User-Agent": "Alertmanager/0.25.0",
        "Authorization": f"Bearer {secrets_env['ALERTMANAGER_TOKEN']}"})


def test_a_retry_within_the_window_is_a_duplicate_and_after_it_is_accepted(client, runtime: Runtime,  # noqa: ANN001
                                                                        secrets_env) -> None:  # noqa: ANN001
    first = post(client, secrets_env)
    retry = post(client, secrets_env)
    assert (first.status_code, retry.status_code) == (202, 200)
    assert retry.json == {"event_id": first.json["event_id"], "duplicate": True}
    key = seen_key(DEDUPE_ID)
    # The window is the provider's minute, not HOOKLINE_DEDUPE_WINDOW's day.
    assert 0 < runtime.store.r.pttl(key) <= 60_000
    assert runtime.settings.dedupe_window > 60
    # Time passes (the store forgets the id when the window ends): the repeat notification is accepted.
    runtime.store.r.pexpire(key, 1)
    wait_for(lambda: not runtime.store.r.exists(key), "the dedupe marker to expire")
    assert post(client, secrets_env).status_code == 202


def test_the_store_dedupes_for_exactly_the_window_it_is_given(runtime: Runtime) -> None:
    from workers.core.events import Event

    event = Event(id="evt_am_window", source="alerts", type="firing", external_id="sha256:x", received_at=0.0,
                  payload={})
    assert runtime.store.events.ingest(event, 0.05, 3600, runtime.settings.partitions).created
    assert not runtime.store.events.ingest(event, 0.05, 3600, runtime.settings.partitions).created
    wait_for(lambda: not runtime.store.r.exists(seen_key(event.dedupe_id)), "the 50 ms window to pass")
    assert runtime.store.events.ingest(event, 0.05, 3600, runtime.settings.partitions).created


def test_a_repeat_notification_pages_again(client, runtime: Runtime, secrets_env) -> None:  # noqa: ANN001
    first = post(client, secrets_env)
    runtime.processing.process_events([first.json["event_id"]], time.time())
    runtime.store.r.pexpire(seen_key(DEDUPE_ID), 1)
    wait_for(lambda: not runtime.store.r.exists(seen_key(DEDUPE_ID)), "the dedupe marker to expire")
    repeat = post(client, secrets_env)
    assert repeat.status_code == 202
    counts = runtime.processing.process_events([repeat.json["event_id"]], time.time())
    assert sum(counts.values()) == 4  # two SMS and two calls, again
