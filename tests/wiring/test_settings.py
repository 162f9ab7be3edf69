"""Settings come from the environment only when asked, and every problem is reported at once."""

from __future__ import annotations

import pytest

from workers.errors import ConfigError
from workers.wiring.settings import Settings


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
