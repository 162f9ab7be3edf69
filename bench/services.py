"""The processes the benchmark runs on loopback: its own redis-server, the ClickSend simulator, and groups of
the Procfile's processes (web, two `worker`s, `callbacks`, `cron`), each group in its own working directory as
a separate machine would be; their CPU time from /proc; stopping every one of them.

Owns starting and stopping only; what each process does is the Procfile's business (its commands are read
from the Procfile, as tests/faults/cluster.py does).
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import sys
import time
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import requests

from workers.tools.localredis import free_port, start_redis
from workers.tools.supervisor import Child, Supervisor, web_command

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PROCFILE = {line.split(":", 1)[0]: line.split(":", 1)[1].strip()
            for line in (ROOT / "Procfile").read_text().splitlines() if ":" in line}
SOURCES = "sources:\n  bench: {verify: {scheme: none}, event_type: {value: order}}\n"
RULES = """rules:
  - name: bench-order
    source: bench
    event: order
    send: {channel: sms, to: "{{ payload.phone }}", body: "Order {{ payload.n }} is confirmed. Thanks!"}
"""
_TICKS = os.sysconf("SC_CLK_TCK")
# Receipts stay "sent" at the simulator until the receipts phase asks for them (no poll applies them earlier).
RECEIPTS_HELD = 10**7


def procfile_command(kind: str, redis_url: str, name: str | None = None) -> list[str]:
    """The Procfile's `kind` line as arguments, with REDIS_URL filled in and (workers) an RQ worker name."""
    args = [redis_url if a == "$REDIS_URL" else a for a in shlex.split(PROCFILE[kind])]
    args[0] = shutil.which(args[0], path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}") or args[0]
    if name:
        args[2:2] = ["--name", name]  # after `rq worker`
    return args


@dataclass
class Group:
    """One machine's worth of Hookline processes."""

    name: str
    workdir: Path
    web_url: str = ""
    children: list[Child] = field(default_factory=list)

    @property
    def worker_prefix(self) -> str:
        """How the RQ names of this group's workers begin."""
        return f"bench-{self.name}-"


@dataclass
class Services:
    """Everything one benchmark run started, to measure and to stop."""

    home: Path
    sup: Supervisor
    redis_url: str = ""
    redis_pid: int = 0
    sim_url: str = ""
    groups: list[Group] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, home: Path) -> Services:
        """Redis (no AOF: the benchmark measures Hookline, not the disk) and the simulator."""
        services = cls(home, Supervisor(home, say=lambda _: None))
        try:
            services._start_redis_and_simulator()
        except BaseException:
            services.stop()
            raise
        return services

    def _start_redis_and_simulator(self) -> None:
        proc, self.redis_url = start_redis(self.home / "redis", appendonly=False)
        self.sup.adopt("redis", proc)
        self.redis_pid = proc.pid
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT),
                    "REDIS_URL": self.redis_url, "HOOKLINE_LOG_LEVEL": "WARNING",
                    "HOOKLINE_API_TOKEN": secrets.token_urlsafe(16), "HOOKLINE_RECEIPT_TOKEN": secrets.token_urlsafe(16),
                    "CLICKSEND_USERNAME": "bench", "CLICKSEND_API_KEY": secrets.token_urlsafe(16)}
        port = free_port()
        self._start("simulator", self.home, [sys.executable, "-m", "workers.entry.cli", "simulator", "--port",
                                             str(port), "--latency", "0.02", "--receipt-delay", str(RECEIPTS_HELD)])
        self.sim_url = f"http://127.0.0.1:{port}"
        self.env["CLICKSEND_BASE_URL"] = self.sim_url
        _wait_answer(f"{self.sim_url}/healthz", "the simulator")

    def _start(self, name: str, cwd: Path, args: list[str]) -> Child:
        log = cwd / f"{name}.log"
        wrapped = ["/bin/sh", "-c", 'cd "$1" && log=$2 && shift 2 && exec "$@" >>"$log" 2>&1', "sh", str(cwd),
                   str(log), *args]
        return self.sup.start(name, wrapped, self.env)

    def start_group(self, name: str) -> Group:
        """A group in `home/name` with its own rules folder: web, two workers, the callbacks worker, cron."""
        group = Group(name, self.home / name)
        rules = group.workdir / "rules"
        rules.mkdir(parents=True)
        (rules / "sources.yaml").write_text(SOURCES)
        (rules / "bench.yaml").write_text(RULES)
        self.env["HOOKLINE_RULES_DIR"] = str(rules)  # each child copies the environment when it starts
        port = free_port()
        group.children.append(self._start(f"{name}-web", group.workdir, web_command(BIN, "127.0.0.1", port, 2)))
        group.web_url = f"http://127.0.0.1:{port}"
        for i, kind in enumerate(("worker", "worker", "callbacks")):
            rq_name = f"{group.worker_prefix}{kind}-{i}-{secrets.token_hex(3)}"
            group.children.append(self._start(f"{name}-{kind}-{i}", group.workdir,
                                              procfile_command(kind, self.redis_url, rq_name)))
        group.children.append(self._start(f"{name}-cron", group.workdir, procfile_command("cron", self.redis_url)))
        self.groups.append(group)
        _wait_answer(f"{group.web_url}/readyz", f"group {name}'s web process")
        return group

    def measured_pids(self) -> dict[str, list[int]]:
        """Every process of Hookline's that this run started, and Redis, by kind (redis, web, worker, callbacks,
        cron); not the simulator."""
        kinds: dict[str, list[int]] = {"redis": [self.redis_pid]}
        for child in (c for g in self.groups for c in g.children):
            kinds.setdefault(child.name.split("-")[1], []).append(child.proc.pid)
        return kinds

    def exited(self) -> list[str]:
        """Children that exited although nobody stopped them."""
        return [f"{c.name} exited with {c.proc.returncode}" for c in self.sup.children if c.proc.poll() is not None]

    def stop(self) -> None:
        """Stop everything, newest first (SIGTERM, then SIGKILL what lingers)."""
        self.sup.stop_all(grace=10)


def cpu_seconds(pids: Iterable[int]) -> float:
    """CPU seconds (user + system) used so far by `pids` and every process below them, those already ended
    and waited for included (/proc/<pid>/stat: utime, stime, cutime, cstime)."""
    stats = _all_stats()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0, list(pids), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo.extend(children.get(pid, []))
    return total / _TICKS


def _all_stats() -> dict[int, tuple[int, int]]:
    """(parent pid, CPU ticks with waited-for children) of every process."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            # After the command: state ppid ... utime(12th) stime cutime cstime.
            out[int(stat.parent.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    return out


def _wait_answer(url: str, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f} s")
