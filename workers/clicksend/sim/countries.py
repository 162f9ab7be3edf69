"""The simulated country list (`GET /v3/countries`, which ClickSend serves without authentication), in the
shape of ClickSend's `Country` model: by default every region `phonenumbers` knows, with its English name
(`SimState.country_codes`, which a test may narrow).

Owns that route and the rows' shape; changes no state.
"""

from __future__ import annotations

import phonenumbers
from flask import Blueprint, Response
from phonenumbers.geocoder import country_name_for_number

from workers.clicksend.sim.wire import envelope, state

bp = Blueprint("countries", __name__)


def country_rows(codes: list[str]) -> list[dict[str, str]]:
    """`{"code", "value"}` for every region in `codes`, by code."""
    rows = []
    for code in sorted(codes):
        example = phonenumbers.example_number(code)
        name = country_name_for_number(example, "en") if example else ""
        rows.append({"code": code, "value": name or code})
    return rows


@bp.get("/v3/countries")
def countries() -> Response:
    """Every country code with its name."""
    return envelope(200, "SUCCESS", "List of Countries.", country_rows(state().country_codes))
