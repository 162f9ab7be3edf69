"""The simulator's app factory: one Flask app, its SimState and credentials, the gate, every blueprint.

Owns the wiring only; each resource's behaviour lives in its own module.
"""

from __future__ import annotations

from flask import Flask

from workers.clicksend.sim import (
    account,
    contacts,
    control,
    countries,
    emails,
    history,
    imports,
    inbound,
    lists,
    maton,
    mms,
    receipts,
    sms,
    templates,
    voice,
)
from workers.clicksend.sim.gate import Credentials, install
from workers.clicksend.sim.wire import STATE_KEY
from workers.clicksend.simstate import SimState

BLUEPRINTS = (account.bp, sms.bp, mms.bp, voice.bp, receipts.bp, inbound.bp, history.bp, lists.bp,
              contacts.bp, imports.bp, countries.bp, templates.bp, emails.bp, maton.bp, control.bp)


def create_app(state: SimState, expected: Credentials) -> Flask:
    """A simulator app serving `state` to callers that present `expected`."""
    app = Flask("clicksend-simulator")
    app.extensions[STATE_KEY] = state
    if expected.connection:
        maton.seed(state, expected.connection)
    install(app, expected)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return app
