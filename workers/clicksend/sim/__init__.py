"""The ClickSend v3 simulator as a Flask app: one blueprint per ClickSend resource, wired by `app.create_app`.

Owns the simulator's HTTP surface only; what it remembers lives in `workers.clicksend.simstate`, and
`workers.clicksend.simulator.create_simulator` stays the entry point everyone else calls.
"""
