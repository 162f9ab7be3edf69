"""`hookline clicksend …` against the simulator over real HTTP, directly and through Maton: every change is
shown and asked for (answered yes or no, or `--yes`), then done; wrong credentials get 401 in both forms."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
import requests
from click.testing import CliRunner, Result

from tests.conftest import Simulator, serve
from workers.clicksend.simstate import SimState
from workers.clicksend.simulator import create_simulator
from workers.entry.cli import main

USERNAME, API_KEY, MATON_KEY, CONNECTION = "ops", "ops-key", "maton-key", "conn-1"
UNSET = ("CLICKSEND_USERNAME", "CLICKSEND_API_KEY", "MATON_API_KEY", "MATON_CONNECTION", "CLICKSEND_BASE_URL",
         "HOOKLINE_MATON_CTRL_URL", "REDIS_URL")


@pytest.fixture
def sim() -> Iterator[Simulator]:
    state = SimState(seed=7)
    url, stop = serve(create_simulator(state, username=USERNAME, api_key=API_KEY, bearer=MATON_KEY,
                                       connection=CONNECTION))
    yield Simulator(url, state)
    stop()


def run(sim: Simulator, *args: str, answer: str | None = None, maton: bool = False, key: str | None = None) -> Result:
    """`hookline clicksend ARGS` with the simulator's credentials (direct, or Maton's with `maton`)."""
    env: dict[str, str | None] = dict.fromkeys(UNSET)
    env["CLICKSEND_BASE_URL"] = sim.url
    if maton:
        env.update(MATON_API_KEY=key or MATON_KEY, HOOKLINE_MATON_CTRL_URL=sim.url)
    else:
        env.update(CLICKSEND_USERNAME=USERNAME, CLICKSEND_API_KEY=key or API_KEY)
    return CliRunner().invoke(main, ["clicksend", *args], input=answer, env=env)


def names(sim: Simulator) -> list[str]:
    return [row["list_name"] for row in sim.state.directory.all_lists()]


def test_account_shows_balance_currency_and_country(sim: Simulator) -> None:
    result = run(sim, "account")
    assert result.exit_code == 0, result.output
    assert "balance   1000.000000 AUD" in result.output and "country   AU" in result.output


def test_a_create_answered_no_changes_nothing(sim: Simulator) -> None:
    result = run(sim, "lists", "create", "Customers", answer="n\n")
    assert result.exit_code == 1
    assert 'This will create the list \'Customers\':\n  POST /v3/lists {"list_name": "Customers"}' in result.output
    assert "Go ahead? [y/N]" in result.output and "Nothing changed." in result.output
    assert names(sim) == ["Opt-Out List"]


def test_a_create_answered_yes_is_done_and_printed(sim: Simulator) -> None:
    result = run(sim, "lists", "create", "Customers", answer="y\n")
    assert result.exit_code == 0, result.output
    assert '"list_name": "Customers"' in result.output.split("Done: ")[1]
    assert names(sim) == ["Opt-Out List", "Customers"]


def test_yes_skips_the_question(sim: Simulator) -> None:
    result = run(sim, "lists", "create", "Customers", "--yes")
    assert result.exit_code == 0 and "Go ahead?" not in result.output
    assert names(sim) == ["Opt-Out List", "Customers"]


def test_lists_by_name_rename_and_delete(sim: Simulator) -> None:
    run(sim, "lists", "create", "Customers", "--yes")
    run(sim, "contacts", "add", "Customers", "+61411111111", "--first-name", "Ada", "--yes")
    renamed = run(sim, "lists", "update", "customers", "Clients", answer="y\n")
    assert "list_name: 'Customers' → 'Clients'" in renamed.output and names(sim)[1] == "Clients"
    assert ["429", "Clients", "1"] in table(run(sim, "lists", "list").output)
    kept = run(sim, "lists", "delete", "Clients", answer="n\n")
    assert "delete list #429 'Clients' and its 1 contacts" in kept.output and names(sim)[1] == "Clients"
    assert run(sim, "lists", "delete", "429", "--yes").exit_code == 0 and names(sim) == ["Opt-Out List"]
    missing = run(sim, "lists", "show", "Nobody")
    assert missing.exit_code == 2 and "no ClickSend list is named 'Nobody'" in missing.output


def test_contacts_add_update_copy_transfer_delete(sim: Simulator) -> None:
    run(sim, "lists", "create", "Customers", "--yes")
    run(sim, "lists", "create", "VIP", "--yes")
    added = run(sim, "contacts", "add", "Customers", "+61411111111", "--first-name", "Ada", "--custom-1", "gold",
                answer="y\n")
    assert 'POST /v3/lists/429/contacts {"phone_number": "+61411111111", "first_name": "Ada", "custom_1": "gold"}' \
        in added.output
    [contact] = sim.state.directory.list_contacts(429)
    cid = str(contact["contact_id"])
    update = run(sim, "contacts", "update", "Customers", cid, "--last-name", "Lovelace", "--first-name", "Ada",
                 answer="y\n")
    assert "last_name: None → 'Lovelace'" in update.output and "first_name: " not in update.output  # unchanged
    assert run(sim, "contacts", "copy", "Customers", cid, "VIP", "--yes").exit_code == 0
    assert [c["last_name"] for c in sim.state.directory.list_contacts(430)] == ["Lovelace"]
    moved = run(sim, "contacts", "transfer", "Customers", cid, "VIP", answer="y\n")
    assert "it leaves list #429" in moved.output
    assert sim.state.directory.list_contacts(429) == [] and len(sim.state.directory.list_contacts(430)) == 2
    assert run(sim, "contacts", "delete", "VIP", cid, answer="n\n").exit_code == 1
    assert run(sim, "contacts", "delete", "VIP", cid, "--yes").exit_code == 0
    assert table(run(sim, "contacts", "list", "VIP").output)[1][1:] == ["+61411111111", "Ada Lovelace"]


def test_dedupe_shows_which_contacts_go(sim: Simulator) -> None:
    run(sim, "lists", "create", "Customers", "--yes")
    for name in ("Ada", "Ada", "Ben"):
        run(sim, "contacts", "add", "Customers", "+61411111111", "--first-name", name, "--yes")
    by_name = run(sim, "lists", "dedupe", "Customers", "--by-name", answer="n\n")
    assert "remove 1 duplicate contact(s)" in by_name.output
    result = run(sim, "lists", "dedupe", "Customers", answer="y\n")
    assert "remove 2 duplicate contact(s)" in result.output and '"deleted": 2' in result.output
    assert len(sim.state.directory.list_contacts(429)) == 1


def test_templates_create_update_delete(sim: Simulator) -> None:
    created = run(sim, "templates", "create", "welcome", "Hi {first_name}", "--yes")
    assert created.exit_code == 0 and '"body": "Hi {first_name}"' in created.output
    [tid] = sim.state.directory.rows("templates")
    update = run(sim, "templates", "update", str(tid), "--body", "Hello {first_name}", answer="y\n")
    assert "body: 'Hi {first_name}' → 'Hello {first_name}'" in update.output
    assert [str(tid), "welcome", "'Hello {first_name}'"] in table(run(sim, "templates", "list").output)
    assert run(sim, "templates", "delete", str(tid), answer="n\n").exit_code == 1
    assert run(sim, "templates", "delete", str(tid), answer="y\n").exit_code == 0
    assert sim.state.directory.rows("templates") == {}


def test_emails_add_list_delete(sim: Simulator) -> None:
    assert run(sim, "emails", "add", "ops@example.com", "--yes").exit_code == 0
    [eid] = sim.state.directory.rows("emails")
    assert [str(eid), "ops@example.com", "not verified"] in table(run(sim, "emails", "list").output)
    assert "delete the sender address" in run(sim, "emails", "delete", str(eid), answer="y\n").output
    assert sim.state.directory.rows("emails") == {}


def test_countries(sim: Simulator) -> None:
    assert ["AU", "Australia"] in table(run(sim, "countries").output)


def test_through_maton_with_a_connection(sim: Simulator) -> None:
    result = run(sim, "--connection", CONNECTION, "lists", "create", "Customers", "--yes", maton=True)
    assert result.exit_code == 0, result.output
    assert names(sim) == ["Opt-Out List", "Customers"]


def test_maton_connections_list_create_delete(sim: Simulator) -> None:
    assert table(run(sim, "connections", "list", maton=True).output)[1][:2] == [CONNECTION, "ACTIVE"]
    created = run(sim, "connections", "create", answer="y\n", maton=True)
    assert created.exit_code == 0, created.output
    [new] = [c for c in sim.state.connections if c != CONNECTION]
    assert sim.state.connections[new]["status"] == "PENDING"
    assert f"Finish it at: {sim.url}/_sim/connect?session_token={new}\n" in created.output
    kept = run(sim, "connections", "delete", new, answer="n\n", maton=True)
    assert "(clicksend, PENDING)" in kept.output and new in sim.state.connections
    assert run(sim, "connections", "delete", new, "--yes", maton=True).exit_code == 0
    assert list(sim.state.connections) == [CONNECTION]


def test_the_printed_link_finishes_the_connection(sim: Simulator) -> None:
    created = run(sim, "connections", "create", "--yes", maton=True)
    [link] = re.findall(r"Finish it at: (\S+)", created.output)
    [new] = [c for c in sim.state.connections if c != CONNECTION]
    page = requests.get(link, timeout=5)  # a person opening it: a browser, no Maton key
    assert (page.status_code, page.headers["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert f"The clicksend connection {new} is active" in page.text
    assert [new, "ACTIVE"] in [row[:2] for row in table(run(sim, "connections", "list", maton=True).output)]
    run(sim, "connections", "delete", new, "--yes", maton=True)
    gone = requests.get(link, timeout=5)
    assert gone.status_code == 404 and "No such connection" in gone.text


def test_wrong_direct_credentials_get_401(sim: Simulator) -> None:
    result = run(sim, "lists", "create", "Customers", "--yes", key="wrong")
    assert result.exit_code == 3 and "credentials refused (401): Invalid credentials." in result.output
    assert names(sim) == ["Opt-Out List"]


@pytest.mark.parametrize(("connection", "key"), [("conn-2", MATON_KEY), (CONNECTION, "wrong")])
def test_wrong_maton_credentials_get_401(sim: Simulator, connection: str, key: str) -> None:
    result = run(sim, "--connection", connection, "account", maton=True, key=key)
    assert result.exit_code == 3 and "credentials refused (401)" in result.output
    if key == "wrong":  # Maton's own API refuses the key too
        listed = run(sim, "connections", "list", maton=True, key=key)
        assert listed.exit_code == 3 and "credentials refused (401): Maton: Invalid API key." in listed.output


def test_every_listing_prints_clicksends_rows_as_json_or_says_there_are_none(sim: Simulator) -> None:
    assert run(sim, "templates", "list").output == "no templates\n"
    assert run(sim, "emails", "list").output == "no email addresses\n"
    assert run(sim, "templates", "list", "--json").output == "[]\n"
    run(sim, "lists", "create", "Customers", "--yes")
    assert run(sim, "contacts", "list", "Customers").output == "no contacts on Customers\n"
    run(sim, "contacts", "add", "Customers", "+61411111111", "--first-name", "Ada", "--yes")
    [contact] = json.loads(run(sim, "contacts", "list", "Customers", "--json").output)
    assert (contact["phone_number"], contact["first_name"]) == ("+61411111111", "Ada")
    lists = json.loads(run(sim, "lists", "list", "--json").output)
    assert [row["list_name"] for row in lists] == ["Opt-Out List", "Customers"]
    assert {"code": "AU", "value": "Australia"}.items() <= next(
        row for row in json.loads(run(sim, "countries", "--json").output) if row["code"] == "AU").items()
    [connection] = json.loads(run(sim, "connections", "list", "--json", maton=True).output)
    assert connection["connection_id"] == CONNECTION
    header, *rows = run(sim, "lists", "list").output.splitlines()
    assert header.split() == ["ID", "NAME", "CONTACTS"] and len({len(line) for line in [header, *rows]}) <= 2


def table(output: str) -> list[list[str]]:
    """A listing's rows (the header first), cells split where the columns are padded apart."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.splitlines()]
