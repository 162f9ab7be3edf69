"""The ClickSend client against the simulator over real HTTP: shapes, lenient parsing and the error tree."""

from __future__ import annotations

import base64
from decimal import Decimal
from functools import partial

import pytest
import requests

from tests.conftest import Simulator, serve
from tests.messages import message
from tests.waiting import wait_for
from workers.clicksend.client import Call, ClickSendClient, Page, iter_pages, parse_retry_after
from workers.clicksend.maton import MatonConnections
from workers.clicksend.simulator import create_simulator
from workers.core import payloads
from workers.core.coerce import to_decimal, to_int
from workers.core.messages import Message
from workers.entry.runtime import clicksend_client
from workers.errors import AuthenticationFailed, ConfigError, ProviderRejected, ProviderUnavailable, RateLimited
from workers.wiring.settings import Settings


def client(sim: Simulator, **kw) -> ClickSendClient:  # noqa: ANN003
    return ClickSendClient(sim.url, username="user", api_key="key", **kw)


def sms(msg_id: str, to: str = "+61411111111", body: str = "Hello") -> Message:
    return message(id=msg_id, to=to, body=body, channel="sms")


def test_account_and_balance(simulator: Simulator) -> None:
    c = client(simulator)
    assert c.account()["user_id"] == 123456
    assert c.balance() == Decimal("1000.000000")


def test_send_reads_every_message_status(simulator: Simulator) -> None:
    simulator.state.faults.invalid_numbers = ["+61422222222"]
    body = payloads.request_body("sms", [sms("m1"), sms("m2", "+61422222222"), sms("m3", "+61433333333", "’" * 80)])
    reply = client(simulator).send("sms", body)
    by_id = {m.custom_string: m for m in reply.messages}
    assert by_id["m1"].status == "SUCCESS" and by_id["m1"].message_id and by_id["m1"].price == Decimal("0.0792")
    assert by_id["m2"].status == "INVALID_RECIPIENT"
    assert by_id["m3"].parts == 2  # UCS-2, 80 characters
    assert reply.currency == "AUD"
    assert simulator.state.ledger == {"m1": 1, "m3": 1}


def test_price_sends_nothing(simulator: Simulator) -> None:
    reply = client(simulator).price("sms", payloads.request_body("sms", [sms("p1")]))
    assert reply.messages[0].price == Decimal("0.0792")
    assert simulator.state.ledger == {}


def test_more_than_1000_recipients_is_rejected(simulator: Simulator) -> None:
    body = payloads.request_body("sms", [sms(f"m{i}") for i in range(1001)])
    with pytest.raises(ProviderRejected) as info:
        client(simulator).send("sms", body)
    assert info.value.status == 400
    assert info.value.response_code == "TOO_MANY_RECIPIENTS"


def test_429_carries_retry_after(simulator: Simulator) -> None:
    simulator.state.faults.rate_429 = 1.0
    with pytest.raises(RateLimited) as info:
        client(simulator).account()
    assert info.value.retry_after == 1.0


def test_a_429_from_the_maton_connection_api_keeps_its_retry_after(simulator: Simulator) -> None:
    simulator.state.faults.rate_429 = 1.0
    answer = requests.get(f"{simulator.url}/connections", headers={"Authorization": "Bearer k"}, timeout=5)
    assert (answer.status_code, answer.headers["Retry-After"]) == (429, "1")
    assert answer.json() == {"error": "TOO_MANY_REQUESTS", "message": "Too many requests."}  # Maton's own shape
    with pytest.raises(RateLimited) as info:
        MatonConnections("k", simulator.url).list()
    assert (str(info.value), info.value.status, info.value.retry_after) == ("Maton: Too many requests.", 429, 1.0)


def test_spread_429s_refuse_exactly_their_share_of_requests_evenly_over_real_http(simulator: Simulator) -> None:
    simulator.state.faults.rate_429, simulator.state.faults.spread = 0.15, True
    c = client(simulator)
    outcomes = []
    for _ in range(40):
        try:
            c.account()
            outcomes.append("ok")
        except RateLimited:
            outcomes.append("429")
    refused = [n for n, outcome in enumerate(outcomes, 1) if outcome == "429"]
    assert len(refused) == 6  # 15% of 40
    assert refused[0] == 4  # the first share is owed from one half, not after a whole run of requests
    assert max(b - a for a, b in zip(refused, refused[1:], strict=False)) <= 7  # evenly: no long run without one


def test_spread_applies_to_the_429_and_500_rates_only_and_reads_false_as_false(simulator: Simulator) -> None:
    faults = simulator.state.faults
    assert faults.update({"spread": "false"}) == {} and faults.spread is False
    assert faults.update({"spread": "true"}) == {} and faults.spread is True
    for _ in range(10):  # a hang or a failure after acceptance is still a coin each, spread or not
        simulator.state.chance(0.3)
    assert simulator.state._owed == {}
    simulator.state.chance(0.3, "429")
    assert set(simulator.state._owed) == {"429"}


def test_a_fault_change_with_a_wrong_setting_applies_none_of_it_and_names_each_wrong_one(
        simulator: Simulator) -> None:
    url = f"{simulator.url}/_sim/faults"
    before = requests.get(url, timeout=5).json()
    answer = requests.put(url, timeout=5, json={"rate_429": 0.5, "latency": "slow", "spread": [True],
                                                "invalid_numbers": "+61411111111", "undelivered_numbers": [614],
                                                "balance": None, "rate_limitt": 2})
    assert answer.status_code == 400
    assert requests.get(url, timeout=5).json() == before  # not even rate_429, given before the wrong ones
    body = answer.json()
    assert (body["http_code"], body["response_code"], body["response_msg"]) == (400, "BAD_REQUEST", "Invalid input.")
    assert body["data"] == {"latency": "'slow' is not a number", "spread": "[True] is not true or false",
                            "invalid_numbers": "'+61411111111' is not a list of strings",
                            "undelivered_numbers": "[614] is not a list of strings",
                            "balance": "None is not a string", "rate_limitt": "not a fault setting"}
    changed = requests.put(url, timeout=5, json={"rate_429": 0.5, "latency": "0.25", "spread": "no",
                                                 "invalid_numbers": ["+61411111111"], "balance": 12})
    assert changed.status_code == 200
    assert changed.json() == before | {"rate_429": 0.5, "latency": 0.25, "spread": False,
                                       "invalid_numbers": ["+61411111111"], "balance": "12"}
    assert requests.get(url, timeout=5).json() == changed.json()


def test_500_before_acceptance_on_a_send_is_unknown_outcome(simulator: Simulator) -> None:
    simulator.state.faults.rate_500 = 1.0
    with pytest.raises(ProviderUnavailable) as info:
        client(simulator).send("sms", payloads.request_body("sms", [sms("m1")]))
    assert info.value.outcome_unknown  # a 5xx reply to a send never proves nothing was sent


def test_500_on_a_read_is_safe_to_retry(simulator: Simulator) -> None:
    simulator.state.faults.rate_500 = 1.0
    with pytest.raises(ProviderUnavailable) as info:
        client(simulator).account()
    assert not info.value.outcome_unknown


def test_hanging_send_times_out_as_unknown(simulator: Simulator) -> None:
    simulator.state.faults.hang_rate, simulator.state.faults.hang_seconds = 1.0, 2.0
    with pytest.raises(ProviderUnavailable) as info:
        client(simulator, timeout=(2, 0.5)).send("sms", payloads.request_body("sms", [sms("h1")]))
    assert info.value.outcome_unknown
    assert simulator.state.ledger == {"h1": 1}  # it was accepted: resending blindly would duplicate it


def test_the_observer_is_told_of_every_call_with_its_endpoint_status_and_time(simulator: Simulator) -> None:
    calls: list[Call] = []
    c = client(simulator, timeout=(2, 0.5), observer=calls.append)
    c.send("sms", payloads.request_body("sms", [sms("o1")]))
    with pytest.raises(ProviderRejected):
        c.cancel_sms("no-such-id")
    simulator.state.faults.rate_429 = 1.0
    with pytest.raises(RateLimited):
        c.account()
    simulator.state.faults.rate_429, simulator.state.faults.hang_rate = 0.0, 1.0
    simulator.state.faults.hang_seconds = 2.0
    with pytest.raises(ProviderUnavailable):
        c.send("sms", payloads.request_body("sms", [sms("o2")]))
    assert [(k.method, k.endpoint, k.status) for k in calls] == [
        ("POST", "/v3/sms/send", "200"), ("PUT", "/v3/sms/{id}/cancel", "404"), ("GET", "/v3/account", "429"),
        ("POST", "/v3/sms/send", "timeout")]
    assert all(k.seconds > 0 for k in calls) and calls[-1].seconds >= 0.5


def test_refused_connection_is_known_not_sent() -> None:
    c = ClickSendClient("http://127.0.0.1:9", username="u", api_key="k", timeout=(1, 1))
    with pytest.raises(ProviderUnavailable) as info:
        c.send("sms", payloads.request_body("sms", [sms("x")]))
    assert not info.value.outcome_unknown


def test_no_base_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no ClickSend base URL"):
        clicksend_client(Settings(redis_url="redis://127.0.0.1:6392/0"))


def test_wrong_credentials_raise_authentication_failed() -> None:
    url, stop = serve(create_simulator(username="right", api_key="secret"))
    try:
        with pytest.raises(AuthenticationFailed):
            ClickSendClient(url, username="right", api_key="wrong").account()
        assert ClickSendClient(url, username="right", api_key="secret").account()["username"] == "right"
    finally:
        stop()


def test_maton_gateway_sends_bearer_and_connection_headers(simulator: Simulator) -> None:
    seen = {}

    def hook(response: requests.Response, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        seen.update(response.request.headers)

    c = ClickSendClient(simulator.url, bearer="maton-key", connection="conn-1")
    c.session.hooks["response"].append(hook)
    c.account()
    assert seen["Authorization"] == "Bearer maton-key"
    assert seen["Maton-Connection"] == "conn-1"
    assert seen["User-Agent"].startswith("Hookline/")


def test_basic_auth_header_is_username_and_key(simulator: Simulator) -> None:
    seen = {}
    c = client(simulator)
    c.session.hooks["response"].append(lambda r, *a, **k: seen.update(r.request.headers))
    c.account()
    assert seen["Authorization"] == "Basic " + base64.b64encode(b"user:key").decode()


def test_history_is_paged_and_searchable(simulator: Simulator) -> None:
    c = client(simulator)
    c.send("sms", payloads.request_body("sms", [sms(f"m{i}", f"+614111111{i:02d}") for i in range(30)]))
    first = c.history(limit=15)
    assert (first.total, first.last_page, len(first.items)) == (30, 2, 15)
    second = c.history(page=2, limit=15)
    assert {r["custom_string"] for r in first.items + second.items} == {f"m{i}" for i in range(30)}
    only = c.history(q="to:+61411111105")
    assert [r["custom_string"] for r in only.items] == ["m5"]


def test_iter_pages_follows_current_and_last_page(simulator: Simulator) -> None:
    c = client(simulator)
    c.send("sms", payloads.request_body("sms", [sms(f"m{i}", f"+614111111{i:02d}") for i in range(40)]))
    pages = list(iter_pages(partial(c.history, "sms", limit=15)))
    assert [(p.current_page, len(p.items)) for p in pages] == [(1, 15), (2, 15), (3, 10)]
    assert {r["custom_string"] for p in pages for r in p.items} == {f"m{i}" for i in range(40)}


def test_iter_pages_stops_at_last_page_when_the_server_repeats_page_one() -> None:
    asked: list[int] = []

    def stuck(*, page: int) -> Page:
        asked.append(page)
        return Page(items=[], current_page=1, last_page=3, total=0)

    assert len(list(iter_pages(stuck))) == 3
    assert asked == [1, 2, 3]


def test_receipts_move_from_pending_to_final_and_can_be_marked_read(simulator: Simulator) -> None:
    simulator.state.faults.undelivered_numbers = ["+61422222222"]
    c = client(simulator)
    reply = c.send("sms", payloads.request_body("sms", [sms("a"), sms("b", "+61422222222")]))
    ids = {m.custom_string: m.message_id for m in reply.messages}
    assert c.receipt(ids["a"])["status_code"] == 200
    assert c.receipts().items == []
    wait_for(lambda: len(c.receipts().items) == 2, "both receipts to become final")
    assert c.receipt(ids["a"])["status_code"] == 201
    final = {r["custom_string"]: r["status_code"] for r in c.receipts().items}
    assert final == {"a": 201, "b": 301}
    c.mark_receipts_read()
    assert c.receipts().items == []


def test_the_ledger_counts_each_receipts_page_and_mark_read_call(simulator: Simulator) -> None:
    c = client(simulator)
    c.receipts("sms", limit=100)
    c.receipts("voice", limit=100)
    c.mark_receipts_read("sms")
    calls = simulator.state.ledger_view()["calls"]
    assert calls == {"/v3/sms/receipts": 1, "/v3/voice/receipts": 1, "/v3/sms/receipts-read": 1}


def test_inbound_injected_then_listed_and_marked_read(simulator: Simulator) -> None:
    simulator.state.add_inbound("+61411111111", "STOP")
    c = client(simulator)
    assert [m["body"] for m in c.inbound().items] == ["STOP"]
    c.mark_inbound_read()
    assert c.inbound().items == []


def test_mms_and_voice_send(simulator: Simulator) -> None:
    c = client(simulator)
    mms = message(id="mm1", to="+61411111111", body="Ticket", channel="mms", subject="Your ticket",
                  media_file="https://cdn.example.com/t.jpg")
    assert c.send("mms", payloads.request_body("mms", [mms])).messages[0].status == "SUCCESS"
    voice = message(id="v1", to="+61411111111", body="Alert", channel="voice", voice="female", lang="en-au",
                    country="AU")
    assert c.send("voice", payloads.request_body("voice", [voice])).messages[0].status == "SUCCESS"
    assert c.voice_languages()
    assert c.lists().items[0]["list_name"] == "Opt-Out List"


@pytest.mark.parametrize(("raw", "expected"), [(0.07, Decimal("0.07")), ("0.0792", Decimal("0.0792")),
                                               ("", None), (None, None), ("abc", None)])
def test_lenient_decimal(raw: object, expected: Decimal | None) -> None:
    assert to_decimal(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [(1, 1), ("1", 1), ("1.00", 1), ("", None), (None, None), (True, None)])
def test_lenient_int(raw: object, expected: int | None) -> None:
    assert to_int(raw) == expected


def test_retry_after_as_seconds_or_date() -> None:
    assert parse_retry_after("3", 0) == 3.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", 0) == 10.0
    assert parse_retry_after("soon", 0) is None


def test_a_scheduled_voice_call_can_be_cancelled_like_an_sms(simulator: Simulator) -> None:
    c = client(simulator)
    later = int(simulator.state.clock()) + 3600
    calls = [{"to": "+61411111111", "body": "Hi", "voice": "female", "lang": "en-au", "schedule": later}] * 2
    first, second = (m.message_id for m in c.send("voice", {"messages": calls}).messages)
    assert first and second
    assert c.cancel_voice(first) == {"items": []}
    assert c.cancel_all("voice") == 1
    assert {row["message_id"]: row["status"] for row in c.history("voice").items} == {
        first: "Cancelled", second: "Cancelled"}
    with pytest.raises(ProviderRejected) as info:
        c.cancel_voice("NO-SUCH-CALL")
    assert info.value.status == 404


def test_countries_and_voice_languages(simulator: Simulator) -> None:
    c = client(simulator)
    assert {"code": "AU", "value": "Australia"} in c.countries()
    assert {"code": "en-in", "country": "en-in", "gender": "female"} in c.voice_languages()
