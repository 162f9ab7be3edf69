"""The real Alertmanager notifies a running Hookline: the firing group pages, Alertmanager's quick retry of a
notification whose answer it lost is a duplicate, the repeat after repeat_interval pages again, and the resolve
is reported.

Debian's `prometheus-alertmanager` (installed by .ci/run when missing) runs on loopback ports with its cluster
off, and sends to the web app served on a loopback port (the `live_server` fixture) with the shipped rules. The
test skips only when the binary is absent.

Alertmanager's clock is scaled down from minutes to seconds so the test is bounded (DEADLINE), and two shipped
windows are scaled with it, because at this scale they would (rightly) swallow the repeat:
- the alerts source's dedupe window, the alertmanager preset's 60 s, is set to WINDOW (4 s): past the retry
  (within a second), short of the repeat (REPEAT, 8 s). In production the minute sits the same way between
  Alertmanager's retries (seconds apart) and its repeat_interval (4 h by default, and never sooner than
  group_interval, 5 min by default).
- the `paging` policy's duplicate_window (2 min: the same text to the same person is not sent twice) is replaced
  by the neutral policies every flow test uses (tests/conftest.py `neutral_rules`); a repeat_interval of minutes
  or more is past it, as the README says.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from tests.conftest import SECRETS, Simulator, neutral_rules
from workers.entry.runtime import Runtime
from workers.tools.localredis import free_port
from workers.wiring.settings import Settings

BINARY = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
GROUP_WAIT, GROUP_INTERVAL, REPEAT = 1, 1, 8  # seconds
WINDOW = 4  # the alerts source's dedupe window in this test: past a retry, short of a repeat
DEADLINE = 25.0  # seconds the whole exchange may take (it takes about GROUP_WAIT + REPEAT + 2)
ONCALL = {"+61411111111", "+61422222222"}  # rules/alerts.yaml's `to`

LABELS = {"alertname": "HooklineLiveDown", "severity": "critical", "instance": "web-1:9100", "job": "node"}
SUMMARY = "web-1:9100 has been down for more than 5 minutes"
# rules/templates/alert-sms.j2 and alert-voice.j2 for one alert: every label is common, so the title names the
# alertname and severity; the firing SMS lists the alert's own summary, the resolve its instance.
FIRING_SMS = f"[FIRING:1] HooklineLiveDown (critical): {SUMMARY}"
FIRING_CALL = f"Critical alert: HooklineLiveDown, 1 firing. {SUMMARY}. Check your messages."
RESOLVED_SMS = "[RESOLVED] HooklineLiveDown (critical): web-1:9100"

pytestmark = pytest.mark.skipif(
    not Path(BINARY).is_file(),
    reason="prometheus-alertmanager is not installed (Debian: apt-get install prometheus-alertmanager; "
           ".ci/run installs it)")


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """The shipped rules with neutral policies (no 2-minute duplicate_window), and the alerts source's dedupe
    window scaled from the preset's minute to WINDOW seconds, like repeat_interval from hours to REPEAT seconds."""
    rules = neutral_rules(tmp_path / "rules")
    sources = rules / "sources.yaml"
    token_line = '    secret: "${ALERTMANAGER_TOKEN}"\n'
    text = sources.read_text()
    assert text.count(token_line) == 1, "the shipped alerts source changed; update this test"
    sources.write_text(text.replace(token_line, f"{token_line}    dedupe_window: {WINDOW}s\n"))
    return rules


@pytest.fixture
def settings(settings: Settings, simulator: Simulator) -> Settings:
    """Pages go to the ClickSend simulator on loopback, unthrottled."""
    return settings.with_(clicksend_base_url=simulator.url, send_rate=1000.0)


@dataclass
class Delivery:
    """One notification as Hookline received it and what it answered (after `Recorder` had its say)."""

    at: float  # seconds since the alert was posted
    body: bytes
    user_agent: str
    status: int  # what Hookline's edge answered
    answer: dict[str, Any]
    sent_status: int  # what Alertmanager got


@dataclass
class Recorder:
    """Records every /hooks request the app answers; drops the answer to the first one (a lost response)."""

    start: float = field(default_factory=time.monotonic)
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, app: Flask) -> None:
        """Wrap the whole WSGI app: webhooks are answered in front of Flask, so no Flask hook sees them."""
        inner = app.wsgi_app

        def recorded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if not environ.get("PATH_INFO", "").startswith("/hooks/"):
                return inner(environ, start_response)
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            answered: list[Any] = []
            chunks = b"".join(inner(environ, lambda status, headers, exc_info=None: answered.extend([status, headers])))
            status, headers = answered
            with self.lock:
                first = not self.deliveries
                # The event is stored (202) but Alertmanager sees a 503, as if the answer had been lost on the way:
                # it retries the same body within a second, which is what the dedupe window is for.
                sent = ("503 Service Unavailable", [("Content-Type", "text/plain")], b"answer lost") if first \
                    else (status, headers, chunks)
                self.deliveries.append(Delivery(time.monotonic() - self.start, body,
                                                environ.get("HTTP_USER_AGENT", ""), int(status.split()[0]),
                                                json.loads(chunks or b"{}"), int(sent[0].split()[0])))
            start_response(sent[0], sent[1])
            return [sent[2]]

        app.wsgi_app = recorded  # type: ignore[method-assign]

    def wait_for(self, count: int, what: str) -> list[Delivery]:
        deadline = self.start + DEADLINE
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.deliveries) >= count:
                    return list(self.deliveries)
            time.sleep(0.05)
        raise AssertionError(f"no {what} within {DEADLINE:.0f}s; got {self.deliveries}")


@dataclass
class Alertmanager:
    """A running prometheus-alertmanager and its API."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def post(self, alert: dict[str, Any]) -> None:
        answer = requests.post(f"{self.url}/api/v2/alerts", json=[alert], timeout=5)
        assert answer.status_code == 200, answer.text

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def recorder(app: Flask) -> Recorder:
    rec = Recorder()
    rec.install(app)
    return rec


@pytest.fixture
def alertmanager(tmp_path: Path, recorder: Recorder, live_server: str) -> Iterator[Alertmanager]:
    """prometheus-alertmanager on free loopback ports, its one receiver Hookline's /hooks/alerts."""
    config = tmp_path / "am.yml"
    config.write_text(
        "route:\n"
        "  receiver: hookline\n"
        "  group_by: [alertname]\n"
        f"  group_wait: {GROUP_WAIT}s\n"
        f"  group_interval: {GROUP_INTERVAL}s\n"
        f"  repeat_interval: {REPEAT}s\n"
        "receivers:\n"
        "  - name: hookline\n"
        "    webhook_configs:\n"
        f"      - url: {live_server}/hooks/alerts\n"
        "        send_resolved: true\n"
        "        http_config:\n"
        f"          authorization: {{credentials: {SECRETS['ALERTMANAGER_TOKEN']}}}\n")
    am = _start(config, tmp_path)
    try:
        yield am
    finally:
        am.stop()


def _start(config: Path, tmp_path: Path) -> Alertmanager:
    # A free port can be taken by someone else before Alertmanager binds it: then it exits, and another is tried.
    for attempt in range(3):
        port = free_port()
        url, log = f"http://127.0.0.1:{port}", tmp_path / f"alertmanager-{attempt}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [BINARY, f"--config.file={config}", f"--storage.path={tmp_path / 'am-data'}",
                 f"--web.listen-address=127.0.0.1:{port}", f"--web.external-url={url}",
                 "--cluster.listen-address=", "--log.level=debug"],
                stdout=out, stderr=subprocess.STDOUT)
        am = Alertmanager(url, proc, log)
        try:
            if _ready(am):
                return am
        except BaseException:
            am.stop()
            raise
        if "address already in use" not in log.read_text():
            raise AssertionError(f"alertmanager exited {proc.returncode}:\n{log.read_text()}")
    raise AssertionError("no free port for alertmanager in three tries")


def _ready(am: Alertmanager, timeout: float = 10) -> bool:
    """True once Alertmanager answers /-/ready; False when it exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if am.proc.poll() is not None:
            return False
        try:
            if requests.get(f"{am.url}/-/ready", timeout=1).status_code == 200:
                return True
        except requests.RequestException:  # not listening yet (or someone else is, and it exits)
            pass
        time.sleep(0.05)
    raise AssertionError(f"alertmanager did not become ready:\n{am.log.read_text()}")


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _alert(starts: datetime, ends: datetime | None = None) -> dict[str, Any]:
    alert: dict[str, Any] = {"labels": LABELS, "annotations": {"summary": SUMMARY}, "startsAt": _stamp(starts),
                             "generatorURL": "http://prometheus.invalid/graph?g0.expr=up+%3D%3D+0"}
    if ends is not None:
        alert["endsAt"] = _stamp(ends)
    return alert


def _pages(runtime: Runtime, event_id: str) -> set[tuple[str, str, str | None, str | None, str]]:
    ids = runtime.store.messages.event_message_ids(event_id)
    messages = [m for m in runtime.store.messages.get_messages(ids) if m is not None]
    assert len(messages) == len(ids)
    return {(m.rule, m.channel, m.to, m.body, m.state) for m in messages}


def _expected(rules: dict[tuple[str, str], str]) -> set[tuple[str, str, str | None, str | None, str]]:
    return {(rule, channel, to, body, "sent") for (rule, channel), body in rules.items() for to in ONCALL}


def test_firing_retry_repeat_and_resolve_from_the_real_alertmanager(
        alertmanager: Alertmanager, recorder: Recorder, runtime: Runtime, simulator: Simulator,
        work: Callable[..., None]) -> None:
    starts = datetime.now(UTC)
    recorder.start = time.monotonic()
    alertmanager.post(_alert(starts))
    first, retry, repeat = recorder.wait_for(3, "firing, retry and repeat notifications")[:3]
    alertmanager.post(_alert(starts, ends=datetime.now(UTC) - timedelta(seconds=1)))
    resolved = recorder.wait_for(4, "resolved notification")[3]
    alertmanager.stop()  # nothing more may arrive while the assertions run
    deliveries = recorder.deliveries
    print("\n".join(f"{d.at:6.2f}s  {d.status} (Alertmanager got {d.sent_status})  {d.answer}" for d in deliveries))

    # Alertmanager sent them all, with the token; the retry and the repeat byte for byte the first body.
    assert len(deliveries) == 4
    assert all(d.user_agent.startswith("Alertmanager/") for d in deliveries)
    assert retry.body == first.body and repeat.body == first.body and resolved.body != first.body
    # The first was stored (its answer lost); the quick retry is answered as the duplicate it is, with the
    # first event's id; the repeat after repeat_interval, past the window, is a new event; so is the resolve.
    assert (first.status, first.sent_status) == (202, 503)
    assert retry.status == 200 and retry.answer == {"event_id": first.answer["event_id"], "duplicate": True}
    assert retry.at - first.at < WINDOW
    assert repeat.status == 202 and repeat.answer["event_id"] != first.answer["event_id"]
    assert repeat.at - first.at >= REPEAT  # Alertmanager's repeat, not another retry
    assert resolved.status == 202 and resolved.answer["event_id"] not in (first.answer["event_id"],
                                                                          repeat.answer["event_id"])

    work()  # drain → plan → admit → flush to the simulator
    ids = {name: d.answer["event_id"] for name, d in
           (("firing", first), ("repeat", repeat), ("resolved", resolved))}
    for name, event_id in ids.items():
        record = runtime.store.events.get_event(event_id)
        assert record is not None and record.status == "processed", (name, record)
        assert record.event.type == ("resolved" if name == "resolved" else "firing")
    pages = _expected({("page-oncall-sms", "sms"): FIRING_SMS, ("page-oncall-voice", "voice"): FIRING_CALL})
    assert _pages(runtime, ids["firing"]) == pages
    assert _pages(runtime, ids["repeat"]) == pages  # it pages again
    assert _pages(runtime, ids["resolved"]) == _expected({("alert-resolved", "sms"): RESOLVED_SMS})
    # And that is what reached ClickSend: 2 + 2 + 2 texts, 2 + 2 calls.
    sent = sorted((s.channel, s.to, s.body) for s in simulator.state.sent)
    assert sent == sorted([("sms", to, FIRING_SMS) for to in ONCALL] * 2 + [("voice", to, FIRING_CALL)
                          for to in ONCALL] * 2 + [("sms", to, RESOLVED_SMS) for to in ONCALL])
