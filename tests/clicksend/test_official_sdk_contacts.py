"""ClickSend's official SDK (`clicksend-client` 6.x) on the simulator's lists, contacts, SMS templates and
verified sender addresses over real HTTP: every call the SDK has for them decodes into its strict models."""

from __future__ import annotations

import json
from collections.abc import Iterator

import clicksend
import pytest
from clicksend.exceptions import BadRequestException, NotFoundException

from tests.clicksend.test_official_sdk import API_KEY, USERNAME, locked  # noqa: F401 - the fixture
from tests.conftest import Simulator
from workers.clicksend.simlists import OPT_OUT_LIST_ID


@pytest.fixture
def api(locked: Simulator) -> Iterator[clicksend.ApiClient]:  # noqa: F811 - the imported fixture
    with clicksend.ApiClient(clicksend.Configuration(host=locked.url, username=USERNAME, password=API_KEY)) as client:
        yield client


def new_contact(lists: clicksend.ListsApi, list_id: int, number: str, **fields: str) -> clicksend.Contact:
    request = clicksend.CreateNewContactRequest(phone_number=number, **fields)
    return lists.create_new_contact(str(list_id), create_new_contact_request=request).data


def test_lists_create_view_rename_search_delete(api: clicksend.ApiClient) -> None:
    lists = clicksend.ListsApi(api)
    created = lists.create_list(create_list_request=clicksend.CreateListRequest(list_name="Customers")).data
    assert (created.list_name, created.contacts_count, created.import_in_progress) == ("Customers", 0, 0)
    page = lists.view_lists().data
    assert [(r.list_id, r.list_name) for r in page.data] == [(OPT_OUT_LIST_ID, "Opt-Out List"),
                                                            (created.list_id, "Customers")]
    assert (page.total, page.current_page, page.last_page) == (2, 1, 1)
    rename = clicksend.CreateListRequest(list_name="Clients")
    renamed = lists.update_list(str(created.list_id), create_list_request=rename)
    assert renamed.data.list_name == "Clients"
    assert lists.view_specific_list(str(created.list_id)).data.list_name == "Clients"
    found = lists.view_contact_lists_without_preload_content("lient")  # the SDK models no reply for it
    assert [r["list_name"] for r in json.loads(found.read())["data"]["data"]] == ["Clients"]
    assert lists.delete_list(str(created.list_id)).data == []
    with pytest.raises(NotFoundException):
        lists.view_specific_list(str(created.list_id))
    with pytest.raises(BadRequestException):
        lists.create_list(create_list_request=clicksend.CreateListRequest())


def test_contacts_create_view_update_delete(api: clicksend.ApiClient) -> None:
    lists, contacts = clicksend.ListsApi(api), clicksend.ContactsApi(api)
    list_id = lists.create_list(create_list_request=clicksend.CreateListRequest(list_name="C")).data.list_id
    ada = new_contact(lists, list_id, "+61411111111", first_name="Ada", custom_1="gold")
    assert (ada.list_id, ada.first_name, ada.custom_1, ada.last_name, ada.list_name) == (
        list_id, "Ada", "gold", None, "C")
    assert isinstance(ada.date_added, int) and isinstance(ada.contact_id, int)
    one = contacts.get_specific_contact(str(list_id), str(ada.contact_id)).data
    assert one.phone_number == "+61411111111"
    changed = contacts.update_contact(str(list_id), str(ada.contact_id),
                                      create_new_contact_request=clicksend.CreateNewContactRequest(last_name="L"))
    assert (changed.data.first_name, changed.data.last_name) == ("Ada", "L")
    [listed] = lists.view_list_contacts(str(list_id)).data.data
    assert listed.last_name == "L"
    assert contacts.delete_contact(str(list_id), str(ada.contact_id)).data == []
    with pytest.raises(NotFoundException):
        contacts.get_specific_contact(str(list_id), str(ada.contact_id))
    with pytest.raises(BadRequestException):
        lists.create_new_contact(str(list_id), create_new_contact_request=clicksend.CreateNewContactRequest(
            first_name="nobody"))


def test_copy_transfer_dedupe_and_remove_opted_out(api: clicksend.ApiClient) -> None:
    lists = clicksend.ListsApi(api)
    a = lists.create_list(create_list_request=clicksend.CreateListRequest(list_name="A")).data.list_id
    b = lists.create_list(create_list_request=clicksend.CreateListRequest(list_name="B")).data.list_id
    ada = new_contact(lists, a, "+61411111111", first_name="Ada")
    copied = lists.copy_contact_to_list(str(a), str(ada.contact_id), str(b)).data
    assert copied.list_id == b and copied.contact_id != ada.contact_id
    moved = lists.transfer_contact_to_list(str(a), str(ada.contact_id), str(b)).data
    assert (moved.list_id, moved.contact_id, moved.list_name) == (b, ada.contact_id, "B")
    assert lists.view_list_contacts(str(a)).data.data == []
    new_contact(lists, b, "+61411111111", first_name="Bea")
    by_name = clicksend.RemoveDuplicateContactsRequest(fields=clicksend.RemoveDuplicateContactsRequestFields(
        first_name="1", last_name="1"))
    assert lists.remove_duplicate_contacts(str(b), remove_duplicate_contacts_request=by_name).data.deleted == 1
    assert lists.remove_duplicate_contacts(str(b)).data.deleted == 1  # by number alone, Bea goes too
    new_contact(lists, OPT_OUT_LIST_ID, "+61411111111")
    assert lists.remove_opted_out_contacts(str(b), str(OPT_OUT_LIST_ID)).data.deleted == 1
    assert lists.view_list_contacts(str(b)).data.data == []


def test_sms_templates(api: clicksend.ApiClient) -> None:
    sms = clicksend.SmsApi(api)
    created = sms.create_sms_template(create_sms_template_request=clicksend.CreateSmsTemplateRequest(
        template_name="welcome", body="Hi {first_name}")).data
    assert (created.template_name, created.body, isinstance(created.template_id, int)) == (
        "welcome", "Hi {first_name}", True)
    page = sms.view_sms_templates(page=1, limit=15).data
    assert [(t.template_id, t.body) for t in page.data] == [(created.template_id, "Hi {first_name}")]
    assert sms.view_a_specific_sms_template(str(created.template_id)).data.template_name == "welcome"
    assert sms.view_sms_templates(q="template_name:WELCOME").data.total == 1
    assert sms.view_sms_templates(q="template_name:other").data.data == []
    change = clicksend.CreateSmsTemplateRequest(template_name="welcome", body="Hello {first_name}")
    updated = sms.update_sms_template(str(created.template_id), create_sms_template_request=change).data
    assert updated.body == "Hello {first_name}"
    deleted = sms.delete_sms_template(str(created.template_id))
    assert (deleted.response_code, deleted.data) == ("SUCCESS", None)
    with pytest.raises(NotFoundException):
        sms.view_a_specific_sms_template(str(created.template_id))


def test_verified_sender_addresses(api: clicksend.ApiClient) -> None:
    email = clicksend.EmailApi(api)
    added = email.create_allowed_email_address(
        create_allowed_email_address_request=clicksend.CreateAllowedEmailAddressRequest(email_address="ops@example.com"))
    row = added.data
    assert (row.email_address, row.verified, row.date_added.isdigit()) == ("ops@example.com", 0, True)
    [listed] = email.view_allowed_email_addresses().data.data
    assert listed.email_address_id == row.email_address_id
    assert email.send_email_verification_token(str(row.email_address_id)).response_code == "SUCCESS"
    verified = email.verify_allowed_email_address(str(row.email_address_id), "token-from-the-mail").data
    assert verified.verified == 1
    assert email.view_allowed_email_address(str(row.email_address_id)).data.verified == 1
    assert email.delete_allowed_email_address(str(row.email_address_id)).data == {}
    with pytest.raises(NotFoundException):
        email.view_allowed_email_address(str(row.email_address_id))


@pytest.mark.parametrize(("kind", "id_field", "row"), [
    ("templates", "template_id", {"template_name": "welcome", "body": "Hi"}),
    ("emails", "email_address_id", {"email_address": "ops@example.com", "verified": 0}),
])
def test_the_template_and_address_tables_are_handed_out_as_copies(locked: Simulator, kind: str,  # noqa: F811
                                                                   id_field: str, row: dict[str, object]) -> None:
    # Request threads change the tables under the lock: what a reader holds must be its own, not the live table.
    directory = locked.state.directory
    made = directory.insert(kind, id_field, row)
    seen = directory.rows(kind)
    seen[made[id_field]]["changed"] = "by the reader"
    seen[0] = {}
    assert directory.rows(kind) == {made[id_field]: made}
    directory.change(kind, made[id_field], {"verified": 1})
    directory.insert(kind, id_field, row)
    assert seen == {made[id_field]: made | {"changed": "by the reader"}, 0: {}}  # as it stood when read
    with pytest.raises(ValueError, match="no table 'lists'"):
        directory.rows("lists")
