"""Form-encoded webhooks (Twilio): accepted for sources whose provider posts forms, refused for JSON sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import signing
from tests.conftest import API_TOKEN
from tests.webhooks.test_signatures import TWILIO_FORM, TWILIO_URL
from workers.core.intake import decode_form
from workers.entry.runtime import Runtime
from workers.errors import BadForm
from workers.wiring.rulesdir import RulesDir

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def twilio_source(runtime: Runtime) -> None:
    """A Twilio source beside the shipped ones, signed for the URL Twilio was given."""
    path = Path(runtime.settings.rules_dir) / "sources.yaml"
    path.write_text(path.read_text() + f"\n  sms_in:\n    provider: twilio\n    secret: auth-token\n"
                    f"    url: \"{TWILIO_URL}\"\n")
    runtime.rules = RulesDir(Path(runtime.settings.rules_dir), runtime.settings)
    assert runtime.rules.reload(), runtime.rules.errors


def test_a_signed_twilio_form_is_accepted_and_stored_as_fields(client, twilio_source) -> None:  # noqa: ANN001
    headers = {"Content-Type": FORM, **signing.twilio("auth-token", TWILIO_URL, TWILIO_FORM)}
    first = client.post("/hooks/sms_in", data=TWILIO_FORM, headers=headers)
    assert first.status_code == 202, first.json
    again = client.post("/hooks/sms_in", data=TWILIO_FORM, headers=headers)
    assert again.status_code == 200 and again.json == {"event_id": first.json["event_id"], "duplicate": True}
    stored = client.get(f"/api/events/{first.json['event_id']}", headers={"Authorization": f"Bearer {API_TOKEN}"})
    payload = stored.json["payload"]
    assert payload["Body"] == "Running late, 10 min" and payload["To"] == "+61491570006"


def test_a_tampered_form_or_json_body_is_refused(client, twilio_source) -> None:  # noqa: ANN001
    headers = {"Content-Type": FORM, **signing.twilio("auth-token", TWILIO_URL, TWILIO_FORM)}
    tampered = TWILIO_FORM.replace(b"10+min", b"90+min")
    assert client.post("/hooks/sms_in", data=tampered, headers=headers).status_code == 401
    as_json = client.post("/hooks/sms_in", data=b"{}", headers=headers | {"Content-Type": "application/json"})
    assert as_json.status_code == 415 and "x-www-form-urlencoded" in as_json.json["message"]


def test_json_sources_still_refuse_forms(client) -> None:  # noqa: ANN001
    response = client.post("/hooks/shop", data=b"a=1", headers={"Content-Type": FORM})
    assert response.status_code == 415 and response.json["error"] == "unsupported_media_type"


def test_repeated_names_become_lists_and_bad_bytes_a_precise_error() -> None:
    assert decode_form(b"a=1&b=2&a=3&c=") == {"a": ["1", "3"], "b": "2", "c": ""}
    with pytest.raises(BadForm, match="not UTF-8"):
        decode_form(b"a=%ED%A0%80")  # an encoded lone surrogate
