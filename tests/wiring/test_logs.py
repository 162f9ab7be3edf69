"""Log format: plain lines by default, one JSON object per line with HOOKLINE_LOG_FORMAT=json, in a real process
configured from its environment the way every Hookline process is."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT, SECRETS

# What a process does at start (settings from the environment, then logs.configure), then one line with fields.
SCRIPT = """
import logging
from workers.wiring import logs
from workers.wiring.settings import Settings
logs.configure(Settings.from_env(require_redis=False))
try:
    raise ValueError("boom")
except ValueError:
    logging.getLogger("hookline.test").exception("message %s failed", "msg_1", extra={"message_id": "msg_1"})
logging.getLogger("hookline.test").info("accepted event %s", "evt_1", extra={"event_id": "evt_1"})
"""


def run(**env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=clean | {"PYTHONPATH": str(ROOT), **env}, cwd=ROOT,
                          capture_output=True, text=True, check=True, timeout=60)
    return done.stderr.splitlines()


def test_json_format_writes_one_object_per_line_with_the_fields() -> None:
    lines = run(HOOKLINE_LOG_FORMAT="json")
    assert len(lines) == 2, lines  # the traceback is inside its line, not lines of its own
    failed, accepted = map(json.loads, lines)
    assert failed["level"] == "ERROR" and failed["logger"] == "hookline.test"
    assert failed["message"] == "message msg_1 failed" and failed["message_id"] == "msg_1"
    assert "ValueError: boom" in failed["exception"]
    assert accepted["message"] == "accepted event evt_1" and accepted["event_id"] == "evt_1"
    assert accepted["time"].endswith("+00:00")


def test_plain_format_is_the_default() -> None:
    lines = run()
    assert lines[0].endswith("ERROR hookline.test: message msg_1 failed")
    assert "ValueError: boom" in lines
    assert lines[-1].endswith("INFO hookline.test: accepted event evt_1")


def test_json_format_covers_rqs_own_lines_in_a_worker(redis_url: str) -> None:
    # RQ's command puts its own handlers on `rq.worker` (not propagating) before the worker class is built.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
    env = clean | SECRETS | {"PYTHONPATH": str(ROOT), "REDIS_URL": redis_url, "HOOKLINE_LOG_FORMAT": "json"}
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "rq"), "worker", "--burst", "--url",
                           redis_url, "--worker-class", "workers.entry.worker.HooklineWorker", "log-format-test"],
                          env=env, cwd=ROOT, capture_output=True, text=True, check=True, timeout=60)
    lines = (done.stdout + done.stderr).splitlines()
    assert any("log-format-test" in json.loads(line)["message"] for line in lines if line.startswith("{")), lines
    assert [line for line in lines if not line.startswith("{")] == []
    assert {json.loads(line)["logger"] for line in lines} >= {"rq.worker"}
