"""Reading the rules directory from disk, with hot reload that never replaces good config with bad.

Owns file access, YAML parsing and line numbers; validation itself is the pure core's (`core.sources`…). Also
the check without secrets (`check_config`): an unset `${VAR}` is a warning there, everything else an error.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2.sandbox import SandboxedEnvironment

from workers.core.accountcheck import AccountFacts, account_problems
from workers.core.callbacks import CompiledCallback, compile_callback
from workers.core.policies import DEFAULT_POLICY, POLICIES_FILE, Policy, parse_policies
from workers.core.rules import Rule, check_unique_names, parse_rule_file
from workers.core.sources import Source, nearest_line, parse_sources
from workers.core.storedtemplates import Snapshot, stored_template_problems
from workers.core.templates import environment
from workers.errors import ConfigError, HooklineError, Problem
from workers.wiring.settings import DEFAULT_REGION, DEFAULT_TIMEZONE, Settings

log = logging.getLogger("hookline.rules")

SOURCES_FILE = "sources.yaml"
# How often (seconds) a running process looks at file modification times.
CHECK_INTERVAL = 1.0


@dataclass(frozen=True)
class Config:
    """One consistent, validated snapshot of the rules directory."""

    sources: Mapping[str, Source] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    callbacks: Mapping[str, CompiledCallback] = field(default_factory=dict)
    policies: Mapping[str, Policy] = field(default_factory=lambda: {"default": DEFAULT_POLICY})

    def policy(self, name: str) -> Policy:
        """The named policy (rules naming a missing one are load errors, so this is for old messages)."""
        return self.policies.get(name) or self.policies["default"]
    fingerprint: tuple[tuple[str, float, int], ...] = ()


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. YAML 1.1 would read `on:` (callbacks) and `NO` (Norway) as booleans."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def load_yaml(path: Path) -> tuple[Any, dict[tuple[str, ...], int]]:
    """Parse a YAML file; return its data and the 1-based line of every mapping key path."""
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError([Problem(path.name, "", "", f"not valid YAML: {getattr(exc, 'problem', exc)}",
                                   line)]) from exc
    lines: dict[tuple[str, ...], int] = {}
    _index(node, (), lines)
    return data, lines


def _index(node: Any, path: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = path + (str(key.value),)
            out[sub] = key.start_mark.line + 1
            _index(value, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = path + (str(i),)
            out[sub] = item.start_mark.line + 1
            _index(item, sub, out)


def load_config(directory: str | Path, environ: Mapping[str, str], zone: str = DEFAULT_TIMEZONE,
                region: str = DEFAULT_REGION) -> Config:
    """Read and validate the whole rules directory; ConfigError lists every problem found."""
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError([Problem(str(root), "", "", "rules directory does not exist")])
    # Taken before reading, so an edit made while reading is seen by the next check.
    stamp = fingerprint(root)
    problems: list[Problem | str] = []
    sources: dict[str, Source] = {}
    path = root / SOURCES_FILE
    if not path.exists():
        problems.append(Problem(SOURCES_FILE, "", "", "missing: no source may send events"))
    else:
        try:
            data, lines = load_yaml(path)
            sources = parse_sources(data, environ, SOURCES_FILE, lines)
        except ConfigError as exc:
            problems.extend(exc.problems)
    rules = _load_rules(root, zone, region, problems)
    callbacks = _compile_callbacks(sources, environment(zone, region), problems)
    policies = _load_policies(root, problems)
    for rule in rules:
        if rule.policy not in policies:
            problems.append(Problem(rule.file, rule.name, "policy", f"no policy named {rule.policy!r} in "
                                    f"{POLICIES_FILE} (have: {', '.join(sorted(policies))})"))
    if problems:
        raise ConfigError(problems)
    for name, source in sources.items():
        if source.verify.scheme == "none":
            log.warning("source %s accepts unsigned events (verify: none)", name)
    return Config(sources=sources, rules=tuple(rules), callbacks=callbacks, policies=policies, fingerprint=stamp)


def _load_policies(root: Path, problems: list[Problem | str]) -> dict[str, Policy]:
    path = root / POLICIES_FILE
    if not path.exists():
        return {"default": DEFAULT_POLICY}
    try:
        data, lines = load_yaml(path)
        return parse_policies(data, POLICIES_FILE, lines)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return {"default": DEFAULT_POLICY}


def _compile_callbacks(sources: Mapping[str, Source], env: SandboxedEnvironment,
                       problems: list[Problem | str]) -> dict[str, CompiledCallback]:
    out = {}
    for name, source in sources.items():
        if source.callback is None:
            continue
        try:
            out[name] = compile_callback(env, source.callback)
        except jinja2.TemplateSyntaxError as exc:
            problems.append(Problem(SOURCES_FILE, name, "callback", f"template syntax error: {exc.message}"))
    return out


def _load_rules(root: Path, zone: str, region: str, problems: list[Problem | str]) -> list[Rule]:
    """Every rule file (each *.yaml but sources and policies), templates compiled; problems appended."""
    env = environment(zone, region)

    def read_template(name: str) -> str:
        path = (root / name).resolve()
        if root.resolve() not in path.parents:
            raise ValueError(f"{name} is outside the rules directory")
        return path.read_text(encoding="utf-8")

    rules: list[Rule] = []
    for path in sorted([*root.glob("*.yaml"), *root.glob("*.yml")]):
        if path.name in (SOURCES_FILE, POLICIES_FILE):
            continue
        try:
            data, lines = load_yaml(path)
            rules.extend(parse_rule_file(data, path.name, env, read_template, lines))
        except ConfigError as exc:
            problems.extend(exc.problems)
    problems.extend(check_unique_names(rules))
    return rules


def fingerprint(root: Path) -> tuple[tuple[str, float, int], ...]:
    """Names, modification times and sizes of every config file: changes when any file does."""
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in (".yaml", ".yml", ".j2", ".txt", ".json"):
            st = path.stat()
            out.append((str(path.relative_to(root)), st.st_mtime, st.st_size))
    return tuple(out)


class PlaceholderEnviron(Mapping[str, str]):
    """The environment, with a stand-in for every secret that is not set: for a dry run (which verifies no
    signature) and a check without the production secrets."""

    PLACEHOLDER = "whsec_ZHJ5LXJ1bi1wbGFjZWhvbGRlcg=="  # valid for every scheme, including standard-webhooks

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ

    def __getitem__(self, name: str) -> str:
        return self.environ.get(name, self.PLACEHOLDER)

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self.environ)

    def __len__(self) -> int:
        return len(self.environ)


# core.sources's wording for a `${VAR}` the environment does not set.
_UNSET = re.compile(r"environment variable \w+ is not set")


@dataclass(frozen=True)
class Checked:
    """What a check of the rules directory found: errors, and the `${VAR}`s left unset (warnings)."""

    config: Config | None  # None when there are errors
    errors: tuple[Problem | str, ...] = ()
    unset: tuple[Problem, ...] = ()


def names_stored(config: Config) -> bool:
    """Whether a rule names a stored template (`template: clicksend:…`)."""
    return any(rule.send is not None and rule.send.stored is not None for rule in config.rules)


def check_against_account(directory: Path, config: Config, facts: AccountFacts,
                          stored: Snapshot | None) -> list[Problem]:
    """What the account cannot honour in `config`, read from `directory`: voices, countries, and (with `stored`,
    its templates) the stored templates the rules name; each problem on its line."""
    locate = partial(_locate, directory)
    problems = account_problems(config.rules, config.policies, facts, locate)
    if stored is not None:
        problems.extend(stored_template_problems(config.rules, stored, locate))
    return problems


def _locate(directory: Path, filename: str, item: str, path: tuple[str, ...]) -> int | None:
    """The line of `path` inside rule or policy `item` of `filename` (its nearest ancestor's)."""
    try:
        data, lines = load_yaml(directory / filename)
    except (ConfigError, OSError):
        return None
    if filename == POLICIES_FILE:
        return nearest_line(lines, ("policies", item, *path))
    rules = data.get("rules") if isinstance(data, dict) else None
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        if isinstance(rule, dict) and rule.get("name") == item:
            return nearest_line(lines, ("rules", str(i), *path))
    return None


def check_config(directory: str | Path, environ: Mapping[str, str], zone: str = DEFAULT_TIMEZONE,
                 region: str = DEFAULT_REGION) -> Checked:
    """Validate the directory as `load_config` does, but report each unset `${VAR}` apart from the errors:
    everything else is validated as if it were set (a stand-in value), so a rules repository's CI, which has
    no production secrets, still finds every real problem."""
    try:
        return Checked(load_config(directory, environ, zone, region))
    except ConfigError as exc:
        unset = tuple(p for p in exc.problems if isinstance(p, Problem) and _UNSET.fullmatch(p.message))
        if not unset:
            return Checked(None, tuple(exc.problems))
    # A field whose secret is a stand-in is not judged by that value: its real one is unknown here.
    stand_ins = {(p.file, p.item, p.field) for p in unset}
    try:
        return Checked(load_config(directory, PlaceholderEnviron(environ), zone, region), (), unset)
    except ConfigError as exc:
        errors = tuple(p for p in exc.problems
                       if not (isinstance(p, Problem) and (p.file, p.item, p.field) in stand_ins))
        return Checked(None, errors, unset)


class RulesDir:
    """The live configuration of one process: the last good snapshot, and the errors of a bad edit."""

    def __init__(self, directory: str | Path, settings: Settings, environ: Mapping[str, str] | None = None,
                 account: Callable[[], AccountFacts] | None = None, stored: Callable[[], Snapshot] | None = None):
        """`account`, when given (credentials are set), supplies the ClickSend account's facts: a rule the
        account cannot honour (a voice it lacks, a country ClickSend does not know) is then a load error; so
        is a stored template (`template: clicksend:…`) that `stored`, the account's templates, lacks."""
        self.directory = Path(directory)
        self.settings = settings
        self.environ = os.environ if environ is None else environ
        self.account = account
        self.stored = stored
        self.config: Config | None = None
        self.errors: list[str] = []
        self.reloaded_at: float | None = None  # when the snapshot in use was loaded (Unix time)
        self._checked = 0.0
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """True once a good configuration has been loaded."""
        return self.config is not None

    def reload(self) -> bool:
        """Load the directory now; on errors keep the previous snapshot. True when the new one took."""
        try:
            config = load_config(self.directory, self.environ, self.settings.timezone, self.settings.default_region)
            self._check_account(config)
        except ConfigError as exc:
            self.errors = [str(p) for p in exc.problems]
            for line in self.errors:
                log.error("rules not loaded: %s", line)
            return False
        with self._lock:
            replaced, fixed = self.config is not None, len(self.errors)
            self.config = config
            self.errors = []
            self.reloaded_at = time.time()
        if replaced or fixed:
            log.info("rules reloaded: %d sources, %d rules%s", len(config.sources), len(config.rules),
                     f"; the {fixed} problem(s) reported before are fixed" if fixed else "")
        return True

    def _check_account(self, config: Config) -> None:
        """Raise ConfigError for what the account cannot honour; an unreachable ClickSend only warns (the
        rules are loaded unchecked rather than not at all)."""
        if self.account is None:
            return
        try:
            facts = self.account()
            stored = self.stored() if self.stored is not None and names_stored(config) else None
        except HooklineError as exc:
            log.warning("rules not checked against the ClickSend account: %s", exc)
            return
        problems = check_against_account(self.directory, config, facts, stored)
        if problems:
            raise ConfigError(problems)

    def current(self, now: float | None = None) -> Config:
        """The snapshot to use now, after a cheap check (at most once a second) for edited files."""
        now = time.monotonic() if now is None else now
        if now - self._checked >= CHECK_INTERVAL:
            self._checked = now
            seen = fingerprint(self.directory) if self.directory.is_dir() else ()
            if (self.config is None or seen != self.config.fingerprint) and not self.reload() and self.config:
                # Keep the last good set, but remember the broken files so they are not re-read every second.
                self.config = replace(self.config, fingerprint=seen)
        if self.config is None:
            raise ConfigError(self.errors or ["rules not loaded"])
        return self.config
