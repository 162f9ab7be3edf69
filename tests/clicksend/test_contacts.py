"""`clicksend.contacts` against the simulator over HTTP: lists by id or name, and writes that look before they write."""

from __future__ import annotations

import pytest

from tests.conftest import Simulator
from workers.clicksend import contacts
from workers.clicksend.client import ClickSendClient
from workers.errors import ListUnknown


@pytest.fixture
def client(simulator: Simulator) -> ClickSendClient:
    return ClickSendClient(simulator.url, username="u", api_key="k")


def test_a_list_is_found_by_id_or_by_name_in_any_case(client: ClickSendClient, simulator: Simulator) -> None:
    made = simulator.state.directory.create_list("Customers")
    assert contacts.find_list(client, "customers")["list_id"] == made["list_id"]
    assert contacts.find_list(client, str(made["list_id"]))["list_name"] == "Customers"


@pytest.mark.parametrize(("ref", "message"), [
    ("Nobody", "no ClickSend list is named 'Nobody'"),
    ("Twice", "2 ClickSend lists are named 'Twice': name it by id"),
    ("9999", "no ClickSend list has id 9999"),
])
def test_no_list_or_two_of_one_name_is_list_unknown(client: ClickSendClient, simulator: Simulator, ref: str,
                                                    message: str) -> None:
    simulator.state.directory.create_list("Twice")
    simulator.state.directory.create_list("twice")
    with pytest.raises(ListUnknown) as info:
        contacts.find_list(client, ref)
    assert info.value.message == message


def test_a_number_written_locally_on_the_list_is_found_and_updated_not_added(client: ClickSendClient,
                                                                             simulator: Simulator) -> None:
    list_id = simulator.state.directory.create_list("Customers")["list_id"]
    simulator.state.directory.add_contact(list_id, {"phone_number": "0411 111 111", "first_name": "Ada"})
    result = contacts.upsert(client, list_id, "+61411111111", {"first_name": "Ada", "last_name": "L"}, "AU")
    assert (result.action, result.changed) == ("updated", ("last_name",))
    assert len(simulator.state.directory.list_contacts(list_id)) == 1
    assert contacts.upsert(client, list_id, "+61411111111", {"last_name": "L"}, "AU").action == "unchanged"


def test_remove_takes_every_copy_of_the_number_off(client: ClickSendClient, simulator: Simulator) -> None:
    list_id = simulator.state.directory.create_list("Customers")["list_id"]
    for _ in range(2):
        simulator.state.directory.add_contact(list_id, {"phone_number": "+61411111111"})
    assert contacts.remove(client, list_id, "+61411111111", "AU").action == "removed"
    assert simulator.state.directory.list_contacts(list_id) == []
    assert contacts.remove(client, list_id, "+61411111111", "AU").action == "absent"


def test_a_list_id_send_reaches_every_number_on_it_the_opted_out_included(client: ClickSendClient,
                                                                         simulator: Simulator) -> None:
    # The fact sheet (§7.3): do not assume ClickSend blocks opted-out numbers in API sends; the simulator doesn't.
    list_id = simulator.state.directory.create_list("Customers")["list_id"]
    for number in ("+61411111111", "+61422222222"):
        simulator.state.directory.add_contact(list_id, {"phone_number": number})
    simulator.state.directory.add_contact(428, {"phone_number": "+61422222222"})
    reply = client.send("sms", {"messages": [{"list_id": list_id, "body": "Hi", "custom_string": "m1"},
                                             {"list_id": 9999, "body": "Hi", "custom_string": "m2"}]})
    assert [(r.to, r.status, r.raw["list_id"]) for r in reply.messages] == [
        ("+61411111111", "SUCCESS", list_id), ("+61422222222", "SUCCESS", list_id),
        (None, "NOT_ENOUGH_PERMISSION_TO_LIST_ID", 9999)]
