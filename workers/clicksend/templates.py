"""The account's stored SMS templates as rules use them: every page of `GET /v3/sms/templates`, read into
`core.storedtemplates.StoredTemplate` values.

Owns that fetch and the reading of its rows; the operator's template commands are `entry/clicksend_cli.py`'s,
caching is `flow/storedtemplates.py`'s and rendering the core's.
"""

from __future__ import annotations

from functools import partial

from workers.clicksend.client import ClickSendClient, iter_pages
from workers.core.coerce import to_int
from workers.core.storedtemplates import StoredTemplate

TEMPLATES_PATH = "/v3/sms/templates"


def fetch_templates(client: ClickSendClient) -> tuple[StoredTemplate, ...]:
    """Every stored template on the account (raises the client's errors)."""
    out = []
    for page in iter_pages(partial(client.page, TEMPLATES_PATH)):
        for row in page.items:
            template_id = to_int(row.get("template_id"))
            if template_id is not None:  # a row without an id could not be named by a rule
                out.append(StoredTemplate(template_id, str(row.get("template_name") or ""), str(row.get("body") or "")))
    return tuple(out)
