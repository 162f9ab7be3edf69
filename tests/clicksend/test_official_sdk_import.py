"""ClickSend's official SDK (`clicksend-client` 6.x) importing contacts into a list on the simulator over real
HTTP (`ListsApi.import_contacts`): the file fetched from its URL, its rows added as contacts, the reply decoded
into the SDK's strict `ImportContacts` model; a bad field or a file beyond this machine is ClickSend's 400."""

from __future__ import annotations

from collections.abc import Iterator

import clicksend
import pytest
from clicksend.exceptions import BadRequestException, NotFoundException
from flask import Flask

from tests.clicksend.test_official_sdk import API_KEY, USERNAME, locked  # noqa: F401 - the fixture
from tests.conftest import Simulator, serve

CSV = "phone_number,first_name,custom_1\n+61411111111,Ada,gold\n+61422222222,Grace,\n,Nobody,x\n"


@pytest.fixture
def csv_url() -> Iterator[str]:
    """A CSV file served over loopback HTTP, as a file_url."""
    app = Flask("files")
    app.add_url_rule("/contacts.csv", "csv", lambda: (CSV, 200, {"Content-Type": "text/csv"}))
    url, stop = serve(app)
    yield f"{url}/contacts.csv"
    stop()


@pytest.fixture
def lists(locked: Simulator) -> Iterator[clicksend.ListsApi]:  # noqa: F811 - the imported fixture
    with clicksend.ApiClient(clicksend.Configuration(host=locked.url, username=USERNAME, password=API_KEY)) as client:
        yield clicksend.ListsApi(client)


def new_list(lists: clicksend.ListsApi) -> str:
    return str(lists.create_list(create_list_request=clicksend.CreateListRequest(list_name="Imported")).data.list_id)


def test_import_contacts_adds_the_files_rows_to_the_list(lists: clicksend.ListsApi, csv_url: str) -> None:
    list_id = new_list(lists)
    reply = lists.import_contacts(list_id, import_contacts_request=clicksend.ImportContactsRequest(file_url=csv_url))
    assert (reply.http_code, reply.response_code, reply.data.id) == (200, "SUCCESS", list_id)
    assert len(reply.data.ids) == 2  # the row with no number, e-mail or fax is no contact
    contacts = lists.view_list_contacts(list_id).data.data
    assert [(c.phone_number, c.first_name, c.custom_1) for c in contacts] == [
        ("+61411111111", "Ada", "gold"), ("+61422222222", "Grace", None)]
    assert sorted(str(c.contact_id) for c in contacts) == sorted(reply.data.ids)


def test_field_order_names_the_columns_of_a_file_without_a_header(lists: clicksend.ListsApi, csv_url: str) -> None:
    list_id = new_list(lists)
    request = clicksend.ImportContactsRequest(file_url=csv_url, field_order="custom_1,first_name,last_name")
    assert lists.import_contacts(list_id, import_contacts_request=request).data.ids == []  # no column is a number
    request = clicksend.ImportContactsRequest(file_url=csv_url, field_order="email,first_name")
    assert len(lists.import_contacts(list_id, import_contacts_request=request).data.ids) == 3  # header row too


def test_a_bad_import_is_refused_as_clicksend_refuses_it(lists: clicksend.ListsApi, csv_url: str) -> None:
    list_id = new_list(lists)
    for request in (clicksend.ImportContactsRequest(),
                    clicksend.ImportContactsRequest(file_url="https://files.example/contacts.csv"),
                    clicksend.ImportContactsRequest(file_url=csv_url, field_order="phone_number,nickname")):
        with pytest.raises(BadRequestException):
            lists.import_contacts(list_id, import_contacts_request=request)
    assert lists.view_list_contacts(list_id).data.data == []
    with pytest.raises(NotFoundException):
        lists.import_contacts("999999", import_contacts_request=clicksend.ImportContactsRequest(file_url=csv_url))
