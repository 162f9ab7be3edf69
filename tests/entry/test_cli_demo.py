"""`hookline demo` against a real `hookline up`: signed events accepted, followed live, and its exit code; run
from the built wheel (not the checkout), and with one clear line for an address that is wrong or where nothing
answers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import requests

from tests.conftest import NEUTRAL_POLICIES, ROOT, neutral_rules
from tests.waiting import wait_for
from workers.tools import demo
from workers.tools.localredis import free_port

# The order goes to a person first, whatever the hour: the demo then shows a hold and how to approve it.
BY_HAND = '  by-hand: {approval: manual, quiet_hours: {from: "21:00", to: "08:00", action: send}}\n'


def _ready(base: str, proc: subprocess.Popen[str]) -> bool:
    assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
    try:
        return requests.get(f"{base}/readyz", timeout=1).status_code == 200
    except requests.RequestException:
        return False  # still starting


def _demo(cwd: Path, *args: str, code: Path = ROOT, **exported: str) -> subprocess.CompletedProcess[str]:
    """`hookline demo` in another terminal beside `up`: nothing exported but where Python finds our code (`code`:
    the checkout, or an installed wheel) and `exported`."""
    return subprocess.run([sys.executable, "-m", "workers.entry.cli", "demo", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=200,
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": str(code), **exported})


def _installed(wheel: Path, target: Path) -> Path:
    """The wheel's files where an installer puts them (a pure-Python wheel unpacked); the dependencies are this
    environment's. Checked to be what Python imports there, not the checkout."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    found = subprocess.run([sys.executable, "-c", "import workers.tools.demo as d; print(d.__file__)"],
                           cwd=target.parent, capture_output=True, text=True, timeout=60,
                           env={"PATH": os.environ["PATH"], "PYTHONPATH": str(target)})
    assert Path(found.stdout.strip()).is_relative_to(target), found.stdout + found.stderr
    return target


def test_demo_posts_the_three_uses_follows_them_until_settled_and_names_the_hold(tmp_path: Path,
                                                                               built_wheel: Path) -> None:
    installed = _installed(built_wheel, tmp_path / "installed")
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
        # As installed from the wheel: its payloads are the package's, with no checkout beside it.
        done = _demo(tmp_path, "--timeout", "150", code=installed)
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


SIGNING = {"SHOP_WEBHOOK_SECRET": "s1", "ALERTMANAGER_TOKEN": "s2", "CALCOM_WEBHOOK_SECRET": "s3"}


def test_demo_given_an_address_that_is_not_one_says_so_in_one_line(tmp_path: Path, redis_url: str) -> None:
    for url, why in [("localhost:8000", "is not an http:// or https:// address with a host"),
                     ("http://127.0.0.1:99999", "is not a URL (Port out of range 0-65535)")]:
        done = _demo(tmp_path, "--url", url, REDIS_URL=redis_url, **SIGNING)
        assert (done.returncode, done.stdout) == (2, ""), done.stderr
        assert done.stderr.startswith(f"hookline demo: --url: {url!r} {why}") and done.stderr.count("\n") == 1, \
            done.stderr


def test_demo_where_nothing_answers_says_so_in_one_line(tmp_path: Path, redis_url: str) -> None:
    base = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = _demo(tmp_path, "--url", base, REDIS_URL=redis_url, **SIGNING)
    assert (done.returncode, done.stdout) == (1, ""), done.stderr
    assert done.stderr == (f"hookline demo: nothing answers at {base} (Connection refused): is `hookline up` "
                           "running? (--url names another address)\n")


def test_a_webhook_the_server_no_longer_takes_is_reported_not_raised() -> None:
    base, said = f"http://127.0.0.1:{free_port()}", []
    assert demo.post(base, demo.alert("token", "run1"), say=said.append) is None
    assert said == [f"alert: not sent: POST {base}/hooks/alerts failed (Connection refused)"]
