"""The `hookline` command: `up` runs and stops the whole service; `rules check` reports every problem."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import psutil
import requests
from click.testing import CliRunner

from tests import signing
from tests.conftest import ROOT, neutral_rules
from workers.core.events import event_id_for
from workers.entry.cli import main
from workers.tools.localredis import free_port


def test_rules_check_passes_on_the_shipped_rules(secrets_env) -> None:  # noqa: ANN001
    result = CliRunner().invoke(main, ["rules", "check", str(ROOT / "rules")])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


def test_rules_check_lists_every_problem_and_fails(tmp_path: Path, secrets_env) -> None:  # noqa: ANN001
    (tmp_path / "sources.yaml").write_text(
        "sources:\n  a: {verify: {scheme: nope}}\n  b: {verify: {scheme: github}}\n"
    )
    result = CliRunner().invoke(main, ["rules", "check", str(tmp_path)])
    assert result.exit_code == 2
    assert "sources.yaml:2: a: verify.scheme:" in result.output
    assert "sources.yaml:3: b: verify.secret: github needs a secret" in result.output


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if requests.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass  # still starting
        time.sleep(0.2)
    raise AssertionError("hookline up did not become ready")


def _beside(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`hookline ARGS` in another process, in `cwd`, with nothing exported (only where Python finds our code)."""
    return subprocess.run([sys.executable, "-m", "workers.entry.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)})


def test_up_runs_everything_commands_beside_it_need_no_environment_and_ctrl_c_leaves_nothing_behind(
        tmp_path: Path) -> None:
    neutral_rules(tmp_path / "rules")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "HOOKLINE_"))}
    env.pop("SHOP_WEBHOOK_SECRET", None)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "workers.entry.cli", "up", "--port", str(port), "--workers", "1"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        children = psutil.Process(proc.pid).children(recursive=True)
        cmdlines = []
        for child in children:
            with suppress(psutil.NoSuchProcess):  # a work horse may be gone by the time it is asked
                cmdlines.append(child.cmdline())
        names = " ".join(" ".join(line) for line in cmdlines)
        assert "redis-server" in names and "gunicorn" in names and " worker " in names and " cron " in names
        assert " simulator " in names
        secrets = dict(line.split("=", 1) for line in (tmp_path / ".hookline/secrets.env").read_text().split())
        assert list((tmp_path / ".hookline/redis").glob("appendonly*"))  # AOF on, data under ./.hookline/

        body = (ROOT / "examples/shop-order.json").read_bytes()
        headers = {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
                   "X-Shopify-Webhook-Id": "up-1", **signing.shopify(secrets["SHOP_WEBHOOK_SECRET"], body)}
        accepted = requests.post(f"{base}/hooks/shop", data=body, headers=headers, timeout=5)
        assert accepted.status_code == 202
        event_id = accepted.json()["event_id"]
        auth = {"Authorization": f"Bearer {secrets['HOOKLINE_API_TOKEN']}"}
        deadline = time.monotonic() + 30
        while True:  # webhook → worker → simulator: the order confirmation goes out
            event = requests.get(f"{base}/api/events/{event_id}", headers=auth, timeout=5).json()
            if event["status"] == "processed" and [m["state"] for m in event["messages"]] == ["sent"]:
                break
            assert time.monotonic() < deadline, f"the message never went out: {event}"
            time.sleep(0.2)

        # The message went out through a simulator that, like ClickSend, refuses anyone without the credentials
        # `hookline up` generated for its own workers.
        [sim] = [line for line in cmdlines if "simulator" in line]
        sim_url = f"http://127.0.0.1:{sim[sim.index('--port') + 1]}/v3/account"
        assert requests.get(sim_url, timeout=5).status_code == 401
        assert requests.get(sim_url, auth=("someone", "guess"), timeout=5).status_code == 401

        # Another terminal in the same folder, nothing exported: the commands find up's Redis and secrets.
        traced = _beside(["trace", event_id], tmp_path)
        assert traced.returncode == 0, traced.stderr
        assert traced.stdout.startswith(f"event {event_id}  source=shop  type=orders/create")
        assert "rule=order-confirmation  state=sent" in traced.stdout
        held = _beside(["approvals", "list"], tmp_path)
        assert (held.returncode, held.stdout) == (0, "nothing to approve: no message is held\n"), held.stderr
        assert _beside(["approvals", "list", "--json"], tmp_path).stdout == "[]\n"
        checked = _beside(["rules", "check"], tmp_path)  # up's generated secrets count: no warnings
        assert (checked.returncode, checked.stderr) == (0, ""), checked.stderr
        assert checked.stdout.startswith(f"{tmp_path / 'rules'}: ok (")
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=40)
    assert proc.returncode == 0, output
    assert "hookline: stopping" in output
    assert "MESSAGES ARE SIMULATED" in output
    assert f"hookline: pages at {base}/ui/  (sign in with HOOKLINE_API_TOKEN in .hookline/secrets.env)" in output
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, child.cmdline()
    assert not (tmp_path / ".hookline/up.env").exists()  # nothing runs here now, and commands say so
    after = _beside(["trace", event_id], tmp_path)
    assert after.returncode == 2 and "REDIS_URL: not set" in after.stderr and ".hookline/up.env" in after.stderr


def test_up_outside_the_checkout_says_init_writes_the_rules_and_starts_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "HOOKLINE_"))}
    done = subprocess.run([sys.executable, "-m", "workers.entry.cli", "up", "--port", str(free_port())], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert f"no rules directory at {tmp_path / 'rules'}: `hookline init` writes the example rules there" in done.stdout
    assert not (tmp_path / ".hookline").exists()  # no Redis started, no secrets written
    written = _beside(["init"], tmp_path)
    assert written.returncode == 0, written.stderr
    assert written.stdout.startswith("wrote 9 example files into rules/")
    shipped = sorted(p.relative_to(ROOT / "rules") for p in (ROOT / "rules").rglob("*") if p.is_file())
    assert sorted(p.relative_to(tmp_path / "rules") for p in (tmp_path / "rules").rglob("*") if p.is_file()) == shipped
    assert all((tmp_path / "rules" / p).read_bytes() == (ROOT / "rules" / p).read_bytes() for p in shipped)


def test_rules_test_shows_matches_messages_and_the_clicksend_body() -> None:
    result = CliRunner().invoke(main, ["rules", "test", str(ROOT / "examples/shop-order.json"), "--source", "shop",
                                       "--header", "X-Shopify-Topic: orders/create", "--dir", str(ROOT / "rules")])
    assert result.exit_code == 0, result.output
    assert "+ order-confirmation: matched" in result.output
    assert "- order-cancelled: no match: event type 'orders/create' does not match" in result.output
    assert "body: Hi Bob, thanks for your order #1001 (US$409.94)." in result.output  # USD to an AU number
    assert "GSM-7, 1 segment(s)" in result.output
    assert 'POST /v3/sms/send {"messages": [{"body": "Hi Bob' in result.output


def test_rules_test_json_with_a_ucs2_body_and_a_pretend_time(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shop = tmp_path / "rules/shop.yaml"
    shop.write_text(shop.read_text().replace("We'll text you", "We’ll text you"))
    result = CliRunner().invoke(main, ["rules", "test", str(ROOT / "examples/booking-created.json"), "--source",
                                       "bookings", "--now", "2023-05-24T12:00:00Z", "--json",
                                       "--dir", str(tmp_path / "rules")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    by_rule = {r["rule"]: r for r in report["rules"]}
    assert by_rule["reminder-24h"]["messages"][0]["state"] == "suppressed"  # 24 h before is already past
    # The Cal.com booking starts 2023-05-25T09:30:00Z: two hours earlier
    assert by_rule["reminder-2h"]["messages"][0]["sends"] == "2023-05-25T07:30:00+00:00"
    shop_order = CliRunner().invoke(main, ["rules", "test", str(ROOT / "examples/shop-order.json"), "--source", "shop",
                                           "--type", "orders/create", "--json", "--dir", str(tmp_path / "rules")])
    [msg] = {r["rule"]: r for r in json.loads(shop_order.output)["rules"]}["order-confirmation"]["messages"]
    assert (msg["encoding"], msg["non_gsm"]) == ("UCS-2", ["’"])
    assert msg["clicksend_request"]["body"]["messages"][0]["custom_string"] == msg["id"]


def test_rules_test_notes_an_event_it_cannot_order(tmp_path: Path) -> None:
    booking = json.loads((ROOT / "examples/booking-created.json").read_text())
    del booking["createdAt"]
    (tmp_path / "booking.json").write_text(json.dumps(booking))
    result = CliRunner().invoke(main, ["rules", "test", str(tmp_path / "booking.json"), "--source", "bookings"])
    assert result.exit_code == 0, result.output
    assert "note: order: missing field (createdAt is missing); handled without ordering" in result.output


def test_rules_test_reports_a_missing_event_type() -> None:
    result = CliRunner().invoke(main, ["rules", "test", str(ROOT / "examples/shop-order.json"), "--source", "shop",
                                       "--dir", str(ROOT / "rules")])
    assert result.exit_code == 1
    assert "event type not found" in result.output


def test_trace_replay_and_optout_commands(e2e, client, work, origin, monkeypatch) -> None:  # noqa: ANN001
    from tests.test_end_to_end import post_order
    from workers.flow.origin import callback_id_for

    monkeypatch.setenv("REDIS_URL", e2e.settings.redis_url)
    monkeypatch.setenv("HOOKLINE_RULES_DIR", e2e.settings.rules_dir)
    monkeypatch.setenv("CLICKSEND_BASE_URL", e2e.settings.clicksend_base_url)
    runner = CliRunner()
    origin.script = [(500, {})] * 3  # the order's "sent" callback will give up (max_attempts: 3)
    event_id = post_order(client, "cli-trace")
    work()
    [mid] = e2e.store.messages.event_message_ids(event_id)
    cid = callback_id_for(mid, "sent")
    sender, now = e2e.callback_sender(), time.time()
    assert [sender.deliver(cid, now + 1000 * i) for i in (1, 2)] == ["pending", "exhausted"]

    # trace: the event, its message with the number masked, every transition with its reason, the callback
    traced = runner.invoke(main, ["trace", event_id])
    assert traced.exit_code == 0, traced.output
    lines = traced.output.splitlines()
    assert lines[0].startswith(f"event {event_id}  source=shop  type=orders/create  received ")
    assert lines[0].endswith("status=processed")
    assert lines[1] == "  rules matched: order-confirmation"
    assert lines[2] == f"  {mid}  sms to +6141•••••11  rule=order-confirmation  state=sent"
    assert "+61411111111" not in traced.output
    moves = [line.strip().split("  ", 1)[1] for line in lines[3:7]]  # after each one's time
    assert moves[0] == "· → planned: rule order-confirmation matched"
    assert moves[1].startswith("planned → queued: policy default: approved automatically")
    assert moves[2:] == ["queued → sending: claimed by a flush", "sending → sent: accepted by ClickSend"]
    assert lines[-1] == f"    callback {cid} (sent): exhausted; attempts: 500, 500, 500"
    missing = runner.invoke(main, ["trace", "evt_missing"])
    assert (missing.exit_code, missing.stderr) == (1, "no event evt_missing\n")

    as_json = json.loads(runner.invoke(main, ["trace", event_id, "--json"]).output)
    assert (as_json["event"]["id"], as_json["event"]["status"], as_json["event"]["rules"]) == (
        event_id, "processed", ["order-confirmation"])
    [traced_msg] = as_json["messages"]
    assert (traced_msg["id"], traced_msg["to"], traced_msg["state"]) == (mid, "+6141•••••11", "sent")
    moved = [(e["from"], e["to"]) for e in traced_msg["timeline"] if "kind" not in e]
    assert moved[-1] == ("sending", "sent")
    assert [e["result"] for e in traced_msg["timeline"] if e.get("kind") == "callback"][-1] == "exhausted"
    assert traced_msg["timeline"][0]["at"].endswith("+00:00")  # ISO 8601 with its offset, not a Unix float
    assert [a["status"] for a in traced_msg["callbacks"][0]["attempts"]] == [500, 500, 500]
    assert "+61411111111" not in json.dumps(as_json)
    missing_json = runner.invoke(main, ["trace", "evt_missing", "--json"])
    assert (missing_json.exit_code, missing_json.stdout, missing_json.stderr) == (1, "", "no event evt_missing\n")

    # replay: without ids it lists what gave up; with a message id it sends that message's callbacks again
    listed = runner.invoke(main, ["replay"])
    assert listed.exit_code == 0
    assert listed.output.splitlines() == [
        "CALLBACK" + " " * (len(cid) - 6) + "STATE  MESSAGE" + " " * (len(mid) - 5) + "STATUS     ATTEMPTS",
        f"{cid}  sent   {mid}  exhausted  3"]
    [exhausted] = json.loads(runner.invoke(main, ["replay", "--json"]).output)
    assert (exhausted["id"], exhausted["message_id"], exhausted["status"]) == (cid, mid, "exhausted")
    unknown = runner.invoke(main, ["replay", "cb_missing", mid])
    assert (unknown.exit_code, unknown.stderr) == (1, "no callback or message cb_missing; nothing replayed\n")
    assert e2e.store.callbacks.get_callback(cid).status == "exhausted"  # nothing replayed, not even the known one
    replayed = runner.invoke(main, ["replay", mid])
    assert (replayed.exit_code, replayed.output) == (0, f"replaying 1 callback(s): {cid}\n")
    work(("hookline-callbacks",))
    assert e2e.store.callbacks.get_callback(cid).status == "delivered"
    assert [r["answered"] for r in origin.received] == [500, 500, 500, 200]
    assert runner.invoke(main, ["replay"]).output == "nothing to replay: no callback has given up\n"
    assert runner.invoke(main, ["replay", "--json"]).output == "[]\n"
    assert runner.invoke(main, ["replay", mid]).output == "nothing to replay: none of these callbacks has given up\n"
    assert runner.invoke(main, ["trace", event_id]).output.splitlines()[-1] == (
        f"    callback {cid} (sent): delivered; attempts: 500, 500, 500, 200")

    # optout: add, list and remove change the suppression list
    assert runner.invoke(main, ["optout", "list"]).output == "nothing suppressed: the list is empty\n"
    assert runner.invoke(main, ["optout", "list", "--json"]).output == "[]\n"
    added = runner.invoke(main, ["optout", "add", "+61 411 111 111", "--note", "asked"])
    assert (added.exit_code, added.output) == (0, "suppressed +6141•••••11\n")
    assert runner.invoke(main, ["optout", "add", "+61422222222"]).exit_code == 0
    assert set(e2e.store.optouts.optouts()) == {"+61411111111", "+61422222222"}
    header, first, second = runner.invoke(main, ["optout", "list"]).output.splitlines()
    assert (first.split()[0], first.split()[-2:], second.split()[0]) == (
        "+6141•••••11", ["operator", "asked"], "+6142•••••22")
    # The columns line up under their headings, on every row.
    assert header.index("SINCE") == first.index(" 20") + 1 == second.index(" 20") + 1
    assert header.index("VIA") == first.index("operator") == second.index("operator")
    entries = json.loads(runner.invoke(main, ["optout", "list", "--json"]).output)
    assert [(e["number"], e["via"], e["detail"]) for e in entries] == [
        ("+6141•••••11", "operator", "asked"), ("+6142•••••22", "operator", "")]
    assert entries[0]["since"].endswith("+00:00")
    removed = runner.invoke(main, ["optout", "remove", "+61411111111"])
    assert (removed.exit_code, removed.output) == (0, "lifted +6141•••••11\n")
    assert list(e2e.store.optouts.optouts()) == ["+61422222222"]
    assert runner.invoke(main, ["optout", "list"]).output.splitlines()[1].startswith("+6142•••••22  ")
    again = runner.invoke(main, ["optout", "remove", "+61411111111"])
    assert (again.exit_code, again.stderr) == (1, "+6141•••••11 was not suppressed\n")


def test_rules_test_shows_the_policy_decision_at_a_pretend_time(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["rules", "test", str(ROOT / "examples/shop-order.json"), "--source", "shop",
                                       "--type", "orders/create", "--now", "2026-11-26T12:30:00Z",
                                       "--dir", str(ROOT / "rules")])
    assert result.exit_code == 0, result.output
    assert "policy default: defer until" in result.output  # 23:30 in Sydney: quiet hours
    assert "because: quiet hours 21:00–08:00 at the recipient" in result.output
    assert "facts: local time Australia/Adelaide Thu 23:00" in result.output


def test_rules_commands_read_settings_without_needing_redis(secrets_env, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("HOOKLINE_RULES_DIR", str(ROOT / "rules"))
    monkeypatch.setenv("HOOKLINE_TIMEZONE", "Australia/Sydney")
    checked = CliRunner().invoke(main, ["rules", "check"])
    assert checked.exit_code == 0, checked.output
    tried = CliRunner().invoke(main, ["rules", "test", str(ROOT / "examples/shop-order.json"), "--source", "shop",
                                      "--type", "orders/create", "--now", "2026-11-26T23:30:00"])
    assert tried.exit_code == 0, tried.output
    assert "(as of 2026-11-26T12:30:00+00:00)" in tried.output  # the naive --now read in HOOKLINE_TIMEZONE


def test_rules_commands_report_a_bad_setting_like_every_other_command(secrets_env, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("HOOKLINE_TIMEZONE", "Mars/Base")
    for args in (["rules", "check", str(ROOT / "rules")],
                 ["rules", "test", str(ROOT / "examples/shop-order.json"), "--source", "shop", "--type", "x"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert "HOOKLINE_TIMEZONE: unknown time zone 'Mars/Base'" in result.output


def test_rules_test_builds_the_event_the_edge_would_store() -> None:
    result = CliRunner().invoke(main, ["rules", "test", str(ROOT / "examples/shop-order.json"), "--source", "shop",
                                       "--header", "X-Shopify-Topic: orders/create", "--header",
                                       "x-shopify-webhook-id: wh-1", "--header", "X-Shopify-Hmac-Sha256: sig",
                                       "--header", "Cookie: c", "--json", "--dir", str(ROOT / "rules")])
    assert result.exit_code == 0, result.output
    event = json.loads(result.output)["event"]
    assert (event["id"], event["external_id"]) == (event_id_for("shop", "wh-1"), "wh-1")
    assert event["headers"] == {"x-shopify-topic": "orders/create", "x-shopify-webhook-id": "wh-1"}  # as stored


def test_rules_test_refuses_a_body_the_edge_refuses(tmp_path: Path) -> None:
    (tmp_path / "order.json").write_text('{"name": "#1001"}')
    result = CliRunner().invoke(main, ["rules", "test", str(tmp_path / "order.json"), "--source", "shop",
                                       "--type", "orders/create", "--dir", str(ROOT / "rules")])
    assert result.exit_code == 1
    assert "error: payload does not match the shop schema: (root): 'id' is a required property" in result.output


def test_rules_test_refuses_a_lone_surrogate_without_a_traceback(tmp_path: Path) -> None:
    order = json.loads((ROOT / "examples/shop-order.json").read_text())
    order["customer"]["first_name"] = "\ud800X"  # json.dumps writes it as the escape a client would send
    (tmp_path / "order.json").write_text(json.dumps(order))
    result = CliRunner().invoke(main, ["rules", "test", str(tmp_path / "order.json"), "--source", "shop",
                                       "--type", "orders/create", "--dir", str(ROOT / "rules")])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "not valid JSON: customer/first_name: lone surrogate \\ud800 in a string" in result.output


def test_rules_test_shows_a_message_whose_template_renders_a_lone_surrogate_as_failed(tmp_path: Path,
                                                                                    secrets_env) -> None:  # noqa: ANN001
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shop = tmp_path / "rules/shop.yaml"
    shop.write_text(shop.read_text().replace("Hi {{ payload.customer.first_name }},",
                                             "Hi {{ payload.customer.first_name }}{{ '\\ud800' }},"))
    args = ["rules", "test", str(ROOT / "examples/shop-order.json"), "--source", "shop", "--type", "orders/create",
            "--dir", str(tmp_path / "rules")]
    reason = "body: lone surrogate \\ud800 at character 7 (not a character, so neither GSM-7 nor UCS-2 can carry it)"
    text = CliRunner().invoke(main, args)
    assert text.exit_code == 0, text.output  # printing the body used to raise UnicodeEncodeError
    assert "body: Hi Bob\\ud800, thanks" in text.output  # shown as its escape
    assert f"state: failed; sends: now\n        why: {reason}\n" in text.output
    as_json = CliRunner().invoke(main, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    [msg] = {r["rule"]: r for r in json.loads(as_json.output)["rules"]}["order-confirmation"]["messages"]
    assert (msg["state"], msg["reasons"]) == ("failed", [reason])
