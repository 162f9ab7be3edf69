"""A local ClickSend v3 stand-in (Flask): same endpoints, envelopes, statuses and pagination, plus faults.

Serves `hookline simulator`, `hookline up` without credentials, the tests and the benchmarks. The app is
built in `workers.clicksend.sim` (one blueprint per resource); admin API under `/_sim/`: faults, ledger,
inbound injection, reset. State lives in `simstate.SimState`. This module is the stable entry point.
"""

from __future__ import annotations

from flask import Flask

from workers.clicksend.sim.app import create_app
from workers.clicksend.sim.gate import Credentials
from workers.clicksend.simstate import SimState


def create_simulator(state: SimState | None = None, username: str | None = None, api_key: str | None = None,
                     bearer: str | None = None, connection: str | None = None) -> Flask:
    """The simulator app. With credentials given (basic `username`/`api_key`, Maton `bearer` and optional
    `connection`), only they are accepted and anything else gets ClickSend's 401; with none, any basic or
    bearer auth is accepted."""
    return create_app(state or SimState(), Credentials(username, api_key, bearer, connection))
