"""`hookline sources providers`: the catalog as a table and as JSON."""

from __future__ import annotations

import json

from click.testing import CliRunner

from workers.core import providers
from workers.entry.cli import main


def test_the_table_lists_every_provider_aligned() -> None:
    result = CliRunner().invoke(main, ["sources", "providers"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:2] == ["PROVIDER", "AUTHENTICATES"]
    assert [line.split()[0] for line in lines[1:]] == list(providers.names())
    # The columns line up: the secret column starts at the same place on every line.
    starts = {line.index(providers.CATALOG[line.split()[0]].secret_name) for line in lines[1:]}
    assert len(starts) == 1 and lines[0].index("SECRET") in starts
    calcom = next(line for line in lines if line.startswith("calcom "))
    assert "X-Cal-Signature-256" in calcom and "Settings > Developer > Webhooks" in calcom
    assert "BOOKING_RESCHEDULED" in calcom
    twilio = next(line for line in lines if line.startswith("twilio "))
    assert "needs url:" in twilio and "form bodies" in twilio and "Auth Token" in twilio
    assert "(defined by the sender)" in next(line for line in lines if line.startswith("svix "))


def test_json_has_what_the_table_shows_and_more() -> None:
    result = CliRunner().invoke(main, ["sources", "providers", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [row["name"] for row in rows] == list(providers.names())
    alertmanager = next(row for row in rows if row["name"] == "alertmanager")
    assert alertmanager["scheme"] == "bearer"
    assert alertmanager["event_types"] == ["firing", "resolved"]
    assert alertmanager["dedupe_window"] == 60
    assert "http_config.authorization.credentials" in alertmanager["secret"]
