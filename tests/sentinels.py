"""A Sentinel-managed Redis for tests, from Debian's redis-server and redis-sentinel: replicas of a primary and
one sentinel watching it, each on a free loopback port with its files in a folder of its own, failing over
within seconds (short down-after and failover timeouts). Tests that need it skip when redis-sentinel is absent
(CI installs it: .ci/run)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.waiting import wait_for
from workers.tools.localredis import free_port, redis_server_binary

SERVICE = "hookline"
SENTINEL_BINARY = shutil.which("redis-sentinel") or "/usr/bin/redis-sentinel"


def need_sentinel() -> None:
    """Skip the calling test when redis-sentinel is not installed."""
    if not Path(SENTINEL_BINARY).exists():
        pytest.skip("redis-sentinel is not installed (apt-get install redis-sentinel; .ci/run does)")


@dataclass
class Sentinels:
    """The replicas and the sentinel of one primary (which the test starts and kills itself)."""

    home: Path
    primary_port: int
    replicas: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    sentinel_port: int = 0
    sentinel: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The Sentinel URL of this service, database 0."""
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{SERVICE}/0"

    def start_replica(self) -> int:
        """One more replica of the primary (AOF fsynced on every write, as the primary's); its port."""
        port = free_port()
        folder = self.home / f"replica-{port}"
        folder.mkdir(parents=True)
        self.replicas[port] = subprocess.Popen(
            [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder),
             "--replicaof", "127.0.0.1", str(self.primary_port), "--replica-announce-ip", "127.0.0.1",
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--logfile", "redis.log"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        client = redis.Redis(port=port, socket_connect_timeout=1)
        wait_for(lambda: _replica_in_sync(client), f"replica {port} to be in sync", timeout=30, interval=0.1)
        return port

    def start_sentinel(self) -> None:
        """One sentinel (quorum 1) watching the primary: it is found down after 1 s and failed over at once."""
        self.sentinel_port = free_port()
        folder = self.home / "sentinel"
        folder.mkdir(parents=True)
        conf = folder / "sentinel.conf"  # Sentinel rewrites its file with what it learns
        conf.write_text(f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {folder}\nlogfile sentinel.log\n"
                        "sentinel announce-ip 127.0.0.1\n"
                        f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 1\n"
                        f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                        f"sentinel failover-timeout {SERVICE} 5000\n"
                        f"sentinel parallel-syncs {SERVICE} 2\n")
        self.sentinel = subprocess.Popen([SENTINEL_BINARY, str(conf)], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
        wait_for(lambda: len(self.ask("SENTINEL", "REPLICAS", SERVICE)) == len(self.replicas),
                 "the sentinel to know every replica", timeout=30, interval=0.1)

    def ask(self, *command: str) -> list[object]:
        """A command to the sentinel; [] when it does not answer (yet)."""
        try:
            with redis.Redis(port=self.sentinel_port, socket_timeout=2, decode_responses=True) as client:
                return list(client.execute_command(*command))
        except redis.RedisError:
            return []

    def primary(self) -> int | None:
        """The port of the primary the sentinel names now."""
        address = self.ask("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(str(address[1])) if address else None

    def close(self) -> None:
        """Stop the sentinel and the replicas."""
        for proc in [p for p in [self.sentinel, *self.replicas.values()] if p is not None]:
            if proc.poll() is None:
                proc.terminate()
                with suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


def _replica_in_sync(client: redis.Redis) -> bool:
    try:
        info = client.info("replication")
    except redis.RedisError:
        return False
    return info.get("master_link_status") == "up"


@contextmanager
def sentinels(home: Path, primary_port: int, replicas: int = 2) -> Iterator[Sentinels]:
    """`replicas` replicas of the Redis on `primary_port` and a sentinel watching them; stopped at the end."""
    need_sentinel()
    found = Sentinels(home, primary_port)
    try:
        for _ in range(replicas):
            found.start_replica()
        found.start_sentinel()
        yield found
    finally:
        found.close()
