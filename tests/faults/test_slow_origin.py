"""An origin (the callback destination) that is slow, then down, does not slow sending or receipts: messages
are sent and their receipts applied while a callback attempt hangs, and again while the origin refuses
connections. Callbacks run on their own queue, served by their own worker process (the Procfile's
`callbacks`), so a hanging origin holds that worker only."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask

from tests.conftest import serve
from tests.faults.cluster import SOURCES, Cluster, assert_each_sent_once, cluster, expected_messages, phone
from tests.faults.test_worker_kills import all_processed
from tests.waiting import wait_for

pytestmark = pytest.mark.faults

CALLBACK_TIMEOUT = 120  # longer than any wait below: an attempt that started stays in flight throughout


@dataclass
class HangingOrigin:
    """An origin that takes every callback and answers none until released."""

    url: str = ""
    release: threading.Event = field(default_factory=threading.Event)
    started: int = 0
    answered: int = 0
    stop: Callable[[], None] = lambda: None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Flask:
        app = Flask("hanging-origin")

        @app.post("/cb/<mid>")
        def receive(mid: str) -> str:
            with self.lock:
                self.started += 1
            self.release.wait(CALLBACK_TIMEOUT + 30)
            with self.lock:
                self.answered += 1
            return "{}"

        return app


@pytest.fixture
def origin() -> Iterator[HangingOrigin]:
    server = HangingOrigin()
    server.url, stop = serve(server.app())
    stopped = threading.Event()

    def stop_once() -> None:
        if not stopped.is_set():
            stopped.set()
            stop()

    server.stop = stop_once
    yield server
    server.release.set()
    stop_once()


def post(c: Cluster, tag: str, count: int) -> list[str]:
    ids = []
    for i in range(count):
        answer = c.post({"id": f"{tag}-{i}", "kind": "notice", "phone": phone(hash(tag) % 1000 * 1000 + i), "n": i})
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["event_id"])
    return ids


def delivered(c: Cluster, event_ids: list[str]) -> bool:
    store = c.store()
    if not all_processed(store, event_ids):
        return False
    msgs = store.messages.get_messages(list(expected_messages(store, event_ids)))
    return bool(msgs) and all(m is not None and m.state == "delivered" for m in msgs)


def test_a_hanging_then_dead_origin_does_not_hold_up_sending_or_receipts(tmp_path: Path,
                                                                         origin: HangingOrigin) -> None:
    sources = SOURCES + (
        "    callback:\n"
        f"      url: \"{origin.url}/cb/{{{{ message.id }}}}\"\n"
        "      on: [sent, delivered]\n"
        "      allow_private: true\n"
        f"      timeout: {CALLBACK_TIMEOUT}s\n"
        "      max_attempts: 2\n")
    with cluster(tmp_path, sources=sources) as c:
        c.start_simulator()
        c.start_service()
        first = post(c, "a", 10)
        wait_for(lambda: origin.started > 0, "a callback to reach the origin and hang", timeout=60)
        hanging = origin.started
        c.note(f"{hanging} callback attempt(s) hanging at the origin")

        later = post(c, "b", 20)
        wait_for(lambda: delivered(c, first + later), "every message sent and its receipt applied while the "
                 "origin hangs", timeout=100, interval=0.5)
        assert origin.answered == 0 and origin.started == hanging, c.report()  # the attempt still hangs

        origin.release.set()  # answer what hangs, then go away: connections are refused from now on
        wait_for(lambda: origin.answered >= hanging, "the origin to answer what it held", timeout=30)
        origin.stop()
        c.note(f"origin at {origin.url} answered what it held and stopped: connections are refused")
        last = post(c, "c", 20)
        wait_for(lambda: delivered(c, last), "every message sent and its receipt applied while the origin is "
                 "down", timeout=100, interval=0.5)
        store = c.store()
        assert_each_sent_once(c, expected_messages(store, first + later + last))
        assert c.dead() == [], c.report()
