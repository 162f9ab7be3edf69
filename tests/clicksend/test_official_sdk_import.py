"""ClickSend's official SDK (`clicksend-client` 6.x) importing contacts into a list on the simulator over real
HTTP (`ListsApi.import_contacts`): the file fetched from its URL, its rows added as contacts, the reply decoded
into the SDK's strict `ImportContacts` model; a bad field, a malformed file URL or a file beyond this machine
is ClickSend's 400, and the simulator follows no redirect and no proxy to a file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import clicksend
import pytest
import requests
from clicksend.exceptions import BadRequestException, NotFoundException
from flask import Flask, redirect
from flask import request as incoming

from tests.clicksend.test_official_sdk import API_KEY, USERNAME, locked  # noqa: F401 - the fixture
from tests.conftest import Simulator, serve

CSV = "phone_number,first_name,custom_1\n+61411111111,Ada,gold\n+61422222222,Grace,\n,Nobody,x\n"


@dataclass
class Files:
    """A loopback file server: the CSV at `/contacts.csv`, a redirect to it at `/moved.csv`; each path asked."""

    url: str
    asked: list[str]


@pytest.fixture
def files() -> Iterator[Files]:
    app, asked = Flask("files"), []

    @app.before_request
    def record() -> None:
        asked.append(incoming.path)

    app.add_url_rule("/contacts.csv", "csv", lambda: (CSV, 200, {"Content-Type": "text/csv"}))
    app.add_url_rule("/moved.csv", "moved", lambda: redirect("/contacts.csv", 302))
    url, stop = serve(app)
    yield Files(url, asked)
    stop()


@pytest.fixture
def csv_url(files: Files) -> str:
    """The CSV file served over loopback HTTP, as a file_url."""
    return f"{files.url}/contacts.csv"


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


def post_import(sim: Simulator, list_id: str, file_url: str) -> requests.Response:
    with requests.Session() as http:
        http.trust_env = False  # this call goes to the simulator, whatever proxy a test sets for it
        return http.post(f"{sim.url}/v3/lists/{list_id}/import", json={"file_url": file_url}, timeout=15,
                         auth=(USERNAME, API_KEY))


def refusal(answer: requests.Response) -> Any:
    """What a 400 in ClickSend's validation shape says of `file_url`."""
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert (body["http_code"], body["response_code"], body["response_msg"]) == (400, "BAD_REQUEST", "Invalid input.")
    assert list(body["data"]) == ["file_url"]
    return body["data"]["file_url"]


@pytest.mark.parametrize("file_url", ["http://[::1", "http://[127.0.0.1]/contacts.csv", "http://127.0.0.1:99999/"])
def test_a_malformed_file_url_is_a_400_naming_it(lists: clicksend.ListsApi, locked: Simulator,  # noqa: F811
                                                 file_url: str) -> None:
    assert refusal(post_import(locked, new_list(lists), file_url)).startswith("The file url is not a valid URL")


def test_a_url_only_one_parser_reads_as_loopback_is_refused_unfetched(lists: clicksend.ListsApi,
                                                                      locked: Simulator,  # noqa: F811
                                                                      files: Files) -> None:
    # The standard library reads the host as 127.0.0.1; requests, which would connect, reads files.example.
    port = files.url.rsplit(":", 1)[1]
    answer = post_import(locked, new_list(lists), f"http://files.example\\@127.0.0.1:{port}/contacts.csv")
    assert refusal(answer) == "The simulator fetches files from this machine only (a loopback address)."
    assert files.asked == []  # and nothing was asked of anyone: the test's loopback guard would have failed it


def test_a_redirect_is_not_followed(lists: clicksend.ListsApi, locked: Simulator, files: Files) -> None:  # noqa: F811
    list_id = new_list(lists)
    assert "redirects are not followed" in refusal(post_import(locked, list_id, f"{files.url}/moved.csv"))
    assert files.asked == ["/moved.csv"]  # where it led was never fetched
    assert lists.view_list_contacts(list_id).data.data == []


def test_the_file_is_fetched_directly_whatever_proxy_the_environment_names(
        lists: clicksend.ListsApi, locked: Simulator, files: Files, csv_url: str,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    proxy, proxied = Flask("proxy"), []

    @proxy.route("/<path:anything>")
    def relay(anything: str) -> tuple[str, int]:
        proxied.append(anything)
        return "refused", 502

    proxy_url, stop = serve(proxy)  # a proxy on loopback, standing for one anywhere
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    try:
        answer = post_import(locked, new_list(lists), csv_url)
    finally:
        stop()
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["data"]["ids"]) == 2
    assert (files.asked, proxied) == (["/contacts.csv"], [])
