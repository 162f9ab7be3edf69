"""The commands run beside `hookline up` (in-process through `main`): where their Redis comes from and in which
order, `rules check` without the production secrets, `init`, the approval queue's table and JSON, `--version`."""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from tests.conftest import ROOT, SECRETS, Simulator, use_policies
from tests.flow.test_approvals import order_event
from workers.entry.cli import main
from workers.entry.runtime import Runtime
from workers.store.keys import OPTOUTS
from workers.tools.localredis import free_port
from workers.wiring.settings import write_env_file


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder with nothing of Hookline's exported."""
    monkeypatch.chdir(tmp_path)
    for name in ("REDIS_URL", "HOOKLINE_RULES_DIR", *SECRETS):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _dead_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def test_redis_comes_from_the_flag_then_the_environment_then_what_up_recorded(
        folder: Path, redis_client: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    add = ["optout", "add", "+61411111111"]
    write_env_file(folder / ".hookline/up.env", {"REDIS_URL": redis_url})
    assert runner.invoke(main, add).exit_code == 0  # what `hookline up` recorded, nothing exported
    assert redis_client.hkeys(OPTOUTS) == ["+61411111111"]

    stale = _dead_url()
    write_env_file(folder / ".hookline/up.env", {"REDIS_URL": stale})  # up was killed: its Redis is gone
    gone = runner.invoke(main, add)
    assert (gone.exit_code, gone.stderr) == (1, f"error: Redis at {stale} does not answer (recorded by `hookline "
                                                "up` in .hookline/up.env: is it still running?)\n")

    monkeypatch.setenv("REDIS_URL", redis_url)  # the environment wins over the file
    assert runner.invoke(main, ["optout", "add", "+61422222222"]).exit_code == 0
    assert sorted(redis_client.hkeys(OPTOUTS)) == ["+61411111111", "+61422222222"]

    elsewhere = _dead_url()
    monkeypatch.setenv("REDIS_URL", elsewhere)
    wrong = runner.invoke(main, ["optout", "list"])
    assert (wrong.exit_code, wrong.stderr) == (1, f"error: Redis at {elsewhere} does not answer\n")
    flagged = runner.invoke(main, ["optout", "list", "--json", "--redis-url", redis_url])  # the flag wins over both
    assert flagged.exit_code == 0, flagged.output
    assert [e["number"] for e in json.loads(flagged.output)] == ["+6141•••••11", "+6142•••••22"]


def test_a_password_in_the_redis_url_is_not_printed(folder: Path) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    result = CliRunner().invoke(main, ["approvals", "list", "--redis-url", url])
    assert result.exit_code == 1
    assert "hunter2" not in result.stderr and "does not answer" in result.stderr


def test_another_home_folder_is_read_when_named(folder: Path, redis_url: str) -> None:
    write_env_file(folder / "elsewhere/up.env", {"REDIS_URL": redis_url})
    assert CliRunner().invoke(main, ["approvals", "list"]).exit_code == 2  # not in ./.hookline: not found
    named = CliRunner().invoke(main, ["--home", "elsewhere", "approvals", "list"])
    assert (named.exit_code, named.stderr) == (0, ""), named.output


def test_rules_check_without_the_secrets_warns_and_passes(folder: Path) -> None:
    result = CliRunner().invoke(main, ["rules", "check", str(ROOT / "rules")])
    assert result.exit_code == 0, result.output
    warnings = result.stderr.splitlines()
    assert "warning: sources.yaml:8: shop: secret: environment variable SHOP_WEBHOOK_SECRET is not set" in warnings
    assert len(warnings) == 6 and all(w.startswith("warning: sources.yaml:") for w in warnings)
    assert re.fullmatch(rf"{ROOT / 'rules'}: ok \(6 sources, \d+ rules\); 6 secret\(s\) not set \(warnings above; "
                        r"--require-secrets makes them errors\); "
                        r"not checked against a ClickSend account: no credentials set \(.*\)\n", result.stdout)

    strict = CliRunner().invoke(main, ["rules", "check", "--require-secrets", str(ROOT / "rules")])
    assert (strict.exit_code, strict.stdout) == (2, "")
    assert strict.stderr.splitlines() == [w.removeprefix("warning: ") for w in warnings]


def test_rules_check_without_the_secrets_still_finds_every_other_problem(folder: Path) -> None:
    rules = folder / "rules"
    rules.mkdir()
    (rules / "sources.yaml").write_text(
        "sources:\n"
        "  shop:\n"
        "    provider: shopify\n"
        "    secret: '${SHOP_WEBHOOK_SECRET}'\n"
        "    callback:\n"
        "      url: 'http://127.0.0.1/{{ event.payload.id '\n"  # a template that does not compile
        "      on: [sent]\n")
    (rules / "broken.yaml").write_text("rules: [\n")
    result = CliRunner().invoke(main, ["rules", "check", "rules"])
    assert result.exit_code == 2
    problems = result.stderr.splitlines()
    assert "warning: sources.yaml:4: shop: secret: environment variable SHOP_WEBHOOK_SECRET is not set" in problems
    assert any(p.startswith("broken.yaml:2: not valid YAML") for p in problems)
    assert any(p.startswith("sources.yaml: shop: callback: template syntax error") for p in problems)
    assert len(problems) == 3  # and nothing about the stand-in value the unset secret was checked with


def test_init_writes_the_examples_and_never_overwrites_unless_forced(folder: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["init", "mine"]).exit_code == 0
    assert (folder / "mine/sources.yaml").read_bytes() == (ROOT / "rules/sources.yaml").read_bytes()
    (folder / "mine/shop.yaml").write_text("# edited\n")
    again = runner.invoke(main, ["init", "mine"])
    assert again.exit_code == 1
    assert again.stderr.startswith("error: mine/alerts.yaml, ")
    assert again.stderr.endswith(" already there; nothing written (--force overwrites)\n")
    assert (folder / "mine/shop.yaml").read_text() == "# edited\n"
    assert runner.invoke(main, ["init", "mine", "--force"]).exit_code == 0
    assert (folder / "mine/shop.yaml").read_bytes() == (ROOT / "rules/shop.yaml").read_bytes()
    checked = runner.invoke(main, ["rules", "check", "mine"])  # what init writes is valid as it stands
    assert checked.exit_code == 0, checked.output


def test_version_is_the_installed_distribution_s() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert (result.exit_code, result.output) == (0, f"hookline {metadata.version('hookline')}\n")


def _column_starts(line: str) -> list[int]:
    """Where each cell of a table line starts (cells are apart by two spaces or more; a body may hold one)."""
    return [m.start() for m in re.finditer(r"(?:^|(?<=  ))\S", line)]


@pytest.fixture
def manual(runtime: Runtime, simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """The runtime with every message held for a person, and the environment the CLI reads pointing at it."""
    runtime.settings = runtime.settings.with_(clicksend_base_url=simulator.url)
    use_policies(runtime, "policies:\n  default: {approval: manual, approval_expires: 1h}\n  paging: {}\n")
    monkeypatch.setenv("REDIS_URL", runtime.settings.redis_url)
    monkeypatch.setenv("HOOKLINE_RULES_DIR", runtime.settings.rules_dir)
    return runtime


def test_approvals_list_as_a_table_and_as_json(manual: Runtime) -> None:
    first, second = order_event(manual, 1), order_event(manual, 2, "+61422222222")
    runner = CliRunner()
    header, *rows = runner.invoke(main, ["approvals", "list"]).output.splitlines()
    assert header.split() == ["MESSAGE", "RULE", "TO", "ESTIMATE", "BODY"]
    assert sorted(row.split()[0] for row in rows) == sorted([first, second])
    assert all(_column_starts(row) == _column_starts(header) for row in rows)  # each cell under its heading
    assert all("Hi Bob, thanks for your order" in row and "+61411111111" not in row for row in rows)

    listed = json.loads(runner.invoke(main, ["approvals", "list", "--json"]).output)
    mine = next(m for m in listed if m["id"] == first)
    assert (mine["rule"], mine["to"], mine["estimate"]) == ("order-confirmation", "+6141•••••11", "0.0792")
    assert mine["created_at"].endswith("+00:00")
    other = runner.invoke(main, ["approvals", "list", "--rule", "reminder-2h"])
    assert other.output == "nothing to approve: no message is held for that rule or event\n"
    assert runner.invoke(main, ["approvals", "list", "--rule", "reminder-2h", "--json"]).output == "[]\n"


def test_deciding_refuses_unknown_ids_and_decides_nothing(manual: Runtime) -> None:
    mid = order_event(manual, 1)
    runner = CliRunner()
    unknown = runner.invoke(main, ["approvals", "approve", "msg_missing", mid])
    assert (unknown.exit_code, unknown.stderr) == (1, "no message msg_missing; nothing decided\n")
    assert manual.store.messages.message_state(mid) == "held"
    nothing = runner.invoke(main, ["approvals", "reject", "--rule", "reminder-2h"])
    assert (nothing.exit_code, nothing.stderr) == (
        1, "nothing to reject: no message is held for that rule or event\n")
    done = runner.invoke(main, ["approvals", "approve", mid, "--by", "ann"])
    assert (done.exit_code, done.output) == (0, f"{mid}: approved\n")
