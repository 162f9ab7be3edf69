"""`hookline demo` against a real `hookline up`: signed events accepted, followed live, and its exit code."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.conftest import NEUTRAL_POLICIES, ROOT, neutral_rules
from tests.waiting import wait_for
from workers.tools.localredis import free_port

# The order goes to a person first, whatever the hour: the demo then shows a hold and how to approve it.
BY_HAND = '  by-hand: {approval: manual, quiet_hours: {from: "21:00", to: "08:00", action: send}}\n'


def _ready(base: str, proc: subprocess.Popen[str]) -> bool:
    assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
    try:
        return requests.get(f"{base}/readyz", timeout=1).status_code == 200
    except requests.RequestException:
        return False  # still starting


def _demo(cwd: Path, *args: str, **exported: str) -> subprocess.CompletedProcess[str]:
    """`hookline demo` in another terminal beside `up`: nothing exported but where Python finds our code (and
    `exported`)."""
    return subprocess.run([sys.executable, "-m", "workers.entry.cli", "demo", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=200,
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **exported})


def test_demo_posts_the_three_uses_follows_them_until_settled_and_names_the_hold(tmp_path: Path) -> None:
    rules = neutral_rules(tmp_path / "rules")
    (rules / "policies.yaml").write_text(NEUTRAL_POLICIES + BY_HAND)
    shop = (rules / "shop.yaml").read_text()
    (rules / "shop.yaml").write_text(shop.replace('key: "order-{{ payload.id }}"\n',
                                                  'key: "order-{{ payload.id }}"\n    policy: by-hand\n', 1))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "HOOKLINE_"))}
    for name in ("SHOP_WEBHOOK_SECRET", "ALERTMANAGER_TOKEN", "CALCOM_WEBHOOK_SECRET"):
        env.pop(name, None)  # up generates them; the demo must sign with those
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "workers.entry.cli", "up", "--port", str(port), "--workers", "1"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(base, proc), "hookline up to be ready", timeout=60, interval=0.2)
        done = _demo(tmp_path, "--timeout", "150")
        # A secret that is not the one up uses (the environment wins over up's files): refused, and it says so.
        wrong = _demo(tmp_path, "--timeout", "150", SHOP_WEBHOOK_SECRET="not-the-secret")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=40)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    for label, source in [("order", "shop"), ("alert", "alerts"), ("booking", "bookings"),
                          ("booking moved", "bookings"), ("booking cancelled", "bookings")]:
        assert re.search(rf"^{label}: accepted as evt_\w+ \(POST /hooks/{source}\)$", out, re.M), out
    held = re.search(r"^order: (msg_\w+) is HELD for approval: approve with `hookline approvals approve \1` "
                     rf"or at {base}/ui/approvals$", out, re.M)
    assert held, out
    # Each reminder of the booking is scheduled, replaced when it moves, and the new ones cancelled with it.
    for rule in ("reminder-24h", "reminder-2h"):
        assert re.search(rf"^booking: msg_\w+ .*\({rule}\) .* planned → scheduled \(sends ", out, re.M), out
        assert re.search(rf"^booking: msg_\w+ .*\({rule}\) .* scheduled → cancelled: cancelled by rule "
                         "booking-moved$", out, re.M), out
        assert re.search(rf"^booking moved: msg_\w+ .*\({rule}\) .* scheduled → cancelled: cancelled by rule "
                         "booking-cancelled$", out, re.M), out
    # The page goes out by SMS and voice to both on-call numbers, and their receipts arrive.
    assert len(re.findall(r"^alert: msg_\w+ .* sent → delivered: receipt", out, re.M)) == 4, out
    assert "alert: ok (delivered, delivered, delivered, delivered)" in out
    assert "order: ok (held)" in out and "booking cancelled: ok (no messages)" in out
    assert out.rstrip().endswith("demo: every event settled as expected")
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert re.search(r"^order: refused 401 ", wrong.stdout, re.M), wrong.stdout
    assert "alert: ok (delivered, delivered, delivered, delivered)" in wrong.stdout
    assert wrong.stdout.rstrip().endswith("demo: not every event settled as expected")


def test_demo_without_a_running_up_says_what_is_missing(tmp_path: Path) -> None:
    done = _demo(tmp_path)
    assert done.returncode == 2
    assert "SHOP_WEBHOOK_SECRET, ALERTMANAGER_TOKEN, CALCOM_WEBHOOK_SECRET: not set" in done.stderr
