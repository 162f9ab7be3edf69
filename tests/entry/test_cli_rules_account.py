"""`hookline rules check` and `rules test` against the ClickSend account (the simulator over HTTP): with
credentials set the check does what the service does at load (voices, countries, stored templates), each
problem on its line; without, it says the account was not checked; credentials ClickSend refuses are a failure,
not a pass. The dry run renders stored templates as they are on the account."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.conftest import Simulator, serve
from tests.flow.test_stored_templates import CUSTOMER, RULE, store_template
from workers.clicksend.simstate import SimState
from workers.clicksend.simulator import create_simulator
from workers.entry.cli import main


@pytest.fixture
def checked_dir(rules_dir: Path, secrets_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped rules plus a rule sending the stored template `welcome`; no ClickSend settings inherited."""
    for name in ("CLICKSEND_USERNAME", "CLICKSEND_API_KEY", "CLICKSEND_BASE_URL", "MATON_API_KEY",
                 "MATON_CONNECTION"):
        monkeypatch.delenv(name, raising=False)
    (rules_dir / "stored.yaml").write_text(RULE.format(ref="clicksend:welcome"))
    return rules_dir


@pytest.fixture
def guarded() -> Iterator[Simulator]:
    """A simulator that accepts only user/key, as ClickSend accepts only the account's credentials."""
    state = SimState()
    url, stop = serve(create_simulator(state, username="user", api_key="key"))
    yield Simulator(url, state)
    stop()


def check(directory: Path, monkeypatch: pytest.MonkeyPatch, sim: Simulator | None = None,
          key: str = "key") -> Result:
    if sim is not None:
        monkeypatch.setenv("CLICKSEND_BASE_URL", sim.url)
        monkeypatch.setenv("CLICKSEND_USERNAME", "user")
        monkeypatch.setenv("CLICKSEND_API_KEY", key)
    return CliRunner().invoke(main, ["rules", "check", str(directory)])


def test_without_credentials_it_says_the_account_was_not_checked(checked_dir: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    result = check(checked_dir, monkeypatch)
    assert result.exit_code == 0, result.output
    assert result.output.endswith("rules); not checked against a ClickSend account: no credentials set "
                                  "(CLICKSEND_USERNAME + CLICKSEND_API_KEY, or MATON_API_KEY)\n")


def test_with_credentials_valid_rules_pass_the_account_check(checked_dir: Path, guarded: Simulator,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    guarded.state.directory.insert("templates", "template_id", {"template_name": "welcome", "body": "Hi {first_name}"})
    result = check(checked_dir, monkeypatch, guarded)
    assert result.exit_code == 0, result.output
    assert result.output.endswith("; checked against the ClickSend account (voices, countries, stored templates "
                                  "(1 on the account))\n")


def test_with_credentials_every_problem_the_account_finds_is_listed_on_its_line(
        checked_dir: Path, guarded: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    alerts = checked_dir / "alerts.yaml"
    alerts.write_text(alerts.read_text().replace("lang: en-au", "lang: xx-yy"))
    result = check(checked_dir, monkeypatch, guarded)
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("alerts.yaml:31: page-oncall-voice: send.lang: 'xx-yy' is not a voice language")
    assert lines[1:] == ["stored.yaml:8: welcome-stored: send.template: clicksend:welcome: no stored template "
                         "with that name on the ClickSend account"]


def test_credentials_clicksend_refuses_fail_the_check(checked_dir: Path, guarded: Simulator,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    result = check(checked_dir, monkeypatch, guarded, key="wrong")
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: not checked against the ClickSend account: ")
    assert "ok" not in result.output


def test_a_template_whose_placeholders_the_rule_gives_passes(checked_dir: Path, simulator: Simulator,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    store_template(simulator, body="Hi {first_name}, code {custom_1}")
    assert check(checked_dir, monkeypatch, simulator).exit_code == 0


def dry_run(directory: Path, tmp_path: Path) -> dict:
    event = tmp_path / "customer.json"
    event.write_text(json.dumps(CUSTOMER))
    result = CliRunner().invoke(main, ["rules", "test", str(event), "--source", "shop", "--type", "customers/create",
                                       "--dir", str(directory), "--json"])
    assert result.exit_code == 0, result.output
    [rule] = [r for r in json.loads(result.output)["rules"] if r["rule"] == "welcome-stored"]
    [message] = rule["messages"]
    return message


def test_the_dry_run_renders_the_stored_template_as_it_is_on_the_account(
        checked_dir: Path, simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store_template(simulator)
    monkeypatch.setenv("CLICKSEND_BASE_URL", simulator.url)
    assert dry_run(checked_dir, tmp_path)["body"] == "Hi Ada, welcome to SHOPCO. Your code: ADA-7"


def test_the_dry_run_without_clicksend_says_why_the_message_would_fail(checked_dir: Path, tmp_path: Path) -> None:
    message = dry_run(checked_dir, tmp_path)
    assert message["state"] == "failed"
    assert message["reasons"] == ["send.template: clicksend:welcome: not fetched: no ClickSend account to fetch "
                                  "stored templates from (set ClickSend credentials, or CLICKSEND_BASE_URL for "
                                  "the simulator)"]
