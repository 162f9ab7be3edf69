"""`hookline simulator` with credentials: only they pass, over real HTTP from a separate process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests
from click.testing import CliRunner

from workers.clicksend.client import ClickSendClient
from workers.entry.cli import main
from workers.errors import AuthenticationFailed
from workers.tools.localredis import free_port


def _wait_up(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the simulator exited"
        try:
            if requests.get(f"{url}/healthz", timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.1)  # still starting
    raise AssertionError("the simulator did not start")


def test_credentials_from_the_environment_lock_the_simulator() -> None:
    port = free_port()
    env = os.environ | {"HOOKLINE_SIMULATOR_USERNAME": "cli-user", "HOOKLINE_SIMULATOR_API_KEY": "cli-key"}
    proc = subprocess.Popen([sys.executable, "-m", "workers.entry.cli", "simulator", "--port", str(port),
                             "--maton-key", "cli-maton"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_up(url, proc)
        assert ClickSendClient(url, username="cli-user", api_key="cli-key").account()["username"] == "cli-user"
        assert ClickSendClient(url, bearer="cli-maton").account()["user_id"] == 123456
        for wrong in (ClickSendClient(url, username="cli-user", api_key="nope"), ClickSendClient(url, bearer="nope")):
            with pytest.raises(AuthenticationFailed) as info:
                wrong.account()
            assert (info.value.status, info.value.response_code) == (401, "UNAUTHORIZED")
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize(("args", "message"), [
    (["--username", "u"], "--username and --api-key go together"),
    (["--api-key", "k"], "--username and --api-key go together"),
    (["--maton-connection", "c"], "--maton-connection needs --maton-key"),
])
def test_half_credentials_are_a_usage_error(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["simulator", *args], env={"HOOKLINE_SIMULATOR_USERNAME": None,
                                                                 "HOOKLINE_SIMULATOR_API_KEY": None})
    assert result.exit_code == 2
    assert message in result.output
