"""ClickSend's official Python SDK (`clicksend-client` 6.x) works against the simulator."""

from __future__ import annotations

import time

import clicksend
import pytest

from tests.conftest import Simulator


@pytest.fixture
def sdk(simulator: Simulator) -> clicksend.ApiClient:
    config = clicksend.Configuration(host=simulator.url, username="sdk-user", password="sdk-key")
    with clicksend.ApiClient(config) as api:
        yield api


def test_account(sdk: clicksend.ApiClient) -> None:
    account = clicksend.ManagementApi(sdk).view_account_details()
    assert account.data.user_id == 123456
    assert account.data.balance == "1000.000000"


def test_send_price_receipts_and_history(sdk: clicksend.ApiClient, simulator: Simulator) -> None:
    sms = clicksend.SmsApi(sdk)
    message = clicksend.SendSmsRequestMessagesInner(to="+61411111111", body="Hello from the SDK",
                                                    custom_string="sdk-1", source="sdk")
    price = sms.calculate_sms_price(calculate_sms_price_request=clicksend.CalculateSmsPriceRequest(
        messages=[clicksend.CalculateSmsPriceRequestMessagesInner(to="+61411111111", body="Hello from the SDK")]))
    assert price.data.total_price == pytest.approx(0.0792)
    sent = sms.send_sms(send_sms_request=clicksend.SendSmsRequest(messages=[message]))
    [result] = sent.data.messages
    assert (result.status, result.custom_string, result.message_parts) == ("SUCCESS", "sdk-1", 1)
    assert simulator.state.ledger == {"sdk-1": 1}

    time.sleep(0.3)
    receipts = sms.view_sms_receipts()
    assert [(r.custom_string, r.status_code) for r in receipts.data.data] == [("sdk-1", 201)]
    one = sms.view_specific_sms_receipt(result.message_id)
    assert one.data.status_code == 201

    history = sms.view_sms_history()
    assert [(h.custom_string, h.status) for h in history.data.data] == [("sdk-1", "Completed")]
