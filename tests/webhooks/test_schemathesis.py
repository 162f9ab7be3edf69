"""schemathesis against the served OpenAPI document: the live app (werkzeug on a free 127.0.0.1 port, its own
Redis database) answers every generated request to every documented operation without a 5xx, in a status and
shape its document states. Bounded: a few dozen examples per operation, well under a minute in all.

The requests go to the base URL the document was loaded from (loopback) and nowhere else: the session's
loopback guard (tests/conftest.py) fails the test for any other address.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi import checks as openapi_checks

from tests.conftest import API_TOKEN, RECEIPT_TOKEN, serve
from tests.messages import message
from webhooks import create_app
from workers.entry.runtime import Runtime

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
# Examples per operation: most with the token (the operator API then does real work), a few without (every
# guarded operation must then refuse with its documented 401, never fail).
EXAMPLES = {"with-token": 15, "without-token": 5}


@pytest.fixture
def served(runtime: Runtime) -> Iterator[str]:
    """The app over loopback HTTP, ready (rules loaded, the account known so pushes are not 503), with one
    event and held message to find."""
    runtime.settings = runtime.settings.with_(receipt_token=RECEIPT_TOKEN)
    runtime.store.account.remember_account(user_id=123456)
    runtime.store.messages.create_messages([message(id="msg_fuzz", state="held", to="+61411111111")], time.time())
    url, stop = serve(create_app(runtime=runtime))
    assert urlsplit(url).hostname == "127.0.0.1"
    yield url
    stop()


CHECKS = [
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]


@pytest.mark.parametrize("token", list(EXAMPLES))
def test_generated_requests_get_no_5xx_and_documented_answers(served: str, token: str) -> None:
    headers = AUTH if token == "with-token" else {}
    schema = schemathesis.openapi.from_url(f"{served}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 18
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES[token], deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            response = case.call(base_url=served, headers=headers, timeout=30)
            assert urlsplit(response.request.url).netloc == urlsplit(served).netloc
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")
                return
            case.validate_response(response, checks=CHECKS)

        run()
    assert failures == []
