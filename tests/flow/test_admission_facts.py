"""The facts admission shows with a decision, as a person reads them: the local time at the recipient (its first
three zones), counts and money. Pure: no Redis."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from workers.core.decisions import Facts
from workers.flow.admission import describe

MONDAY_MIDNIGHT_UTC = datetime(2026, 1, 5, tzinfo=UTC).timestamp()


def test_describe_shows_local_time_in_the_first_three_zones_and_the_counts() -> None:
    facts = Facts(now=MONDAY_MIDNIGHT_UTC, zones=("Australia/Sydney", "Australia/Perth", "America/Los_Angeles",
                                                   "Europe/London"),
                  recent_times=(1.0, 2.0), spent_today=Decimal("1.50"), estimate=Decimal("0.0792"), fan_out=3)
    assert describe(facts) == {
        "local_time": ["Australia/Sydney Mon 11:00", "Australia/Perth Mon 08:00", "America/Los_Angeles Sun 16:00"],
        "recent_sends": 2, "spent_today": "1.50", "estimate": "0.0792", "fan_out": 3, "opted_out": False,
        "duplicate": False, "balance_low": False}


def test_describe_reads_each_moment_afresh() -> None:
    """The same zone at another moment shows that moment's time (the formatting is cached by zone and time)."""
    first = describe(Facts(now=MONDAY_MIDNIGHT_UTC, zones=("Europe/London",)))
    later = describe(Facts(now=MONDAY_MIDNIGHT_UTC + 90 * 60, zones=("Europe/London",)))
    assert (first["local_time"], later["local_time"]) == (["Europe/London Mon 00:00"], ["Europe/London Mon 01:30"])
    assert describe(Facts(now=MONDAY_MIDNIGHT_UTC))["local_time"] == []
