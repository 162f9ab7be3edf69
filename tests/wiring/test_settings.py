"""Settings come from the environment only when asked, and every problem is reported at once."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from workers.errors import ConfigError
from workers.wiring.settings import DEFAULT_REGION, Settings, beside_up, read_env_file, write_env_file


def test_defaults_with_only_redis_url() -> None:
    s = Settings.from_env({"REDIS_URL": "redis://localhost:6379/0"})
    assert s.rules_dir == "rules"
    assert s.dedupe_window == 86400
    assert s.max_body == 1024 * 1024
    assert s.provider_mode == "simulated"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({
            "HOOKLINE_MAX_BODY": "-1",
            "HOOKLINE_DEDUPE_WINDOW": "soon",
            "HOOKLINE_TIMEZONE": "Mars/Base",
            "CLICKSEND_USERNAME": "me",
        })
    text = str(info.value)
    for expected in ("REDIS_URL", "HOOKLINE_MAX_BODY", "HOOKLINE_DEDUPE_WINDOW", "HOOKLINE_TIMEZONE",
                     "CLICKSEND_USERNAME, CLICKSEND_API_KEY"):
        assert expected in text
    assert len(info.value.problems) == 5


def test_the_partition_count_is_16_unless_set_and_must_be_one_to_256() -> None:
    url = {"REDIS_URL": "redis://localhost:6379/0"}
    assert Settings.from_env(url).partitions == 16
    assert Settings.from_env(url | {"HOOKLINE_PARTITIONS": "256"}).partitions == 256
    for bad in ("0", "257", "many"):
        with pytest.raises(ConfigError) as info:
            Settings.from_env(url | {"HOOKLINE_PARTITIONS": bad})
        [problem] = info.value.problems
        assert str(problem).startswith("HOOKLINE_PARTITIONS: ")


def test_the_waits_around_clicksend_default_to_thirty_seconds_and_may_be_shortened() -> None:
    default = Settings.from_env({"REDIS_URL": "redis://localhost:6379/0"})
    assert (default.clicksend_timeout, default.reconcile_grace, default.poll_interval) == (30.0, 30.0, 30.0)
    short = Settings.from_env({"REDIS_URL": "redis://localhost:6379/0", "HOOKLINE_CLICKSEND_TIMEOUT": "2s",
                               "HOOKLINE_RECONCILE_GRACE": "3", "HOOKLINE_POLL_INTERVAL": "1m"})
    assert (short.clicksend_timeout, short.reconcile_grace, short.poll_interval) == (2.0, 3.0, 60.0)
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"REDIS_URL": "redis://localhost:6379/0", "HOOKLINE_CLICKSEND_TIMEOUT": "2m",
                           "HOOKLINE_RECONCILE_GRACE": "0s", "HOOKLINE_POLL_INTERVAL": "often"})
    assert [p.split(":")[0] for p in info.value.problems] == [
        "HOOKLINE_CLICKSEND_TIMEOUT", "HOOKLINE_RECONCILE_GRACE", "HOOKLINE_POLL_INTERVAL"]
    assert "at most 60s" in info.value.problems[0]


def test_log_format_is_plain_unless_json_is_asked_for() -> None:
    redis_only = {"REDIS_URL": "redis://localhost:6379/0"}
    assert Settings.from_env(redis_only).log_format == "plain"
    assert Settings.from_env(redis_only | {"HOOKLINE_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigError, match="HOOKLINE_LOG_FORMAT: must be plain or json"):
        Settings.from_env(redis_only | {"HOOKLINE_LOG_FORMAT": "xml"})


def test_provider_modes_and_base_urls() -> None:
    direct = Settings.from_env({"REDIS_URL": "redis://x", "CLICKSEND_USERNAME": "u", "CLICKSEND_API_KEY": "k"})
    assert (direct.provider_mode, direct.provider_base_url) == ("direct", "https://rest.clicksend.com")
    maton = Settings.from_env({"REDIS_URL": "redis://x", "MATON_API_KEY": "m", "MATON_CONNECTION": "c1"})
    assert (maton.provider_mode, maton.provider_base_url) == ("maton", "https://api.maton.ai/clicksend")
    sim = Settings.from_env({"REDIS_URL": "redis://x", "CLICKSEND_BASE_URL": "http://127.0.0.1:9/"})
    assert sim.provider_base_url == "http://127.0.0.1:9"


def test_event_ttl_is_never_shorter_than_the_dedupe_window() -> None:
    s = Settings.from_env({"REDIS_URL": "redis://x", "HOOKLINE_DEDUPE_WINDOW": "48h", "HOOKLINE_EVENT_TTL": "1h"})
    assert s.event_ttl == 48 * 3600


def test_redis_url_may_be_left_out_for_commands_that_need_no_redis() -> None:
    s = Settings.from_env({"HOOKLINE_TIMEZONE": "Australia/Sydney"}, require_redis=False)
    assert (s.redis_url, s.timezone, s.default_region) == ("", "Australia/Sydney", DEFAULT_REGION)
    with pytest.raises(ConfigError, match="REDIS_URL: must start with"):
        Settings.from_env({"REDIS_URL": "http://127.0.0.1:6379"}, require_redis=False)


def _environment_reads(path: Path) -> Iterator[tuple[int, str]]:
    """(line, variable) for every `x.get("HOOKLINE_…")`, `getenv(…)` or `x["HOOKLINE_…"]` in `path`."""
    for node in ast.walk(ast.parse(path.read_text())):
        key = None
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            key = node.args[0].value if name in ("get", "getenv", "pop", "setdefault") else None
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
        if isinstance(key, str) and OUR_VARIABLES.match(key):
            yield node.lineno, key


OUR_VARIABLES = re.compile(r"(HOOKLINE_\w+|REDIS_URL|CLICKSEND_\w+|MATON_\w+)")
# `hookline up` prepares the environment its children read (it starts Redis and sets REDIS_URL, say).
ALLOWED = {"workers/wiring/settings.py", "workers/tools/supervisor.py"}


def test_only_settings_reads_hooklines_environment_variables() -> None:
    reads = [f"{path.relative_to(ROOT)}:{line}: {name}"
             for package in ("workers", "webhooks") for path in sorted((ROOT / package).rglob("*.py"))
             if str(path.relative_to(ROOT)) not in ALLOWED for line, name in _environment_reads(path)]
    assert reads == [], "read settings through workers.wiring.settings.Settings"


def test_commands_beside_up_read_its_files_under_the_environment_and_the_flag(tmp_path: Path) -> None:
    write_env_file(tmp_path / "secrets.env", {"SHOP_WEBHOOK_SECRET": "generated", "HOOKLINE_API_TOKEN": "t1"})
    write_env_file(tmp_path / "up.env", {"REDIS_URL": "redis://127.0.0.1:1/0", "HOOKLINE_RULES_DIR": "/srv/rules"},
                   comment="written by hookline up")
    assert (tmp_path / "up.env").stat().st_mode & 0o777 == 0o600
    assert read_env_file(tmp_path / "up.env") == {"REDIS_URL": "redis://127.0.0.1:1/0",
                                                  "HOOKLINE_RULES_DIR": "/srv/rules"}  # the comment skipped
    from_files = beside_up(tmp_path, {})
    assert (from_files["REDIS_URL"], from_files["SHOP_WEBHOOK_SECRET"]) == ("redis://127.0.0.1:1/0", "generated")
    settings = Settings.from_env(from_files)
    assert (settings.rules_dir, settings.api_token) == ("/srv/rules", "t1")

    environ = {"REDIS_URL": "redis://127.0.0.1:2/0", "SHOP_WEBHOOK_SECRET": "real", "HOOKLINE_RULES_DIR": " "}
    over = beside_up(tmp_path, environ)
    assert (over["REDIS_URL"], over["SHOP_WEBHOOK_SECRET"]) == ("redis://127.0.0.1:2/0", "real")  # set: it wins
    assert over["HOOKLINE_RULES_DIR"] == "/srv/rules"  # set to nothing counts as not set
    assert beside_up(tmp_path, environ, redis_url="redis://127.0.0.1:3/0")["REDIS_URL"] == "redis://127.0.0.1:3/0"
    assert beside_up(tmp_path / "nothing-here", {"A": "1"}) == {"A": "1"}
