"""Every provider preset through the real HTTP edge: `POST /hooks/p` for a source that says only `provider: <name>`.

For each entry of the catalog (a new one without a case here fails `test_every_provider_has_a_case`): a valid
request is accepted and its byte-identical replay answered as the duplicate it is, with the first event's id;
a wrong secret, a tampered body, one added space, a stale timestamp (where the provider signs one) and a missing
signature header are refused. Requests are signed with the provider's own library where it publishes one on
PyPI (Stripe, Svix, Standard Webhooks, Slack's SignatureVerifier, Twilio's RequestValidator; Square's helper
checks what we sign), else as its documentation says (tests/signing.py), pinned to a published test vector where
the provider gives one. Bodies are the real ones in tests/fixtures/providers/ (Cal.com's in examples/) where
there is one, else a minimal body shaped as the provider's documentation shows it.

tests/webhooks/test_signatures.py covers the schemes themselves (rotation, skew both ways, several signatures);
this file checks that each preset wires the right scheme, options, id and type into the edge.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from werkzeug.datastructures import Headers

from tests import signing
from tests.conftest import EXAMPLES_DIR, NEUTRAL_POLICIES, ROOT, WHSEC
from webhooks.signatures import verify
from workers.core import providers, schemes
from workers.core.sources import parse_sources
from workers.entry.runtime import Runtime
from workers.errors import SignatureInvalid
from workers.store.keys import STATS_EVENTS
from workers.wiring.settings import Settings

FIXTURES = ROOT / "tests/fixtures/providers"
URL = "https://hooks.example.com/hooks/p"  # what Square and Twilio are told to call, and sign
SECRET, WRONG = "p-edge-secret-0123", "not-the-secret-0123"
WHSEC_WRONG = "whsec_" + "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA=="  # base64("other-secret-other-secret")
FORM = "application/x-www-form-urlencoded"

Signer = Callable[[str, bytes, int], dict[str, str]]  # (secret, body, timestamp) -> the signature's headers


@dataclass(frozen=True)
class Case:
    """How one provider's request looks: its body, its signature headers and the headers it also sends."""

    body: bytes
    sign: Signer
    event_type: str  # what the preset must read as the event's type
    headers: dict[str, str] = field(default_factory=dict)  # id, type and other headers that are not signed
    secret: str = SECRET
    wrong: str = WRONG
    timestamp: bool = False  # the signature covers a timestamp, so a stale one is refused
    signs_body: bool = True  # False: a token sender (the request proves who sent it, not what it sent)
    content_type: str = "application/json"


def fixture(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


def minimal(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def delivery() -> str:
    return str(uuid.uuid4())


CASES: dict[str, Case] = {
    "shopify": Case(
        fixture("shopify/order-cancelled.json"), lambda s, b, t: signing.shopify(s, b), "orders/cancelled",
        headers={"X-Shopify-Topic": "orders/cancelled", "X-Shopify-Webhook-Id": delivery(),
                 "X-Shopify-Shop-Domain": "example.myshopify.com"}),
    "stripe": Case(
        fixture("stripe/payment-intent-failed.json"), lambda s, b, t: signing.stripe_sdk(s, b, t),
        "payment_intent.payment_failed", secret="whsec_stripe-edge-secret", timestamp=True),
    "github": Case(
        # GitHub's ping, as its webhook events reference shows it (abridged).
        minimal({"zen": "Design for failure.", "hook_id": 123456789,
                 "hook": {"type": "Repository", "id": 123456789, "active": True, "events": ["push"]}}),
        lambda s, b, t: signing.github(s, b), "ping",
        headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": delivery(), "User-Agent": "GitHub-Hookshot/044aadd"}),
    "gitlab": Case(
        minimal({"object_kind": "push", "event_name": "push", "ref": "refs/heads/main", "user_id": 4,
                 "project": {"id": 15, "name": "Diaspora"}, "total_commits_count": 4}),
        lambda s, b, t: signing.gitlab(s), "Push Hook", signs_body=False,
        headers={"X-Gitlab-Event": "Push Hook", "Idempotency-Key": delivery()}),
    "slack": Case(
        # An Events API callback, as Slack's docs show app_mention.
        minimal({"token": "XXYYZZ", "team_id": "T123ABC456", "api_app_id": "A123ABC456", "type": "event_callback",
                 "event": {"type": "app_mention", "user": "U123ABC456", "text": "<@U0LAN0Z89> hi",
                           "ts": "1515449522.000016", "channel": "C123ABC456", "event_ts": "1515449522.000016"},
                 "event_id": "Ev123ABC456", "event_time": 1515449522}),
        lambda s, b, t: signing.slack(s, b, t), "app_mention", timestamp=True),
    "twilio": Case(
        # A message status callback, form-encoded as Twilio sends it.
        b"MessageSid=SM1f0e8ae6ade43cb3c0ce4525424e404f&SmsSid=SM1f0e8ae6ade43cb3c0ce4525424e404f"
        b"&AccountSid=AC00000000000000000000000000000001&MessageStatus=delivered&SmsStatus=delivered"
        b"&To=%2B12015550123&From=%2B12015550100&ApiVersion=2010-04-01",
        lambda s, b, t: signing.twilio(s, URL, b), "delivered", content_type=FORM,
        headers={"I-Twilio-Idempotency-Token": delivery()}),
    "calendly": Case(
        fixture("calendly/invitee-created.json"), lambda s, b, t: signing.calendly(s, b, t), "invitee.created",
        timestamp=True),
    "calcom": Case(
        (EXAMPLES_DIR / "booking-created.json").read_bytes(), lambda s, b, t: signing.calcom(s, b), "BOOKING_CREATED",
        headers={"x-cal-webhook-version": "2021-10-20"}),
    "pagerduty": Case(
        # A v3 incident.triggered, as PagerDuty's webhook overview shows it (abridged).
        minimal({"event": {"id": "01DEN4HPBQAYHHGBKNBGBKTCH4", "event_type": "incident.triggered",
                           "resource_type": "incident", "occurred_at": "2020-10-02T18:45:22.169Z",
                           "data": {"id": "PGR0VU2", "type": "incident", "number": 2, "status": "triggered",
                                    "title": "A little bump in the road", "urgency": "high"}}}),
        lambda s, b, t: signing.pagerduty([s], b), "incident.triggered"),
    "standard-webhooks": Case(
        minimal({"type": "invoice.paid", "timestamp": "2022-11-03T20:26:10.344522Z", "data": {"id": "inv_1"}}),
        lambda s, b, t: signing.standard(s, b, t, msg_id=f"msg_{uuid.uuid4().hex}"), "invoice.paid",
        secret=WHSEC, wrong=WHSEC_WRONG, timestamp=True),
    "svix": Case(
        minimal({"type": "user.created", "timestamp": "2022-11-03T20:26:10.344522Z", "data": {"id": "user_1"}}),
        lambda s, b, t: signing.svix(s, b, t, msg_id=f"msg_{uuid.uuid4().hex}"), "user.created",
        secret=WHSEC, wrong=WHSEC_WRONG, timestamp=True),
    "alertmanager": Case(
        fixture("alertmanager/firing.json"), lambda s, b, t: {"Authorization": f"Bearer {s}"}, "firing",
        signs_body=False, headers={"User-Agent": "Alertmanager/0.25.0"}),
    "grafana": Case(
        fixture("grafana/firing.json"), lambda s, b, t: {"Authorization": f"Bearer {s}"}, "firing",
        signs_body=False, headers={"User-Agent": "Grafana"}),
    "square": Case(
        # payment.created, as Square's webhook reference shows it (abridged).
        minimal({"merchant_id": "6SSW7HV8K2ST5", "type": "payment.created",
                 "event_id": "13b867cf-db3d-4b1c-90b6-2f32a9d78124", "created_at": "2020-02-06T21:27:30.792Z",
                 "data": {"type": "payment", "id": "KkAkhdMsgzn59SM8A89WgKwekxLZY",
                          "object": {"payment": {"id": "KkAkhdMsgzn59SM8A89WgKwekxLZY", "status": "APPROVED",
                                                 "amount_money": {"amount": 100, "currency": "USD"}}}}}),
        lambda s, b, t: signing.square_sdk(s, URL, b), "payment.created"),
    "typeform": Case(
        minimal({"event_id": "01FKSZ9Y4V0G4WJPGT7Q4Z3FQH", "event_type": "form_response",
                 "form_response": {"form_id": "lT4Z3j", "token": "a3a12ec67a1365927098a606107fac15",
                                   "submitted_at": "2018-01-18T18:17:02Z", "answers": []}}),
        lambda s, b, t: signing.typeform(s, b), "form_response"),
    "woocommerce": Case(
        minimal({"id": 727, "status": "processing", "currency": "USD", "total": "29.35",
                 "billing": {"first_name": "John", "phone": "+12015550142"}}),
        lambda s, b, t: signing.woocommerce(s, b), "order.created",
        headers={"X-WC-Webhook-Topic": "order.created", "X-WC-Webhook-Delivery-ID": "1234",
                 "X-WC-Webhook-Source": "https://shop.example.com/"}),
}

def params(names: tuple[str, ...]) -> list[object]:
    """The providers as test parameters (form-bodied ones included: the edge takes forms)."""
    return list(names)


def signs_timestamp(name: str) -> bool:
    """Whether the provider's scheme signs a timestamp, so that a replay window applies to its requests."""
    return schemes.REGISTRY[providers.CATALOG[name].scheme].signs_timestamp


ALL = params(providers.names())
STAMPED = params(tuple(n for n in providers.names() if signs_timestamp(n)))


def case(name: str) -> Case:
    assert name in CASES, f"provider {name!r} has no case in {__name__}.CASES: add its body and signer"
    return CASES[name]


@pytest.fixture
def environ() -> dict[str, str]:
    """HOOKLINE_* variables a test sets (by parametrizing `environ`); none by default."""
    return {}


@pytest.fixture
def source_extra() -> str:
    """More YAML for source `p` (a test parametrizes it); nothing by default."""
    return ""


@pytest.fixture
def settings(settings: Settings, environ: dict[str, str]) -> Settings:
    """The test settings, or with `environ` set, the settings `Settings.from_env` reads from it."""
    if not environ:
        return settings
    env = {"REDIS_URL": settings.redis_url, "HOOKLINE_RULES_DIR": settings.rules_dir, **environ}
    return Settings.from_env(env).with_(api_token=settings.api_token)


@pytest.fixture
def rules_dir(tmp_path: Path, name: str, source_extra: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A rules directory with one source `p`, the preset and its secret only, and a rule that takes anything."""
    rules = tmp_path / "rules"
    rules.mkdir()
    provider = providers.CATALOG[name]
    monkeypatch.setenv("P_SECRET", case(name).secret)
    url = f"    url: {URL}\n" if "url" in provider.needs else ""
    (rules / "sources.yaml").write_text(
        f'sources:\n  p:\n    provider: {name}\n    secret: "${{P_SECRET}}"\n{url}{source_extra}')
    (rules / "policies.yaml").write_text(NEUTRAL_POLICIES)
    (rules / "catch-all.yaml").write_text(
        "rules:\n  - name: catch-all\n    source: p\n    event: '*'\n"
        "    send: {channel: sms, to: '+61491570156', body: '{{ type }} from {{ source }}'}\n")
    return rules


def post(client, name: str, body: bytes, headers: dict[str, str]):  # noqa: ANN001, ANN201 - Flask test client
    c = case(name)
    return client.post("/hooks/p", data=body, headers={"Content-Type": c.content_type, **c.headers, **headers})


def signed(name: str, body: bytes | None = None, secret: str | None = None, ts: int | None = None) -> dict[str, str]:
    c = case(name)
    return c.sign(c.secret if secret is None else secret, c.body if body is None else body,
                  int(time.time()) if ts is None else ts)


def tampered(body: bytes) -> bytes:
    """The body with its first digit changed (never to 0, so a number stays a valid number): other content."""
    digit = re.search(rb"[0-9]", body)
    assert digit is not None
    new = b"2" if digit.group() == b"1" else b"1"
    return body[:digit.start()] + new + body[digit.end():]


def one_space_more(name: str, body: bytes) -> bytes:
    """The same JSON to any parser, other bytes to a signature (a space after the opening brace); in a form, a
    space in the first value."""
    mark = b"=" if case(name).content_type == FORM else b"{"
    at = body.index(mark) + 1
    return body[:at] + b" " + body[at:]


def refused(response) -> bool:  # noqa: ANN001
    return response.status_code == 401 and response.json == {"error": "unauthorized",
                                                              "message": "signature verification failed"}


@pytest.fixture
def accepted(runtime: Runtime) -> Callable[[object, str], str]:
    """Assert a response is 202 for a stored event of `event_type`; give its id."""

    def check(response, event_type: str) -> str:  # noqa: ANN001
        assert response.status_code == 202, response.json
        event_id: str = response.json["event_id"]
        record = runtime.store.events.get_event(event_id)
        assert record is not None and record.event.source == "p" and record.event.type == event_type
        return event_id

    return check


def test_every_provider_has_a_case() -> None:
    assert set(CASES) == set(providers.names())
    for name, c in CASES.items():
        provider = providers.CATALOG[name]
        # Timestamped exactly when the preset's scheme says it signs one.
        assert c.timestamp == signs_timestamp(name), name
        assert (c.content_type == FORM) == (provider.body == "form"), name
        assert c.signs_body == (provider.scheme not in ("bearer", "gitlab")), name


def test_github_signer_gives_githubs_published_example() -> None:
    # docs.github.com "Validating webhook deliveries", Testing the webhook payload validation.
    assert signing.github("It's a Secret to Everybody", b"Hello, World!") == {
        "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}


@pytest.mark.parametrize("name", ALL)
def test_a_valid_request_is_accepted_and_its_replay_is_a_duplicate(client, accepted, name: str) -> None:  # noqa: ANN001
    c = case(name)
    headers = signed(name)
    first = post(client, name, c.body, headers)
    event_id = accepted(first, c.event_type)
    again = post(client, name, c.body, headers)  # byte for byte the same request
    assert (again.status_code, again.json) == (200, {"event_id": event_id, "duplicate": True})


@pytest.mark.parametrize("name", ALL)
def test_a_wrong_secret_is_refused(client, name: str) -> None:  # noqa: ANN001
    c = case(name)
    assert refused(post(client, name, c.body, signed(name, secret=c.wrong)))


@pytest.mark.parametrize("name", ALL)
def test_a_tampered_body_is_refused(client, accepted, name: str) -> None:  # noqa: ANN001
    c = case(name)
    body = tampered(c.body)
    if c.content_type != FORM:
        assert json.loads(body) != json.loads(c.body)  # still JSON, other content: only a signature can tell
    response = post(client, name, body, signed(name))
    if c.signs_body:
        assert refused(response)
    else:
        # Alertmanager, Grafana and GitLab sign nothing: the token says who sent the request, not what it sent,
        # so a changed body with the right token cannot be told from a real one (TLS is what protects it).
        accepted(response, c.event_type)


@pytest.mark.parametrize("name", ALL)
def test_one_added_space_is_refused(client, accepted, name: str) -> None:  # noqa: ANN001
    c = case(name)
    body = one_space_more(name, c.body)
    if c.content_type != FORM:
        assert json.loads(body) == json.loads(c.body)  # the same JSON: verification must be over the raw bytes
    response = post(client, name, body, signed(name))
    if c.signs_body:
        assert refused(response)
    else:
        accepted(response, c.event_type)  # a token sender: as for a tampered body, nothing covers the bytes


@pytest.mark.parametrize("name", STAMPED)
def test_a_stale_timestamp_is_refused(client, settings, name: str) -> None:  # noqa: ANN001
    tolerance = settings.signature_tolerance  # HOOKLINE_SIGNATURE_TOLERANCE, 5 minutes unless set
    now = int(time.time())
    assert refused(post(client, name, case(name).body, signed(name, ts=now - int(tolerance) - 60)))
    assert refused(post(client, name, case(name).body, signed(name, ts=now + int(tolerance) + 60)))


TOLERANCE_30S = {"HOOKLINE_SIGNATURE_TOLERANCE": "30s"}


@pytest.mark.parametrize("environ", [TOLERANCE_30S])
@pytest.mark.parametrize("name", STAMPED)
def test_presets_take_their_replay_window_from_hookline_signature_tolerance(
        client, runtime: Runtime, name: str) -> None:  # noqa: ANN001
    assert (runtime.settings.signature_tolerance, runtime.rules.current().sources["p"].verify.tolerance) == (30, None)
    now = int(time.time())
    # 45 s old or ahead: inside the 5-minute default, outside the 30 s set here.
    assert refused(post(client, name, case(name).body, signed(name, ts=now - 45)))
    assert refused(post(client, name, case(name).body, signed(name, ts=now + 45)))
    assert post(client, name, case(name).body, signed(name, ts=now - 20)).status_code == 202


@pytest.mark.parametrize("environ, source_extra", [(TOLERANCE_30S, "    tolerance: 2m\n")])
@pytest.mark.parametrize("name", STAMPED)
def test_a_sources_own_tolerance_beats_the_setting(client, name: str) -> None:  # noqa: ANN001
    now = int(time.time())
    assert refused(post(client, name, case(name).body, signed(name, ts=now - 150)))
    assert post(client, name, case(name).body, signed(name, ts=now - 90)).status_code == 202


@pytest.mark.parametrize("name", ALL)
def test_a_missing_signature_header_is_refused(client, name: str) -> None:  # noqa: ANN001
    headers = signed(name)
    for missing in headers:
        assert refused(post(client, name, case(name).body, {k: v for k, v in headers.items() if k != missing})), \
            missing


FORM_PROVIDERS = [n for n in providers.names() if providers.CATALOG[n].body == "form"]


@pytest.mark.parametrize("name", FORM_PROVIDERS)
def test_form_cases_are_signed_right_below_the_edge(name: str) -> None:
    # Below the edge too: the same form requests verify with the preset's scheme.
    config = {"provider": name, "secret": case(name).secret, **({"url": URL} if "url" in
                                                              providers.CATALOG[name].needs else {})}
    source = parse_sources({"sources": {"p": config}}, {})["p"]
    now = time.time()
    verify(source.verify, case(name).body, Headers(signed(name)), now)
    with pytest.raises(SignatureInvalid):
        verify(source.verify, case(name).body, Headers(signed(name, secret=case(name).wrong)), now)
    with pytest.raises(SignatureInvalid):
        verify(source.verify, tampered(case(name).body), Headers(signed(name)), now)


@pytest.mark.parametrize("name", ["slack"])  # `name` picks the rules directory
def test_slack_url_verification_is_answered_with_its_challenge_and_stores_nothing(
        client, runtime: Runtime, redis_client, name: str) -> None:  # noqa: ANN001
    # docs.slack.dev "url_verification event": the body Slack sends when the Request URL is set, signed like any;
    # Slack enables the URL once the challenge comes back (as text, a form or JSON {"challenge": ...}).
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    body = minimal({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": challenge, "type": "url_verification"})
    keys_before = set(redis_client.keys("*")) - {STATS_EVENTS}  # the answer is counted, nothing more
    response = post(client, name, body, signed(name, body=body))
    assert (response.status_code, response.json) == (200, {"challenge": challenge})
    assert set(redis_client.keys("*")) - {STATS_EVENTS} == keys_before  # no event, marker or job
    # Only a verified one: unsigned or wrongly signed, it is refused like any request.
    assert refused(post(client, name, body, {}))
    assert refused(post(client, name, body, signed(name, body=body, secret=WRONG)))
    # And only the handshake: an ordinary event still becomes one.
    assert post(client, name, case(name).body, signed(name)).status_code == 202


def test_only_slack_answers_a_handshake() -> None:
    # The answer is the preset's data; no other provider has one (a Standard Webhooks event that happens to be
    # called url_verification is an event like any).
    assert {n for n in providers.names() if providers.CATALOG[n].handshake} == {"slack"}
    source = parse_sources({"sources": {"p": {"provider": "standard-webhooks", "secret": WHSEC}}}, {})["p"]
    assert source.handshake_answer("url_verification", {"challenge": "x"}) is None
