"""Reading the rules directory: good edits take effect, broken edits never replace the last good set."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, SECRETS
from workers.errors import ConfigError
from workers.wiring.rulesdir import RulesDir, load_config
from workers.wiring.settings import Settings


@pytest.fixture
def tmp_rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", target)
    return target


def rules_dir(path: Path) -> RulesDir:
    rd = RulesDir(path, Settings(redis_url="redis://unused"), SECRETS)
    assert rd.reload()
    return rd


def edit(path: Path, text: str) -> None:
    path.write_text(text)
    # Make sure the change is seen even on filesystems with coarse modification times.
    st = path.stat()
    os.utime(path, (st.st_atime, st.st_mtime + 2))


def test_shipped_rules_directory_loads() -> None:
    config = load_config(ROOT / "rules", SECRETS)
    assert set(config.sources) == {"shop", "payments", "alerts", "grafana", "bookings", "calendly"}


def test_good_edit_is_picked_up(tmp_rules: Path) -> None:
    rd = rules_dir(tmp_rules)
    edit(tmp_rules / "sources.yaml", "sources: {only: {verify: {scheme: bearer, secret: t}}}\n")
    assert set(rd.current(now=10_000).sources) == {"only"}
    assert rd.errors == []


def test_broken_edit_keeps_the_last_good_set_and_reports(tmp_rules: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hookline.rules")
    rd = rules_dir(tmp_rules)
    edit(tmp_rules / "sources.yaml", "sources: {shop: {verify: {scheme: nope}}}\n")
    assert set(rd.current(now=10_000).sources) == {"shop", "payments", "alerts", "grafana", "bookings", "calendly"}
    assert rd.errors and rd.errors[0].startswith("sources.yaml:1: shop: verify.scheme:")
    edit(tmp_rules / "sources.yaml", "sources: {fixed: {verify: {scheme: bearer, secret: t}}}\n")
    assert set(rd.current(now=20_000).sources) == {"fixed"}
    assert rd.errors == []
    reloaded = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rules reloaded")]
    [line] = reloaded  # the broken edit was reported, not reloaded; the fix says so
    assert line.startswith("rules reloaded: 1 sources, ")
    assert line.endswith("; the 1 problem(s) reported before are fixed")


def test_invalid_yaml_is_reported_with_its_line(tmp_rules: Path) -> None:
    edit(tmp_rules / "sources.yaml", "sources:\n  shop: {verify: [\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_rules, SECRETS)
    assert str(info.value.problems[0]).startswith("sources.yaml:")
    assert "not valid YAML" in str(info.value.problems[0])


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent", {})
