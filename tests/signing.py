"""Helpers that sign requests the way each sender does (tests and benchmarks)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import standardwebhooks
from slack_sdk.signature import SignatureVerifier
from square.utils.webhooks_helper import verify_signature as square_verify
from stripe import WebhookSignature as StripeSignature  # not `import stripe`: stripe() below would shadow it
from svix.webhooks import Webhook as SvixWebhook  # not `import svix`: svix() below would shadow it
from twilio.request_validator import RequestValidator as TwilioValidator


def hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def hmac_b64(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def shopify(secret: str, body: bytes) -> dict[str, str]:
    return {"X-Shopify-Hmac-Sha256": hmac_b64(secret, body)}


def github(secret: str, body: bytes) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + hmac_hex(secret, body)}


def stripe(secret: str, body: bytes, ts: int) -> dict[str, str]:
    return {"Stripe-Signature": f"t={ts},v1={hmac_hex(secret, str(ts).encode() + b'.' + body)}"}


def stripe_sdk(secret: str, body: bytes, ts: int) -> dict[str, str]:
    """Signed with Stripe's own library (`stripe.WebhookSignature.generate_signature_header`)."""
    return {"Stripe-Signature": StripeSignature.generate_signature_header(body.decode(), secret, timestamp=ts)}


def standard(secret: str, body: bytes, ts: int, msg_id: str = "msg_1") -> dict[str, str]:
    """Signed with the standardwebhooks library itself."""
    sig = standardwebhooks.Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, tz=UTC), body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def svix(secret: str, body: bytes, ts: int, msg_id: str = "msg_1") -> dict[str, str]:
    """Signed with Svix's own library (`svix.webhooks.Webhook.sign`)."""
    sig = SvixWebhook(secret).sign(msg_id, datetime.fromtimestamp(ts, tz=UTC), body.decode())
    return {"svix-id": msg_id, "svix-timestamp": str(ts), "svix-signature": sig}


def calendly(key: str, body: bytes, ts: int) -> dict[str, str]:
    """Signed as Calendly's documentation says (Calendly publishes no signing library).

    `Calendly-Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the signing key>`.
    """
    return {"Calendly-Webhook-Signature": f"t={ts},v1={hmac_hex(key, f'{ts}.'.encode() + body)}"}


def slack(secret: str, body: bytes, ts: int) -> dict[str, str]:
    """Signed with Slack's own SDK (`slack_sdk.signature.SignatureVerifier.generate_signature`)."""
    sig = SignatureVerifier(secret).generate_signature(timestamp=str(ts), body=body)
    assert sig is not None
    return {"X-Slack-Signature": sig, "X-Slack-Request-Timestamp": str(ts)}


def calcom(secret: str, body: bytes) -> dict[str, str]:
    """Signed as Cal.com does (it publishes no signing library): `X-Cal-Signature-256: <hex HMAC-SHA256 of body>`."""
    return {"X-Cal-Signature-256": hmac_hex(secret, body)}


def pagerduty(secrets: list[str], body: bytes) -> dict[str, str]:
    """Signed as PagerDuty v3 webhooks are: one `v1=<hex HMAC-SHA256 of body>` per signing secret, comma-joined."""
    return {"X-PagerDuty-Signature": ",".join(f"v1={hmac_hex(secret, body)}" for secret in secrets)}


def gitlab(token: str) -> dict[str, str]:
    """As GitLab sends it: the webhook's secret token, verbatim, in `X-Gitlab-Token` (nothing is signed)."""
    return {"X-Gitlab-Token": token}


def typeform(secret: str, body: bytes) -> dict[str, str]:
    """Signed as Typeform's webhook docs say (it publishes no signing library): `sha256=<base64 HMAC of body>`."""
    return {"Typeform-Signature": "sha256=" + hmac_b64(secret, body)}


def woocommerce(secret: str, body: bytes) -> dict[str, str]:
    """Signed as WooCommerce's WC_Webhook::generate_signature does: base64 HMAC-SHA256 of the body."""
    return {"X-WC-Webhook-Signature": hmac_b64(secret, body)}


def square(key: str, url: str, body: bytes) -> dict[str, str]:
    """Signed as Square does: base64 HMAC-SHA256 of notification URL + body. (Square's SDK only verifies;
    tests check what this produces against `square.utils.webhooks_helper.verify_signature`.)"""
    return {"x-square-hmacsha256-signature": hmac_b64(key, url.encode() + body)}


def square_sdk(key: str, url: str, body: bytes) -> dict[str, str]:
    """Signed as `square` does, and only handed out once Square's own helper
    (`square.utils.webhooks_helper.verify_signature`) accepts the signature for this key, URL and body."""
    headers = square(key, url, body)
    signature = headers["x-square-hmacsha256-signature"]
    assert square_verify(request_body=body.decode(), signature_header=signature, signature_key=key,
                         notification_url=url), "Square's helper refuses what signing.square produced"
    return headers


def twilio(token: str, url: str, body: bytes) -> dict[str, str]:
    """Signed with Twilio's own library (`twilio.request_validator.RequestValidator.compute_signature`).

    The form body is handed over as a multi-dict, as a web framework would parse it.
    """
    params = _MultiDict(parse_qsl(body.decode(), keep_blank_values=True))
    return {"X-Twilio-Signature": TwilioValidator(token).compute_signature(url, params)}


class _MultiDict(dict[str, str]):
    """The `getall` the Twilio validator looks for (Flask's MultiDict has it), over repeated form fields."""

    def __init__(self, pairs: list[tuple[str, str]]):
        super().__init__(pairs)
        self.pairs = pairs

    def getall(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]
