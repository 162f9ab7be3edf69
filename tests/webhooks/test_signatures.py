"""Every verification scheme: valid, wrong secret, tampered body, bad timestamps, missing header, rotation."""

from __future__ import annotations

import base64

import pytest
import stripe
from slack_sdk.signature import Clock, SignatureVerifier
from werkzeug.datastructures import Headers

from tests import signing
from webhooks.signatures import verify
from workers.core.sources import Verify
from workers.errors import SignatureInvalid

NOW = 1_790_000_000
BODY = b'{"id": 1, "total": "25.00"}'
WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123").decode()
SQUARE_URL = "https://hooks.example.com/hooks/square"
TWILIO_URL = "https://hooks.example.com/hooks/sms?account=7"
WHSEC_OLD = "whsec_" + base64.b64encode(b"old-secret-old-secret").decode()


def check(spec: Verify, headers: dict[str, str], body: bytes = BODY, now: float = NOW) -> None:
    verify(spec, body, Headers(headers), now)


def rejects(spec: Verify, headers: dict[str, str], body: bytes = BODY, now: float = NOW) -> None:
    with pytest.raises(SignatureInvalid) as info:
        check(spec, headers, body, now)
    # The client-facing message never says what was wrong.
    assert info.value.message == "signature verification failed"
    assert info.value.status == 401


# (scheme spec, signer(secret, body, ts) -> headers, has_timestamp)
SCHEMES = {
    "github": (Verify("github", ("s1",)), lambda s, b, t: signing.github(s, b), False),
    "shopify": (Verify("shopify", ("s1",)), lambda s, b, t: signing.shopify(s, b), False),
    "stripe": (Verify("stripe", ("s1",)), lambda s, b, t: signing.stripe(s, b, t), True),
    "stripe-sdk": (Verify("stripe", ("s1",)), lambda s, b, t: signing.stripe_sdk(s, b, t), True),
    "calendly": (Verify("calendly", ("s1",)), lambda s, b, t: signing.calendly(s, b, t), True),
    "slack": (Verify("slack", ("s1",)), lambda s, b, t: signing.slack(s, b, t), True),
    "calcom": (Verify("calcom", ("s1",)), lambda s, b, t: signing.calcom(s, b), False),
    "hmac-hex": (
        Verify("hmac-sha256", ("s1",), header="X-Signature", prefix="sha256="),
        lambda s, b, t: {"X-Signature": "sha256=" + signing.hmac_hex(s, b)},
        False,
    ),
    "hmac-b64-timestamped": (
        Verify("hmac-sha256", ("s1",), header="X-Sig", encoding="base64", timestamp_header="X-Ts"),
        lambda s, b, t: {"X-Sig": signing.hmac_b64(s, f"{t}.".encode() + b), "X-Ts": str(t)},
        True,
    ),
    "hmac-pagerduty-rotating": (
        # PagerDuty mid-rotation: a signature with the retired key and one with the current key.
        Verify("hmac-sha256", ("s1",), header="X-PagerDuty-Signature", prefix="v1="),
        lambda s, b, t: signing.pagerduty(["retired-key", s], b),
        False,
    ),
    "typeform": (Verify("typeform", ("s1",)), lambda s, b, t: signing.typeform(s, b), False),
    "woocommerce": (Verify("woocommerce", ("s1",)), lambda s, b, t: signing.woocommerce(s, b), False),
    "square": (Verify("square", ("s1",), url=SQUARE_URL), lambda s, b, t: signing.square(s, SQUARE_URL, b), False),
    "twilio": (Verify("twilio", ("s1",), url=TWILIO_URL), lambda s, b, t: signing.twilio(s, TWILIO_URL, b), False),
    "gitlab": (Verify("gitlab", ("s1",)), lambda s, b, t: signing.gitlab(s), False),
    "bearer": (Verify("bearer", ("s1",)), lambda s, b, t: {"Authorization": f"Bearer {s}"}, False),
    "basic": (Verify("basic", ("s1",), username="am"), lambda s, b, t: signing.basic("am", s), False),
}
# Schemes keyed by a base64 whsec_ secret rather than a plain string.
WHSEC_SCHEMES = {
    "standard-webhooks": (Verify("standard-webhooks", (WHSEC,)), lambda s, b, t: signing.standard(s, b, t), True),
    "svix": (Verify("svix", (WHSEC,)), lambda s, b, t: signing.svix(s, b, t), True),
}


def with_secrets(spec: Verify, secrets: tuple[str, ...]) -> Verify:
    return Verify(**{**spec.__dict__, "secrets": secrets})


ALL = {**SCHEMES, **WHSEC_SCHEMES}
SIGNS_BODY = [n for n in ALL if n not in ("bearer", "basic", "gitlab")]


def secret_of(name: str) -> str:
    return WHSEC if name in WHSEC_SCHEMES else "s1"


def other_secret(name: str) -> str:
    return WHSEC_OLD if name in WHSEC_SCHEMES else "wrong"


@pytest.mark.parametrize("name", ALL)
def test_valid_signature_is_accepted(name: str) -> None:
    spec, sign, _ = ALL[name]
    check(spec, sign(secret_of(name), BODY, NOW))


@pytest.mark.parametrize("name", ALL)
def test_wrong_secret_is_refused(name: str) -> None:
    spec, sign, _ = ALL[name]
    rejects(spec, sign(other_secret(name), BODY, NOW))


@pytest.mark.parametrize("name", SIGNS_BODY)
def test_tampered_body_is_refused(name: str) -> None:
    spec, sign, _ = ALL[name]
    rejects(spec, sign(secret_of(name), BODY, NOW), body=BODY.replace(b"25.00", b"2500"))


@pytest.mark.parametrize("name", SIGNS_BODY)
def test_one_added_space_in_the_body_is_refused(name: str) -> None:
    # The same JSON to a parser, different bytes to a signature: verification must be over the raw body.
    spec, sign, _ = ALL[name]
    rejects(spec, sign(secret_of(name), BODY, NOW), body=BODY.replace(b", ", b",  ", 1))


@pytest.mark.parametrize("name", [n for n in ALL if ALL[n][2]])
@pytest.mark.parametrize("skew", [-301, 301, -3600, 86400])
def test_timestamp_outside_five_minutes_is_refused(name: str, skew: int) -> None:
    spec, sign, _ = ALL[name]
    rejects(spec, sign(secret_of(name), BODY, NOW + skew))


@pytest.mark.parametrize("name", [n for n in ALL if ALL[n][2]])
@pytest.mark.parametrize("skew", [-299, 299])
def test_timestamp_inside_the_window_is_accepted(name: str, skew: int) -> None:
    spec, sign, _ = ALL[name]
    check(spec, sign(secret_of(name), BODY, NOW + skew))


@pytest.mark.parametrize("name", ALL)
def test_missing_header_is_refused(name: str) -> None:
    spec, sign, _ = ALL[name]
    headers = sign(secret_of(name), BODY, NOW)
    for key in headers:
        rejects(spec, {k: v for k, v in headers.items() if k != key})


@pytest.mark.parametrize("name", ALL)
def test_rotated_secret_accepts_old_and_new(name: str) -> None:
    spec, sign, _ = ALL[name]
    rotated = with_secrets(spec, (secret_of(name), other_secret(name)))
    check(rotated, sign(secret_of(name), BODY, NOW))
    check(rotated, sign(other_secret(name), BODY, NOW))
    rejects(with_secrets(spec, (secret_of(name),)), sign(other_secret(name), BODY, NOW))


def test_github_published_example() -> None:
    # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
    spec = Verify("github", ("It's a Secret to Everybody",))
    sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    check(spec, {"X-Hub-Signature-256": sig}, body=b"Hello, World!")
    rejects(spec, {"X-Hub-Signature-256": sig}, body=b"Hello, World?")


def test_stripe_accepts_any_of_several_v1_signatures() -> None:
    spec = Verify("stripe", ("s1",))
    good = signing.stripe("s1", BODY, NOW)["Stripe-Signature"].split(",v1=")[1]
    check(spec, {"Stripe-Signature": f"t={NOW},v1={'0' * 64},v1={good}"})


def test_standard_webhooks_accepts_any_of_several_signatures() -> None:
    spec = Verify("standard-webhooks", (WHSEC,))
    headers = signing.standard(WHSEC, BODY, NOW)
    headers["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"]
    check(spec, headers)


def test_svix_accepts_any_of_several_space_separated_signatures() -> None:
    spec = Verify("svix", (WHSEC,))
    headers = signing.svix(WHSEC, BODY, NOW)
    old = signing.svix(WHSEC_OLD, BODY, NOW)["svix-signature"]
    headers["svix-signature"] = f"{old} v1,AAAA {headers['svix-signature']}"
    check(spec, headers)
    headers["svix-signature"] = f"{old} v1,AAAA"
    rejects(spec, headers)


def test_svix_signs_id_and_timestamp_too() -> None:
    spec = Verify("svix", (WHSEC,))
    headers = signing.svix(WHSEC, BODY, NOW, msg_id="msg_1")
    rejects(spec, {**headers, "svix-id": "msg_2"})
    rejects(spec, {**headers, "svix-timestamp": str(NOW + 1)})


def test_svix_headers_are_not_standard_webhooks_headers() -> None:
    # Same algorithm, different names: each scheme reads only its own headers.
    svix_headers = signing.svix(WHSEC, BODY, NOW)
    rejects(Verify("standard-webhooks", (WHSEC,)), svix_headers)
    rejects(Verify("svix", (WHSEC,)), signing.standard(WHSEC, BODY, NOW))


def test_malformed_signature_encoding_is_refused_not_crashed() -> None:
    rejects(Verify("shopify", ("s1",)), {"X-Shopify-Hmac-Sha256": "not base64!!"})
    rejects(Verify("github", ("s1",)), {"X-Hub-Signature-256": "sha256=zz"})
    rejects(Verify("stripe", ("s1",)), {"Stripe-Signature": "t=abc,v1=00"})
    rejects(Verify("basic", ("s1",), username="u"), {"Authorization": "Basic %%%"})


def test_basic_wrong_username_is_refused() -> None:
    rejects(Verify("basic", ("s1",), username="am"), signing.basic("eve", "s1"))


def test_none_accepts_anything() -> None:
    check(Verify("none"), {})


def test_per_source_tolerance_overrides_the_default() -> None:
    spec = Verify("stripe", ("s1",), tolerance=10)
    rejects(spec, signing.stripe("s1", BODY, NOW - 11))
    check(spec, signing.stripe("s1", BODY, NOW - 9))


def test_a_scheme_missing_from_the_registry_is_refused_not_crashed() -> None:
    # Config loading never builds one; a hand-made Verify must still fail closed with the generic 401.
    rejects(Verify("no-such-scheme", ("s1",)), signing.github("s1", BODY))


def test_calendly_vector_computed_per_its_documentation() -> None:
    # Calendly has no Python signing library, so this vector was computed independently of our code, per
    # developer.calendly.com "Webhook Signatures": HMAC-SHA256 of "<t>.<raw body>" keyed by the signing key,
    # hex, sent as t=<t>,v1=<hex>. (`openssl dgst -sha256 -hmac calendly-signing-key-0123` of that text.)
    key = "calendly-signing-key-0123"
    body = b'{"event":"invitee.created","payload":{"email":"ann@example.com"}}'
    header = "t=1700000000,v1=73b631ba0bd7771b085b8b312673c1d57a6513c46b71eae61d38ce7553e2d3f7"
    spec = Verify("calendly", (key,))
    verify(spec, body, Headers({"Calendly-Webhook-Signature": header}), now=1_700_000_060)
    assert signing.calendly(key, body, 1_700_000_000) == {"Calendly-Webhook-Signature": header}
    rejects(spec, {"Calendly-Webhook-Signature": header}, body=body, now=1_700_000_000 + 301)
    rejects(spec, {"Calendly-Webhook-Signature": header.replace("t=1700000000", "t=1700000001")},
            body=body, now=1_700_000_000)


def test_calendly_does_not_take_a_stripe_header() -> None:
    rejects(Verify("calendly", ("s1",)), signing.stripe("s1", BODY, NOW))


class _FixedClock(Clock):
    def now(self) -> float:
        return float(NOW)


def test_slack_sdk_agrees_with_us() -> None:
    # What Slack's own verifier accepts we accept, and what it refuses we refuse.
    verifier = SignatureVerifier("s1", clock=_FixedClock())
    good = signing.slack("s1", BODY, NOW)
    assert verifier.is_valid_request(BODY, good)
    check(Verify("slack", ("s1",)), good)
    bad = signing.slack("s1", BODY, NOW - 301)
    assert not verifier.is_valid_request(BODY, bad)
    rejects(Verify("slack", ("s1",)), bad)


def test_slack_signs_the_timestamp() -> None:
    headers = signing.slack("s1", BODY, NOW)
    rejects(Verify("slack", ("s1",)), {**headers, "X-Slack-Request-Timestamp": str(NOW + 1)})
    rejects(Verify("slack", ("s1",)), {**headers, "X-Slack-Signature": headers["X-Slack-Signature"][3:]})


def test_calcom_vector_computed_per_its_documentation() -> None:
    # Cal.com has no Python signing library, so this vector was computed independently of our code, per
    # Cal.com's webhook docs and its sender (calcom/cal.com packages/features/webhooks/lib/sendPayload.ts):
    # X-Cal-Signature-256 is the hex HMAC-SHA256 of the raw body keyed by the webhook secret.
    # (`openssl dgst -sha256 -hmac cal-webhook-secret` of the body.)
    body = b'{"triggerEvent":"BOOKING_CREATED","createdAt":"2026-01-05T09:00:00.000Z","payload":{"uid":"bk_1"}}'
    header = {"X-Cal-Signature-256": "fcbab19ba785c313f927572208ce66241a24966c39b9ff4f5d84bc71432d1e32"}
    check(Verify("calcom", ("cal-webhook-secret",)), header, body=body)
    assert signing.calcom("cal-webhook-secret", body) == header
    rejects(Verify("calcom", ("cal-webhook-secret",)), header, body=body.replace(b"bk_1", b"bk_2"))


def test_calcom_unsigned_delivery_is_refused() -> None:
    # A Cal.com webhook saved without a secret sends this placeholder instead of a signature.
    rejects(Verify("calcom", ("s1",)), {"X-Cal-Signature-256": "no-secret-provided"})


PAGERDUTY = Verify("hmac-sha256", ("new-key",), header="X-PagerDuty-Signature", prefix="v1=")


def test_pagerduty_style_rotation_accepts_either_signature() -> None:
    # PagerDuty's "Verifying Signatures" (PagerDuty/developer-docs, docs/webhooks/04-Signatures.md): during
    # rotation the header holds v1=<sig with one key>,v1=<sig with the other>; at least one matching is enough.
    both = signing.pagerduty(["old-key", "new-key"], BODY)
    assert both["X-PagerDuty-Signature"].count("v1=") == 2
    check(PAGERDUTY, both)
    check(PAGERDUTY, signing.pagerduty(["new-key", "old-key"], BODY))
    check(with_secrets(PAGERDUTY, ("old-key",)), both)
    rejects(PAGERDUTY, signing.pagerduty(["old-key", "other-key"], BODY))


def test_pagerduty_style_skips_other_versions_and_refuses_when_none_is_v1() -> None:
    good = signing.pagerduty(["new-key"], BODY)["X-PagerDuty-Signature"]
    check(PAGERDUTY, {"X-PagerDuty-Signature": f"v2={'ab' * 32}, {good}"})
    rejects(PAGERDUTY, {"X-PagerDuty-Signature": good.replace("v1=", "v2=")})
    rejects(PAGERDUTY, {"X-PagerDuty-Signature": "v1=,v1="})
    rejects(PAGERDUTY, {"X-PagerDuty-Signature": f"v1=zz,{good}"})  # an undecodable signature is refused


def test_several_signatures_without_a_prefix() -> None:
    spec = Verify("hmac-sha256", ("s1",), header="X-Sig", encoding="base64")
    check(spec, {"X-Sig": f"{signing.hmac_b64('old', BODY)},{signing.hmac_b64('s1', BODY)}"})
    rejects(spec, {"X-Sig": f"{signing.hmac_b64('old', BODY)},{signing.hmac_b64('older', BODY)}"})


def test_stripe_library_agrees_with_us() -> None:
    # Stripe's verify_header checks the signature (tolerance=None: the replay window is ours, against NOW).
    spec = Verify("stripe", ("whsec_stripe",))
    for headers in (signing.stripe_sdk("whsec_stripe", BODY, NOW), signing.stripe("whsec_stripe", BODY, NOW)):
        assert stripe.WebhookSignature.verify_header(BODY, headers["Stripe-Signature"], "whsec_stripe", None)
        check(spec, headers)
    wrong = signing.stripe_sdk("whsec_other", BODY, NOW)["Stripe-Signature"]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(BODY, wrong, "whsec_stripe", None)
    rejects(spec, {"Stripe-Signature": wrong})


def test_stripe_event_built_by_the_library_from_a_request_we_accept() -> None:
    body = b'{"id": "evt_1", "object": "event", "type": "invoice.paid", "data": {"object": {}}}'
    headers = signing.stripe_sdk("whsec_stripe", body, NOW)
    check(Verify("stripe", ("whsec_stripe",)), headers, body=body)
    # tolerance=0 turns off the library's real-clock check; the replay window is ours, tested against NOW.
    event = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], "whsec_stripe", tolerance=0)
    assert (event.id, event.type) == ("evt_1", "invoice.paid")  # what the stripe scheme's defaults read


def test_stripe_items_of_other_schemes_are_ignored() -> None:
    # Stripe's library reads only its EXPECTED_SCHEME (v1) items from the header; so do we.
    headers = signing.stripe_sdk("s1", BODY, NOW)
    check(Verify("stripe", ("s1",)), {"Stripe-Signature": headers["Stripe-Signature"] + f",v0={'0' * 64}"})


# An inbound-SMS webhook laid out as Twilio posts it: the field names are those of Twilio's documented
# Messaging webhook request parameters; the values are placeholders and test numbers, not a captured request.
TWILIO_FORM = (b"ToCountry=AU&ToState=&SmsMessageSid=SM1f0e8ae6ade43cb3c0ce4525424e404f&NumMedia=0&ToCity=&"
               b"FromZip=&SmsSid=SM1f0e8ae6ade43cb3c0ce4525424e404f&FromState=&SmsStatus=received&FromCity=&"
               b"Body=Running+late%2C+10+min&FromCountry=AU&To=%2B61491570006&ToZip=&NumSegments=1&"
               b"MessageSid=SM1f0e8ae6ade43cb3c0ce4525424e404f&AccountSid=ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX&"
               b"From=%2B61491570156&ApiVersion=2010-04-01")


def test_twilio_library_agrees_with_us_on_a_form_body() -> None:
    from urllib.parse import parse_qsl

    from twilio.request_validator import RequestValidator

    spec = Verify("twilio", ("auth-token",), url=TWILIO_URL)
    headers = signing.twilio("auth-token", TWILIO_URL, TWILIO_FORM)
    params = dict(parse_qsl(TWILIO_FORM.decode(), keep_blank_values=True))
    assert RequestValidator("auth-token").validate(TWILIO_URL, params, headers["X-Twilio-Signature"])
    check(spec, headers, body=TWILIO_FORM)
    # Field order does not matter to Twilio's signature (parameters are sorted); their values do.
    reordered = b"&".join(reversed(TWILIO_FORM.split(b"&")))
    check(spec, headers, body=reordered)
    rejects(spec, headers, body=TWILIO_FORM.replace(b"10+min", b"20+min"))
    # The URL is signed: the same request configured under another URL fails.
    rejects(Verify("twilio", ("auth-token",), url=TWILIO_URL.replace("account=7", "account=8")), headers,
            body=TWILIO_FORM)


def test_twilio_url_with_or_without_the_default_port() -> None:
    # Twilio's validator accepts either form, because Twilio's own signing has varied; so do we.
    with_port = TWILIO_URL.replace("hooks.example.com", "hooks.example.com:443")
    check(Verify("twilio", ("t",), url=TWILIO_URL), signing.twilio("t", with_port, TWILIO_FORM), body=TWILIO_FORM)
    check(Verify("twilio", ("t",), url=with_port), signing.twilio("t", TWILIO_URL, TWILIO_FORM), body=TWILIO_FORM)


def test_square_library_accepts_what_we_accept() -> None:
    from square.utils.webhooks_helper import verify_signature

    body = b'{"merchant_id":"6SSW7HV8K2ST5","type":"payment.created","event_id":"13b867cf-db3d-4b1c-90b6-2f32a9d78124"}'
    headers = signing.square("signature-key", SQUARE_URL, body)
    assert verify_signature(request_body=body.decode(), signature_header=headers["x-square-hmacsha256-signature"],
                            signature_key="signature-key", notification_url=SQUARE_URL)
    check(Verify("square", ("signature-key",), url=SQUARE_URL), headers, body=body)
    other = signing.square("signature-key", SQUARE_URL + "/other", body)
    assert not verify_signature(request_body=body.decode(), signature_header=other["x-square-hmacsha256-signature"],
                                signature_key="signature-key", notification_url=SQUARE_URL)
    rejects(Verify("square", ("signature-key",), url=SQUARE_URL), other, body=body)


def test_typeform_wants_base64_not_hex() -> None:
    hexed = {"Typeform-Signature": "sha256=" + signing.hmac_hex("s1", BODY)}
    rejects(Verify("typeform", ("s1",)), hexed)
    rejects(Verify("typeform", ("s1",)), {"Typeform-Signature": signing.hmac_b64("s1", BODY)})  # no sha256=


def test_slack_published_example() -> None:
    # docs.slack.dev "Verifying requests from Slack": the slash-command request, secret and signature it walks
    # through (the timestamp is five seconds old here, inside the window).
    spec = Verify("slack", ("8f742231b10e8888abcd99yyyzzz85a5",))
    body = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
            b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
            b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
            b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    headers = {"X-Slack-Request-Timestamp": "1531420618",
               "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"}
    check(spec, headers, body=body, now=1531420618 + 5)
    rejects(spec, headers, body=body.replace(b"foobar", b"foobaz"), now=1531420618 + 5)
    rejects(spec, headers, body=body, now=1531420618 + 3600)  # the same request an hour later: a replay


def test_twilio_published_example() -> None:
    # twilio.com/docs/usage/security "Validating signatures from Twilio": auth token 12345, this URL and these
    # POST parameters give 0/KCTR6DLpKmkAf8muzZqo1nDgQ=.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    body = b"CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212"
    headers = {"X-Twilio-Signature": "0/KCTR6DLpKmkAf8muzZqo1nDgQ="}
    check(Verify("twilio", ("12345",), url=url), headers, body=body)
    rejects(Verify("twilio", ("12345",), url=url), headers, body=body.replace(b"Digits=1234", b"Digits=1235"))
    rejects(Verify("twilio", ("12346",), url=url), headers, body=body)


def test_the_registry_says_which_schemes_sign_a_timestamp() -> None:
    # What `Scheme.signs_timestamp` claims is what the cases above exercise (hmac-sha256 signs one only when
    # configured with timestamp_header, so it does not claim it).
    from workers.core import schemes

    claimed = {name for name, scheme in schemes.REGISTRY.items() if scheme.signs_timestamp}
    exercised = {spec.scheme for spec, _, stamped in ALL.values() if stamped and spec.scheme != "hmac-sha256"}
    assert claimed == exercised
