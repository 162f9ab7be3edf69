"""Whether loaded rules can work on this ClickSend account: voice `lang`/`voice` pairs against the account's
voice languages, rule and policy countries against ClickSend's countries (pure: the facts are passed in).

Owns those checks and their wording; fetching the facts is `workers.clicksend.facts`'s, placing a problem on
its line is the loader's (`locate`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from workers.core.policies import POLICIES_FILE, Policy
from workers.core.rules import Rule
from workers.errors import Problem

Locate = Callable[[str, str, tuple[str, ...]], int | None]  # (file, item, path in the item) → line


@dataclass(frozen=True)
class AccountFacts:
    """What the account offers: voice language code → the voices ("female", "male") it has, and the
    country codes ClickSend knows."""

    voices: Mapping[str, frozenset[str]]
    countries: frozenset[str]


def account_problems(rules: Iterable[Rule], policies: Mapping[str, Policy], facts: AccountFacts,
                     locate: Locate) -> list[Problem]:
    """Every rule and policy setting the account cannot honour, as `file:line: item: field: problem`."""
    problems = []
    for rule in rules:
        send = rule.send
        if send is None:
            continue
        if send.channel == "voice":
            problems.extend(_voice(rule, facts, locate))
        if send.country and send.country not in facts.countries:
            problems.append(Problem(rule.file, rule.name, "send.country", _no_country(send.country),
                                    locate(rule.file, rule.name, ("send", "country"))))
    for policy in policies.values():
        for i, country in enumerate(policy.allow_countries or ()):
            if country not in facts.countries:
                problems.append(Problem(POLICIES_FILE, policy.name, "allow_countries", _no_country(country),
                                        locate(POLICIES_FILE, policy.name, ("allow_countries", str(i)))))
    return problems


def _voice(rule: Rule, facts: AccountFacts, locate: Locate) -> list[Problem]:
    assert rule.send is not None
    lang, voice = rule.send.lang, rule.send.voice
    genders = facts.voices.get(lang)
    if genders is None:
        have = ", ".join(sorted(facts.voices)) or "none"
        return [Problem(rule.file, rule.name, "send.lang", f"{lang!r} is not a voice language of this ClickSend "
                        f"account (it has: {have})", locate(rule.file, rule.name, ("send", "lang")))]
    if voice not in genders:
        only = ", ".join(sorted(genders))
        return [Problem(rule.file, rule.name, "send.voice", f"{lang!r} has no {voice} voice on this ClickSend "
                        f"account (only {only})", locate(rule.file, rule.name, ("send", "voice")))]
    return []


def _no_country(code: str) -> str:
    return f"{code!r} is not a country ClickSend knows (GET /v3/countries)"
