"""Stored ClickSend templates named by rules (`template: clicksend:<id or name>`): the reference, a snapshot of
the account's templates compiled for rendering, the rendering itself (ClickSend placeholders such as
`{first_name}` and Jinja2 expressions, in the same sandbox as every other template), and the load check of
the rules that name them.

Pure: the templates' rows are handed in; fetching them is
`workers.clicksend.templates`'s and caching them `workers.flow.storedtemplates`'s.

A placeholder is `{name}` where `name` is one of ClickSend's contact fields (`CONTACT_FIELDS`); its value is
the rendered `send.placeholders.<name>` of the rule. Any other `{word}` is an unknown placeholder. Both fail
the message (or, checked at load, the rules) with a reason, so a message never goes out with a `{first_name}`
left in it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from workers.core.contactfields import CONTACT_FIELDS
from workers.core.templates import compile_template, render
from workers.errors import Problem, RenderError

if TYPE_CHECKING:  # the rules name stored templates (`stored_ref`), so they import this module
    from workers.core.accountcheck import Locate
    from workers.core.rules import Rule

PREFIX = "clicksend:"
# Jinja's own tags are kept as they are; a `{word}` outside them is a ClickSend placeholder.
_TOKENS = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|\{([A-Za-z_][A-Za-z0-9_]*)\}", re.DOTALL)
_VALUES = "placeholders"  # the name the placeholders' values have in the rendering context


def stored_ref(template: str) -> str | None:
    """The id or name a rule's `template:` names after `clicksend:`; None for a template file."""
    return template[len(PREFIX):].strip() if template.startswith(PREFIX) else None


@dataclass(frozen=True)
class StoredTemplate:
    """One of the account's SMS templates as ClickSend keeps it."""

    id: int
    name: str
    body: str


@dataclass(frozen=True)
class Compiled:
    """A stored template ready to render: its Jinja2 form, the placeholders it uses, or why it cannot be used."""

    template: StoredTemplate
    jinja: jinja2.Template | None
    placeholders: frozenset[str]
    problem: str | None = None


def compile_stored(env: SandboxedEnvironment, template: StoredTemplate) -> Compiled:
    """Turn each `{name}` placeholder into a Jinja2 expression and compile the whole body in `env`. An unknown
    placeholder or a Jinja2 syntax error is kept as the `problem`, reported where the template is used."""
    used: set[str] = set()
    unknown: list[str] = []

    def convert(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)
        if name not in CONTACT_FIELDS:
            unknown.append(name)
            return match.group(0)
        used.add(name)
        return "{{ " + _VALUES + "." + name + " }}"

    source = _TOKENS.sub(convert, template.body)
    if unknown:
        names = ", ".join("{" + n + "}" for n in dict.fromkeys(unknown))
        return Compiled(template, None, frozenset(used), f"unknown placeholder {names} (ClickSend's placeholders "
                        f"are the contact fields: {', '.join(CONTACT_FIELDS)})")
    try:
        return Compiled(template, compile_template(env, source), frozenset(used))
    except jinja2.TemplateSyntaxError as exc:
        return Compiled(template, None, frozenset(used), f"template syntax error: {exc.message}")


@dataclass(frozen=True)
class Snapshot:
    """The account's stored templates as last fetched, compiled."""

    templates: tuple[Compiled, ...]

    def find(self, ref: str) -> Compiled:
        """The template `ref` names: an id (digits), else a name (case-insensitive). RenderError saying why
        when none or several match."""
        if ref.isdigit():
            found = [c for c in self.templates if c.template.id == int(ref)]
        else:
            found = [c for c in self.templates if c.template.name.casefold() == ref.casefold()]
        if not found:
            kind = "id" if ref.isdigit() else "name"
            raise RenderError(f"{PREFIX}{ref}: no stored template with that {kind} on the ClickSend account")
        if len(found) > 1:
            ids = ", ".join(str(c.template.id) for c in found)
            raise RenderError(f"{PREFIX}{ref}: several stored templates have that name (ids {ids}): name one by id")
        return found[0]


def compile_snapshot(env: SandboxedEnvironment, rows: Iterable[StoredTemplate]) -> Snapshot:
    """Every template of `rows` compiled in `env`."""
    return Snapshot(tuple(compile_stored(env, row) for row in rows))


NOT_FETCHED = "not fetched: no ClickSend account to fetch stored templates from (set ClickSend credentials, or " \
              "CLICKSEND_BASE_URL for the simulator)"


def render_stored(ref: str, placeholders: Mapping[str, jinja2.Template], snapshot: Snapshot | None,
                  context: dict[str, Any]) -> str:
    """The body of the stored template `ref` for one message: the placeholders it uses rendered from the rule's
    `send.placeholders`, then the whole body rendered in the sandbox. RenderError (`send.template: …`) for a
    template that is missing or unusable, or a placeholder the rule does not give."""
    what = "send.template"
    if snapshot is None:
        raise RenderError(f"{what}: {PREFIX}{ref}: {NOT_FETCHED}")
    try:
        compiled = snapshot.find(ref)
    except RenderError as exc:
        raise RenderError(f"{what}: {exc}") from None
    problem = _unusable(compiled, placeholders)
    if problem or compiled.jinja is None:
        raise RenderError(f"{what}: {PREFIX}{ref}: {problem}")
    values = {name: render(placeholders[name], context, f"send.placeholders.{name}")
              for name in sorted(compiled.placeholders)}
    return render(compiled.jinja, context | {_VALUES: values}, f"{what} ({PREFIX}{ref})")


def _unusable(compiled: Compiled, placeholders: Mapping[str, Any]) -> str | None:
    """Why `compiled` cannot render with the rule's `placeholders`, or None."""
    if compiled.problem:
        return compiled.problem
    missing = sorted(compiled.placeholders - set(placeholders))
    if not missing:
        return None
    names = ", ".join("{" + n + "}" for n in missing)
    return f"uses {names}, which the rule's send.placeholders does not give"


def stored_template_problems(rules: Iterable[Rule], snapshot: Snapshot, locate: Locate) -> list[Problem]:
    """Every rule whose stored template is missing, ambiguous or unusable on the account, or uses a placeholder
    the rule does not give, as `file:line: rule: send.template: problem`."""
    problems = []
    for rule in rules:
        send = rule.send
        if send is None or send.stored is None:
            continue
        try:
            compiled = snapshot.find(send.stored)
        except RenderError as exc:
            problem: str | None = str(exc)
        else:
            problem = _unusable(compiled, send.placeholders)
            problem = problem and f"{PREFIX}{send.stored}: {problem}"
        if problem:
            problems.append(Problem(rule.file, rule.name, "send.template", problem,
                                    locate(rule.file, rule.name, ("send", "template"))))
    return problems
