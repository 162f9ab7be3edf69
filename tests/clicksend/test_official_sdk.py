"""ClickSend's official Python SDK (`clicksend-client` 6.x) against the simulator over real HTTP.

Every call the SDK has for the account, SMS (send, price, receipts, mark read, history, cancel, inbound), MMS
send, voice send/receipts/languages/cancel and countries must decode into the SDK's strict pydantic models;
wrong credentials get ClickSend's 401, in the direct and in the Maton form.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import clicksend
import pytest
from clicksend.exceptions import UnauthorizedException

from tests.conftest import Simulator, serve
from tests.waiting import wait_for
from workers.clicksend.client import ClickSendClient
from workers.clicksend.simstate import SimState
from workers.clicksend.simulator import create_simulator

USERNAME, API_KEY = "sdk-user", "sdk-key"
MATON_KEY, CONNECTION = "maton-key", "conn-1"
RECEIPT_DELAY = 0.2


@pytest.fixture
def locked() -> Iterator[Simulator]:
    """A simulator that accepts only USERNAME/API_KEY, or MATON_KEY with CONNECTION."""
    state = SimState(seed=7)
    state.faults.receipt_delay = RECEIPT_DELAY
    url, stop = serve(create_simulator(state, username=USERNAME, api_key=API_KEY, bearer=MATON_KEY,
                                       connection=CONNECTION))
    yield Simulator(url, state)
    stop()


def direct(sim: Simulator, username: str = USERNAME, api_key: str = API_KEY) -> clicksend.ApiClient:
    """The SDK as ClickSend documents it: HTTP basic with the API username and key."""
    return clicksend.ApiClient(clicksend.Configuration(host=sim.url, username=username, password=api_key))


def maton(sim: Simulator, key: str = MATON_KEY, connection: str | None = CONNECTION) -> clicksend.ApiClient:
    """The SDK through the Maton gateway's form: a bearer key and the connection header, no basic auth."""
    api = clicksend.ApiClient(clicksend.Configuration(host=sim.url))
    api.set_default_header("Authorization", f"Bearer {key}")
    if connection is not None:
        api.set_default_header("Maton-Connection", connection)
    return api


@pytest.fixture
def sdk(locked: Simulator) -> Iterator[clicksend.ApiClient]:
    """The SDK with the right direct credentials."""
    with direct(locked) as api:
        yield api


def send_one(sdk: clicksend.ApiClient, custom_string: str, to: str = "+61411111111",
             schedule: int | None = None) -> clicksend.SmsSendSms:
    """Send one SMS through the SDK; its reply entry."""
    message = clicksend.SendSmsRequestMessagesInner(to=to, body=f"Hello {custom_string}", source="sdk",
                                                    custom_string=custom_string, schedule=schedule)
    reply = clicksend.SmsApi(sdk).send_sms(send_sms_request=clicksend.SendSmsRequest(messages=[message]))
    [entry] = reply.data.messages
    return entry


# --- account -----------------------------------------------------------------------------------------


def test_account_details(sdk: clicksend.ApiClient) -> None:
    account = clicksend.ManagementApi(sdk).view_account_details()
    assert (account.http_code, account.response_code) == (200, "SUCCESS")
    assert (account.data.user_id, account.data.username, account.data.balance) == (123456, USERNAME, "1000.000000")
    assert account.data.currency.currency_name_short == "AUD"
    assert account.data.subaccount.api_username == USERNAME


def test_account_usage_counts_this_month(sdk: clicksend.ApiClient) -> None:
    send_one(sdk, "u1")
    send_one(sdk, "u2")
    now = time.gmtime()
    usage = clicksend.ManagementApi(sdk).view_account_usage(str(now.tm_year), str(now.tm_mon))
    [sms] = usage.data.sms
    assert (sms.username, sms.total_count, sms.total_price) == (USERNAME, "2", pytest.approx(0.1584))
    assert (usage.data.sms_total.count, usage.data.voice_total.count, usage.data.mms) == (2, 0, [])
    empty = clicksend.ManagementApi(sdk).view_account_usage(str(now.tm_year - 1), str(now.tm_mon))
    assert empty.data.sms == [] and empty.data.sms_total.count == 0


# --- sms ---------------------------------------------------------------------------------------------


def test_send_reports_every_message_and_refuses_an_invalid_number(sdk: clicksend.ApiClient, locked: Simulator) -> None:
    new = clicksend.SendSmsRequestMessagesInner
    messages = [new(to="+61411111111", body="Hi", custom_string="ok"),
                new(to="+6142222", body="Hi", custom_string="short"),  # 8 characters, but no such number
                new(to="0412345678", body="Hi", custom_string="local", country="AU"),  # local form with country
                new(to="0412345678", body="Hi", custom_string="no-country")]
    reply = clicksend.SmsApi(sdk).send_sms(send_sms_request=clicksend.SendSmsRequest(messages=messages))
    assert (reply.http_code, reply.response_code) == (200, "SUCCESS")  # a batch succeeds; messages fail alone
    ok, short, local, no_country = reply.data.messages
    assert (ok.status, ok.message_parts, ok.message_price, ok.country) == ("SUCCESS", 1, "0.0792", "AU")
    assert ok.message_id and isinstance(ok.var_date, int) and isinstance(ok.schedule, int)
    assert (short.status, short.message_price) == ("INVALID_RECIPIENT", "0.0000")
    assert (local.status, no_country.status) == ("SUCCESS", "INVALID_RECIPIENT")
    assert (reply.data.total_count, reply.data.queued_count, reply.data.total_price) == (4, 2, pytest.approx(0.1584))
    assert reply.data.currency.currency_name_short == "AUD"
    assert locked.state.ledger == {"ok": 1, "local": 1}


def test_price_sends_nothing(sdk: clicksend.ApiClient, locked: Simulator) -> None:
    request = clicksend.CalculateSmsPriceRequest(messages=[
        clicksend.CalculateSmsPriceRequestMessagesInner(to="+61411111111", body="’" * 80)])  # UCS-2: 2 parts
    price = clicksend.SmsApi(sdk).calculate_sms_price(calculate_sms_price_request=request)
    [entry] = price.data.messages
    assert (entry.message_parts, entry.message_price, entry.var_date, entry.schedule) == (2, "0.1584", "", "")
    assert price.data.total_price == pytest.approx(0.1584)
    assert locked.state.ledger == {}


def test_receipts_list_one_and_mark_read(sdk: clicksend.ApiClient) -> None:
    sms = clicksend.SmsApi(sdk)
    sent = send_one(sdk, "r1")
    assert sms.view_specific_sms_receipt(sent.message_id).data.status_code == 200  # not final yet
    assert sms.view_sms_receipts().data.data == []
    wait_for(lambda: sms.view_sms_receipts().data.data, "the receipt to become final")
    page = sms.view_sms_receipts(page=1, limit=15).data
    assert (page.total, page.current_page, page.last_page, page.per_page) == (1, 1, 1, 15)
    [receipt] = page.data
    assert (receipt.message_id, receipt.custom_string, receipt.status_code, receipt.error_code,
            receipt.message_type) == (sent.message_id, "r1", 201, 4, "sms")
    one = sms.view_specific_sms_receipt(sent.message_id).data
    assert (one.status_code, one.status_text) == (201, "Success: Message received on handset.")

    marked = sms.mark_sms_receipt_as_read(
        mark_sms_receipt_as_read_request=clicksend.MarkSmsReceiptAsReadRequest(date_before=int(time.time()) + 60))
    assert (marked.response_code, marked.data) == ("SUCCESS", None)
    assert sms.view_sms_receipts().data.data == []
    assert sms.view_specific_sms_receipt(sent.message_id).data.status_code == 201  # read ones stay readable


def test_history_filters_pages_and_types(sdk: clicksend.ApiClient, locked: Simulator) -> None:
    locked.state.faults.receipt_delay = 3600  # still "Sent" when looked up, however long the 17 sends take
    for i in range(17):
        send_one(sdk, f"h{i}", to=f"+614111111{i:02d}")
    sms = clicksend.SmsApi(sdk)
    first = sms.view_sms_history(page=1, limit=15, date_from=int(time.time()) - 60, date_to=int(time.time()) + 60,
                                 order_by="date:asc").data
    assert (first.total, first.last_page, len(first.data), first.next_page_url is not None) == (17, 2, 15, True)
    second = sms.view_sms_history(page=2, limit=15).data
    assert {h.custom_string for h in first.data + second.data} == {f"h{i}" for i in range(17)}
    [only] = sms.view_sms_history(q="to:+61411111105").data.data
    assert (only.custom_string, only.status, only.status_code, only.message_parts) == ("h5", "Sent", "200", 1)
    assert isinstance(only.var_date, int) and isinstance(only.schedule, str)


def test_cancel_one_and_all_scheduled(sdk: clicksend.ApiClient) -> None:
    sms = clicksend.SmsApi(sdk)
    later = int(time.time()) + 3600
    one = [send_one(sdk, f"c{i}", schedule=later) for i in range(3)][0]
    send_one(sdk, "now")
    cancelled = sms.cancel_sms(one.message_id)
    assert (cancelled.response_code, cancelled.data) == ("SUCCESS", None)
    assert sms.cancel_all_sms(cancel_all_sms_request=clicksend.CancelAllSmsRequest(custom_string="c1")).data.count == 1
    assert sms.cancel_all_sms().data.count == 1  # c2; c0 and c1 are cancelled already, `now` has left
    statuses = {h.custom_string: h.status for h in sms.view_sms_history().data.data}
    assert statuses == {"c0": "Cancelled", "c1": "Cancelled", "c2": "Cancelled", "now": "Sent"}
    with pytest.raises(clicksend.exceptions.NotFoundException):
        sms.cancel_sms("NO-SUCH-MESSAGE")


def test_inbound_list_one_and_mark_read(sdk: clicksend.ApiClient, locked: Simulator) -> None:
    sms = clicksend.SmsApi(sdk)
    sent = send_one(sdk, "i1")
    stop = locked.state.add_inbound("+61411111111", "STOP please", original_message_id=sent.message_id)
    locked.state.add_inbound("+61422222222", "Thanks")
    page = sms.view_inbound_sms(page=1, limit=15).data
    assert (page.total, [m.body for m in page.data]) == (2, ["STOP please", "Thanks"])
    first = page.data[0]
    assert (first.var_from, first.original_message_id, first.custom_string, first.original_body,
            first.keyword) == ("+61411111111", sent.message_id, "i1", "Hello i1", "stop")
    assert isinstance(first.timestamp, int)
    reply = sms.view_a_specific_inbound_sms_message(sent.message_id).data
    assert (reply.message_id, reply.body) == (stop["message_id"], "STOP please")

    one = sms.mark_specific_inbound_sms_message_as_read(stop["message_id"])
    assert (one.response_code, one.data) == ("SUCCESS", 1)
    assert [m.body for m in sms.view_inbound_sms().data.data] == ["Thanks"]
    rest = sms.mark_inbound_sms_as_read(
        mark_sms_receipt_as_read_request=clicksend.MarkSmsReceiptAsReadRequest(date_before=int(time.time()) + 60))
    assert (rest.response_code, rest.data) == ("SUCCESS", None)
    assert sms.view_inbound_sms().data.data == []
    assert sms.view_a_specific_inbound_sms_message(sent.message_id).data.body == "STOP please"  # read, still there
    with pytest.raises(clicksend.exceptions.NotFoundException):
        sms.view_a_specific_inbound_sms_message("NO-SUCH-MESSAGE")


# --- mms ---------------------------------------------------------------------------------------------


def test_mms_send(sdk: clicksend.ApiClient, locked: Simulator) -> None:
    request = clicksend.SendMmsRequest(media_file="https://cdn.example.com/ticket.jpg", messages=[
        clicksend.SendMmsRequestMessagesInner(to="+61411111111", body="Show this at the door", subject="Ticket",
                                              var_from="+61400000000", source="sdk")])
    reply = clicksend.MmsApi(sdk).send_mms(send_mms_request=request)
    assert (reply.http_code, reply.response_code) == (200, "SUCCESS")
    [entry] = reply.data.messages
    assert (entry.status, entry.subject, entry.message_parts, entry.message_price) == ("SUCCESS", "Ticket", 1, "0.3300")
    assert entry.media_file_url == "https://cdn.example.com/ticket.jpg"
    assert entry.schedule == str(int(entry.schedule)) and entry.message_id  # a string, as the model wants
    assert locked.state.ledger == {entry.message_id: 1}  # the SDK's MMS model has no custom_string


def test_mms_price_and_history(sdk: clicksend.ApiClient) -> None:
    mms = clicksend.MmsApi(sdk)
    price = mms.calculate_mms_price(calculate_mms_price_request=clicksend.CalculateMmsPriceRequest(
        media_file="https://cdn.example.com/t.jpg", messages=[clicksend.CalculateMmsPriceRequestMessagesInner(
            to="+61411111111", body="Hi", subject="S", var_from="+61400000000")]))
    assert (price.data.messages[0].message_price, price.data.messages[0].schedule) == ("0.3300", "")
    mms.send_mms(send_mms_request=clicksend.SendMmsRequest(media_file="https://cdn.example.com/t.jpg", messages=[
        clicksend.SendMmsRequestMessagesInner(to="+61411111111", body="Hi", subject="S", var_from="+61400000000")]))
    [row] = mms.view_mms_history(limit=15).data.data
    assert (row.subject, row.media_file_url, row.message_parts, row.status) == (
        "S", "https://cdn.example.com/t.jpg", "1", "Sent")
    assert row.var_date == str(row.date_added)


# --- voice -------------------------------------------------------------------------------------------


def test_voice_send_and_receipts(sdk: clicksend.ApiClient) -> None:
    voice = clicksend.VoiceMessagingApi(sdk)
    request = clicksend.SendVoiceMessageRequest(messages=[clicksend.SendVoiceMessageRequestMessagesInner(
        to="+61411111111", body="Your code is 4 8 2 1", voice="female", lang="en-au", machine_detection=0)])
    reply = voice.send_voice_message(send_voice_message_request=request)
    [entry] = reply.data.messages
    assert (entry.status, entry.voice, entry.lang, entry.to_type, entry.message_price) == (
        "SUCCESS", "female", "en-au", "mobile", "0.1100")
    assert entry.var_date == str(entry.date_added) and entry.var_from is None
    assert reply.data.total_count == 1 and reply.data.queued_count == 1

    assert voice.view_voice_receipts().data.data == []
    wait_for(lambda: voice.view_voice_receipts().data.data, "the receipt to become final")
    [receipt] = voice.view_voice_receipts().data.data
    assert (receipt.message_id, receipt.status_code, receipt.error_code, receipt.message_type) == (
        entry.message_id, "201", "4", "voice")  # the voice model has them as strings
    assert receipt.timestamp.isdigit() and receipt.timestamp_send == entry.var_date


def test_voice_price_and_history(sdk: clicksend.ApiClient) -> None:
    voice = clicksend.VoiceMessagingApi(sdk)
    message = {"to": "+61411111111", "body": "Alert", "voice": "male", "lang": "en-gb"}
    price = voice.calculate_voice_price(calculate_voice_price_request=clicksend.CalculateVoicePriceRequest(
        messages=[clicksend.CalculateVoicePriceRequestMessagesInner(**message)]))
    assert (price.data.messages[0].message_price, price.data.total_price) == ("0.1100", pytest.approx(0.11))
    voice.send_voice_message(send_voice_message_request=clicksend.SendVoiceMessageRequest(
        messages=[clicksend.SendVoiceMessageRequestMessagesInner(**message)]))
    [row] = voice.get_voice_history(limit=15, page=1).data.data
    assert (row.voice, row.lang, row.status, row.status_code) == ("male", "en-gb", "Sent", "200")
    assert row.var_date == str(row.date_added)


def test_voice_languages(sdk: clicksend.ApiClient) -> None:
    langs = clicksend.VoiceMessagingApi(sdk).view_voice_languages().data
    by_code = {lang.code: lang for lang in langs}
    assert "en-au" in by_code
    assert by_code["en-au"].gender.actual_instance == ["female", "male"]


def test_voice_cancel_one_and_all_scheduled(sdk: clicksend.ApiClient, locked: Simulator) -> None:
    voice = clicksend.VoiceMessagingApi(sdk)
    later = int(time.time()) + 3600

    def call(when: int | None = None) -> str:
        # The SDK's voice model has no `schedule` (fact sheet §16), so these are sent as Hookline sends them.
        message = {"to": "+61411111111", "body": "Hi", "voice": "female", "lang": "en-au", "schedule": when}
        reply = ClickSendClient(locked.url, username=USERNAME, api_key=API_KEY).send("voice", {"messages": [message]})
        return str(reply.messages[0].message_id)

    first, second, now = call(later), call(later), call()
    cancelled = voice.cancel_voice_message(first)
    assert (cancelled.response_code, cancelled.data) == ("SUCCESS", [])
    assert voice.cancel_all_voice_messages().data.count == 1  # the second; `now` has left
    statuses = {row.message_id: row.status for row in voice.get_voice_history().data.data}
    assert statuses == {first: "Cancelled", second: "Cancelled", now: "Sent"}
    with pytest.raises(clicksend.exceptions.NotFoundException):
        voice.cancel_voice_message("NO-SUCH-CALL")


def test_countries_need_no_credentials(locked: Simulator) -> None:
    with clicksend.ApiClient(clicksend.Configuration(host=locked.url)) as api:
        countries = clicksend.InternationalMessagingApi(api).view_countries().data
    names = {c.code: c.value for c in countries}
    assert names["AU"] == "Australia" and names["GB"] == "United Kingdom" and len(names) > 200


# --- credentials -------------------------------------------------------------------------------------


def unauthorized(call: object) -> UnauthorizedException:
    """The 401 a call raised, with ClickSend's envelope checked."""
    with pytest.raises(UnauthorizedException) as info:
        call()  # type: ignore[operator]
    body = json.loads(info.value.body)
    assert (info.value.status, body["http_code"], body["response_code"]) == (401, 401, "UNAUTHORIZED")
    return info.value


@pytest.mark.parametrize(("username", "api_key"), [(USERNAME, "wrong-key"), ("someone-else", API_KEY)])
def test_wrong_direct_credentials_get_401(locked: Simulator, username: str, api_key: str) -> None:
    with direct(locked, username, api_key) as api:
        unauthorized(clicksend.ManagementApi(api).view_account_details)
        request = clicksend.SendSmsRequest(messages=[clicksend.SendSmsRequestMessagesInner(to="+61411111111",
                                                                                           body="Hi")])
        unauthorized(lambda: clicksend.SmsApi(api).send_sms(send_sms_request=request))
    assert locked.state.ledger == {}


def test_no_credentials_get_401(locked: Simulator) -> None:
    with clicksend.ApiClient(clicksend.Configuration(host=locked.url)) as api:
        unauthorized(clicksend.ManagementApi(api).view_account_details)


@pytest.mark.parametrize(("key", "connection"), [("wrong-key", CONNECTION), (MATON_KEY, "conn-2"), (MATON_KEY, None)])
def test_wrong_maton_credentials_get_401(locked: Simulator, key: str, connection: str | None) -> None:
    with maton(locked, key, connection) as api:
        unauthorized(clicksend.ManagementApi(api).view_account_details)


def test_right_maton_credentials_pass(locked: Simulator) -> None:
    with maton(locked) as api:
        assert clicksend.ManagementApi(api).view_account_details().data.user_id == 123456


def test_only_the_configured_form_passes() -> None:
    url, stop = serve(create_simulator(bearer=MATON_KEY))  # Maton only: basic auth is someone else's
    try:
        sim = Simulator(url, SimState())
        with direct(sim) as api:
            unauthorized(clicksend.ManagementApi(api).view_account_details)
        with maton(sim, connection=None) as api:  # no connection configured: the header is optional
            assert clicksend.ManagementApi(api).view_account_details().data.user_id == 123456
    finally:
        stop()


def test_without_configured_credentials_any_are_accepted(simulator: Simulator) -> None:
    with direct(simulator, "anyone", "anything") as api:
        assert clicksend.ManagementApi(api).view_account_details().data.username == "simulator"
    with maton(simulator, "any-key", None) as api:
        assert clicksend.ManagementApi(api).view_account_details().data.user_id == 123456
