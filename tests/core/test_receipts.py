"""Receipt meanings (fact sheet §6.3–6.4) and reply keywords."""

from __future__ import annotations

import pytest

from workers.core.receipts import judge, reply_keyword


@pytest.mark.parametrize(
    ("receipt", "outcome", "final"),
    [
        ({"status_code": 201}, "delivered", True),
        ({"status_code": "201"}, "delivered", True),
        ({"status_code": 200, "status_text": "Sent"}, "pending", False),
        ({"status_code": 301, "error_code": 8, "error_text": "Unknown subscriber"}, "undelivered", True),
        ({"status_code": "300", "error_code": "16"}, "undelivered", True),
        ({"status_code": 302}, "undelivered", True),
        ({"status_code": "Completed"}, "delivered", True),  # the legacy single-receipt example
        ({"status": "Undelivered"}, "undelivered", True),  # pushed receipts carry a text status
        ({"status_code": None}, "pending", False),
    ],
)
def test_judge(receipt: dict, outcome: str, final: bool) -> None:
    verdict = judge(receipt)
    assert (verdict.outcome, verdict.final) == (outcome, final)


def test_undelivered_reason_names_the_error() -> None:
    assert judge({"status_code": 301, "error_code": 8, "error_text": "Unknown subscriber"}).reason == (
        "301 (error 8): Unknown subscriber")
    assert "receipt expired" in judge({"status_code": 301, "error_code": 20}).reason


@pytest.mark.parametrize(
    ("body", "keyword"),
    [("STOP", "stop"), ("stop please", "stop"), ("Unsubscribe", "stop"), ("stopall", "stop"), ("cancel", "stop"),
     ("END.", "stop"), ("quit!", "stop"), ("START", "start"), ("unstop", "start"), ("Thanks, see you", None),
     ("please stop", None), ("", None), ("   ", None)],
)
def test_reply_keyword_is_the_first_word_case_insensitive(body: str, keyword: str | None) -> None:
    assert reply_keyword(body) == keyword
