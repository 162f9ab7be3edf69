"""Rules checked against the ClickSend account at load (the simulator over real HTTP): a voice the account
lacks, or a country ClickSend does not know, is reported as `file:line: rule: field: problem` and the rules
are not loaded; an unreachable ClickSend only warns."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Simulator, serve
from workers.clicksend.client import ClickSendClient
from workers.clicksend.facts import CachedFacts
from workers.clicksend.simstate import SimState
from workers.clicksend.simulator import create_simulator
from workers.entry.runtime import Runtime
from workers.errors import ProviderUnavailable
from workers.wiring.rulesdir import RulesDir
from workers.wiring.settings import Settings


def facts_from(sim: Simulator) -> CachedFacts:
    return CachedFacts(lambda: ClickSendClient(sim.url, username="user", api_key="key"))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_the_shipped_rules_pass(rules_dir: Path, settings: Settings, simulator: Simulator) -> None:
    rules = RulesDir(rules_dir, settings, account=facts_from(simulator))
    assert rules.reload(), rules.errors


def test_a_voice_the_language_lacks_is_reported_on_its_line(rules_dir: Path, settings: Settings,
                                                            simulator: Simulator) -> None:
    edit(rules_dir / "alerts.yaml", "      voice: female\n      lang: en-au", "      voice: male\n      lang: en-in")
    rules = RulesDir(rules_dir, settings, account=facts_from(simulator))
    assert not rules.reload()
    assert rules.errors == ["alerts.yaml:30: page-oncall-voice: send.voice: 'en-in' has no male voice on this "
                            "ClickSend account (only female)"]


def test_an_unknown_language_and_unknown_countries_are_all_reported(rules_dir: Path, settings: Settings,
                                                                    simulator: Simulator) -> None:
    edit(rules_dir / "alerts.yaml", "      lang: en-au", "      lang: xx-yy\n      country: QZ")
    edit(rules_dir / "policies.yaml", "default: {approval: auto}",
         "default: {approval: auto, allow_countries: [AU, NZ]}")
    simulator.state.country_codes.remove("NZ")  # as if ClickSend did not serve New Zealand
    rules = RulesDir(rules_dir, settings, account=facts_from(simulator))
    assert not rules.reload()
    assert rules.errors[0].startswith("alerts.yaml:31: page-oncall-voice: send.lang: 'xx-yy' is not a voice "
                                      "language of this ClickSend account (it has: cy-gb-wls, da-dk, ")
    assert rules.errors[1:] == [
        "alerts.yaml:32: page-oncall-voice: send.country: 'QZ' is not a country ClickSend knows (GET /v3/countries)",
        "policies.yaml:2: default: allow_countries: 'NZ' is not a country ClickSend knows (GET /v3/countries)"]


def test_a_bad_edit_keeps_the_last_good_rules(rules_dir: Path, settings: Settings, simulator: Simulator) -> None:
    rules = RulesDir(rules_dir, settings, account=facts_from(simulator))
    assert rules.reload()
    edit(rules_dir / "alerts.yaml", "lang: en-au", "lang: xx-yy")
    assert not rules.reload()
    voice = next(r for r in rules.current(0.0).rules if r.name == "page-oncall-voice")
    assert voice.send is not None and voice.send.lang == "en-au"


def test_an_unreachable_clicksend_loads_the_rules_unchecked(rules_dir: Path, settings: Settings,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    url, stop = serve(create_simulator(SimState()))
    stop()  # nothing listens there now: connections are refused
    edit(rules_dir / "alerts.yaml", "lang: en-au", "lang: xx-yy")
    rules = RulesDir(rules_dir, settings, account=facts_from(Simulator(url, SimState())))
    assert rules.reload()
    assert "rules not checked against the ClickSend account" in caplog.text


def test_facts_are_cached_until_they_are_stale(simulator: Simulator) -> None:
    url, stop = serve(create_simulator(SimState()))
    now = [0.0]
    facts = CachedFacts(lambda: ClickSendClient(url, username="u", api_key="k"), ttl=60, clock=lambda: now[0])
    first = facts()
    assert first.voices["en-in"] == frozenset({"female"}) and "AU" in first.countries
    stop()
    now[0] = 59.0
    assert facts() is first  # not asked again: the simulator is gone and this still answers
    now[0] = 60.0
    with pytest.raises(ProviderUnavailable):
        facts()


def test_the_runtime_checks_when_credentials_are_set(settings: Settings, rules_dir: Path,
                                                     simulator: Simulator) -> None:
    edit(rules_dir / "alerts.yaml", "lang: en-au", "lang: xx-yy")
    unchecked = Runtime.build(settings.with_(clicksend_base_url=simulator.url))  # no credentials: simulated
    assert unchecked.rules.loaded
    checked = Runtime.build(settings.with_(clicksend_base_url=simulator.url, clicksend_username="user",
                                           clicksend_api_key="key"))
    assert not checked.rules.loaded and "send.lang: 'xx-yy'" in checked.rules.errors[0]
