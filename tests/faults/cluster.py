"""The whole service as real processes on loopback, for the fault tests: redis-server (AOF, fsync always), the
ClickSend simulator (`hookline simulator`), the web command, RQ workers with the scheduler and `rq cron`, each
started as the Procfile and `hookline up` start them (`workers.tools.supervisor`), each logging to its own
file, and each killable with SIGKILL.

Owns starting, killing and restarting those processes for one test and describing their state when it fails
(log tails, the ledger against what was expected); what each process does is the Procfile's business.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from rq import Worker
from rq.job import Job

from tests.conftest import API_TOKEN, ROOT
from tests.waiting import wait_for
from workers.store import Store
from workers.store.connection import connect
from workers.store.events import ALL_PARTITIONS
from workers.store.keys import events_drain_key, events_pending_key
from workers.tools.localredis import free_port, start_redis
from workers.tools.supervisor import Child, Supervisor, cron_command, rq_connection_args, web_command

BIN = Path(sys.executable).parent
SOURCES = """sources:
  faults:
    verify: {scheme: none}
    event_type: {path: kind}
    event_id: {path: id}
"""
RULES = """rules:
  - name: notice
    source: faults
    event: notice
    send: {channel: sms, to: "{{ payload.phone }}", from: Hookline, body: "Notice {{ payload.n }}"}
  - name: reminder
    source: faults
    event: booking
    send: {channel: sms, to: "{{ payload.phone }}", from: Hookline, body: "Reminder {{ payload.n }}"}
    schedule: {at: "{{ payload.at }}"}
"""
# The Procfile's `worker` and `callbacks` processes (read from it, so the tests run what production runs).
_PROCFILE = {line.split(":", 1)[0]: line.split() for line in (ROOT / "Procfile").read_text().splitlines() if line}


def _after_worker_class(kind: str) -> tuple[str, ...]:
    """What the Procfile's `kind` line gives its `rq worker` after the worker class: how it dequeues, and from
    which queues."""
    args = _PROCFILE[kind]
    return tuple(args[args.index("workers.entry.worker.HooklineWorker") + 1:])


WORK_QUEUES = _after_worker_class("worker")
CALLBACK_QUEUES = _after_worker_class("callbacks")
POLICIES = "policies:\n  default: {approval: auto}\n"
_LOG_TAIL = 40


def phone(n: int) -> str:
    """A valid Australian mobile number, distinct for each `n` below ten million."""
    return f"+6141{n:07d}"


@dataclass
class Cluster:
    """One test's processes and the Redis they share; every address is on 127.0.0.1."""

    home: Path
    env: dict[str, str]
    sup: Supervisor
    redis_port: int
    redis_proc: subprocess.Popen[bytes] | None = None
    web_url: str = ""
    sim_url: str = ""
    workers: dict[str, Child] = field(default_factory=dict)
    rq_names: dict[str, str] = field(default_factory=dict)  # our name -> the name RQ knows the worker by
    notes: list[str] = field(default_factory=list)
    url_override: str = ""  # another URL for the same Redis (a Sentinel URL naming it as the primary)
    _worker_count: int = 0
    _http: requests.Session = field(default_factory=requests.Session)

    # --- starting and stopping -------------------------------------------------------------------------

    @property
    def redis_url(self) -> str:
        return self.url_override or f"redis://127.0.0.1:{self.redis_port}/0"

    def start_redis(self) -> None:
        """redis-server on this cluster's port and data folder, AOF fsynced on every write (`hookline up`'s)."""
        self.redis_proc, _ = start_redis(self.home / "redis", port=self.redis_port)

    def kill_redis(self) -> None:
        """SIGKILL redis-server: no shutdown, no final write."""
        assert self.redis_proc is not None
        self.redis_proc.kill()
        self.redis_proc.wait(10)
        self.note("redis-server killed")

    def start(self, name: str, args: list[str], extra_env: dict[str, str] | None = None) -> Child:
        """Start `args` through the supervisor in this cluster's working directory (`home`), its output appended
        to `<home>/<name>.log`."""
        log = self.home / f"{name}.log"
        wrapped = ["/bin/sh", "-c", 'cd "$1" && log=$2 && shift 2 && exec "$@" >>"$log" 2>&1', "sh",
                   str(self.home), str(log), *args]
        return self.sup.start(name, wrapped, self.env | (extra_env or {}))

    def start_simulator(self, *flags: str) -> None:
        """`hookline simulator` with fault `flags`, its credentials given to our processes as `hookline up` does."""
        port = free_port()
        user, key = f"faults-{secrets.token_hex(3)}", secrets.token_urlsafe(16)
        self.start("simulator", [sys.executable, "-m", "workers.entry.cli", "simulator", "--port", str(port),
                                 "--receipt-delay", "0.5", *flags],
                   {"HOOKLINE_SIMULATOR_USERNAME": user, "HOOKLINE_SIMULATOR_API_KEY": key})
        self.sim_url = f"http://127.0.0.1:{port}"
        self.env.update(CLICKSEND_BASE_URL=self.sim_url, CLICKSEND_USERNAME=user, CLICKSEND_API_KEY=key)
        wait_for(lambda: _answers(f"{self.sim_url}/healthz"), "the simulator to answer", timeout=30, interval=0.1)

    def start_web(self) -> None:
        """The Procfile's web command (gunicorn with `webhooks.serving`), two workers."""
        port = free_port()
        self.start("web", web_command(BIN, "127.0.0.1", port, workers=2))
        self.web_url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{self.web_url}/readyz"), "the web process to be ready", timeout=60, interval=0.1)

    def start_worker(self, queues: tuple[str, ...] = WORK_QUEUES, tag: str = "worker") -> str:
        """One more `rq worker --with-scheduler` on the Procfile's `worker` queues (or `queues`; either with the
        flags before them); its name."""
        self._worker_count += 1
        name = f"{tag}-{self._worker_count}"
        self.rq_names[name] = f"{name}-{secrets.token_hex(3)}"
        self.workers[name] = self.start(name, [
            str(BIN / "rq"), "worker", *rq_connection_args(self.redis_url), "--with-scheduler", "--worker-class",
            "workers.entry.worker.HooklineWorker", "--name", self.rq_names[name], *queues])
        return name

    def start_callback_worker(self) -> str:
        """The Procfile's `callbacks` worker: the callbacks queue alone."""
        return self.start_worker(CALLBACK_QUEUES, tag="callbacks")

    def start_cron(self) -> None:
        """`rq cron workers.entry.cron`, as the Procfile runs it."""
        self.start("cron", cron_command(BIN, self.redis_url))

    def start_service(self) -> None:
        """Everything the Procfile runs beside the simulator: web, two workers, the callbacks worker and cron."""
        self.start_web()
        self.start_worker()
        self.start_worker()
        self.start_callback_worker()
        self.start_cron()

    def kill_worker(self, name: str, why: str) -> None:
        """SIGKILL a worker and every process under it: its scheduler and the work horse running its job (RQ
        puts the horse in a process group of its own, so killing the worker's group alone would spare it)."""
        child = self.workers.pop(name)
        tree = [child.proc.pid, *descendants(child.proc.pid)]
        for pid in tree:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        child.proc.wait(10)
        self.note(f"SIGKILL {name}: {why}")

    def replace_exited_workers(self) -> list[str]:
        """Start a new worker for each that exited on its own, as a process manager (a Procfile platform,
        systemd) restarts them: RQ's worker exits when Redis goes away while a job runs. Returns their names."""
        gone = [name for name, child in self.workers.items() if child.proc.poll() is not None]
        for name in gone:
            child = self.workers.pop(name)
            self.note(f"{name} exited with {child.proc.returncode} on its own; started another in its place")
            self.start_worker(CALLBACK_QUEUES if name.startswith("callbacks") else WORK_QUEUES,
                              tag="callbacks" if name.startswith("callbacks") else "worker")
        return gone

    def kill_everything(self, why: str) -> None:
        """SIGKILL every process this cluster started but Redis and the simulator (a machine lost): web,
        workers, cron, with every process under them."""
        for child in self.sup.children:
            if child.name == "simulator":
                continue
            for pid in [child.proc.pid, *descendants(child.proc.pid)]:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            child.proc.wait(10)
        self.workers.clear()
        self.note(f"SIGKILL every process of {self.home.name}: {why}")

    def other_host(self, home: Path) -> Cluster:
        """The processes of a second machine: its own working directory `home` (rules, logs), its own web,
        workers and cron once the caller starts them, on this cluster's Redis and simulator. Close it too."""
        rules = write_rules(home)
        env = self.env | {"HOME": str(home), "HOOKLINE_RULES_DIR": str(rules)}
        return Cluster(home, env, Supervisor(home, say=lambda _: None), self.redis_port, sim_url=self.sim_url)

    def kill_all_workers(self, why: str) -> None:
        """SIGKILL every worker."""
        for name in list(self.workers):
            self.kill_worker(name, why)

    def close(self) -> None:
        """Stop everything this cluster started (SIGTERM, then SIGKILL what lingers)."""
        self.sup.stop_all(grace=10)
        if self.redis_proc is not None and self.redis_proc.poll() is None:
            self.redis_proc.terminate()
            self.redis_proc.wait(10)

    # --- looking and acting ----------------------------------------------------------------------------

    def note(self, text: str) -> None:
        """Remember what the test did, with when, for the failure report."""
        self.notes.append(f"{time.strftime('%H:%M:%S')} {text}")

    def store(self) -> Store:
        """A store on this cluster's Redis (a new connection pool)."""
        return Store.from_url(self.redis_url, 3600)

    def rq(self) -> redis.Redis:
        """A client for RQ's records (bytes, as RQ wants)."""
        return connect(self.redis_url)

    def post(self, payload: dict[str, Any], timeout: float = 10) -> requests.Response:
        """POST one event to the unsigned `faults` source."""
        return self._http.post(f"{self.web_url}/hooks/faults", data=json.dumps(payload),
                               headers={"Content-Type": "application/json"}, timeout=timeout)

    def ledger(self) -> dict[str, Any]:
        """The simulator's ledger: what ClickSend accepted, by custom_string (= our message id)."""
        return dict(self._http.get(f"{self.sim_url}/_sim/ledger", timeout=10).json())

    def faults(self, **settings: Any) -> None:
        """Change the simulator's fault settings."""
        self._http.put(f"{self.sim_url}/_sim/faults", json=settings, timeout=10).raise_for_status()
        self.note(f"simulator faults {settings}")

    def _current_jobs(self) -> Iterator[tuple[str, Job]]:
        """(name, job) of each live worker of ours whose work horse is running a job now."""
        conn = self.rq()
        try:
            mine = {self.rq_names[n]: n for n in self.workers}
            for worker in Worker.all(connection=conn):
                name = mine.get(worker.name)
                job_id = worker.get_current_job_id() if name else None
                if not job_id:
                    continue
                job = None
                with suppress(Exception):  # finished and deleted since: not running
                    job = Job.fetch(job_id, connection=conn)
                if name and job is not None:
                    yield name, job
        finally:
            conn.close()

    def running(self, func: str) -> str | None:
        """The name of a live worker of ours whose work horse is running job `func` now, or None."""
        return next((name for name, job in self._current_jobs() if job.func_name == func), None)

    def stuck(self, funcs: set[str], seconds: float) -> str | None:
        """The name of a live worker of ours whose work horse has been running one of `funcs` for `seconds` or
        more (a send whose reply hangs: every other job of these ends well within that), or None."""
        now = datetime.now(UTC)
        return next((name for name, job in self._current_jobs() if job.func_name in funcs and job.started_at
                     and (now - job.started_at.replace(tzinfo=UTC)).total_seconds() >= seconds), None)

    def dead(self) -> list[str]:
        """Children that exited although nobody killed them."""
        alive = set(self.workers)
        return [f"{c.name} exited with {c.proc.returncode}" for c in self.sup.children
                if c.proc.poll() is not None and (c.name not in self.rq_names or c.name in alive)]

    def report(self, expected: Iterable[str] = ()) -> str:
        """What happened: the test's notes, the ledger against `expected` message ids, message states, and the
        tail of every process log."""
        lines = ["--- what the test did", *self.notes]
        with suppress(Exception):
            ledger = self.ledger()
            want = set(expected)
            got = set(ledger["messages"])
            lines += ["--- ledger", f"accepted {ledger['accepted']} unique {ledger['unique']} calls {ledger['calls']}",
                      f"duplicates {dict(list(ledger['duplicates'].items())[:20])}",
                      f"missing {len(want - got)}: {sorted(want - got)[:20]}",
                      f"unexpected {len(got - want) if want else 0}: {sorted(got - want)[:20] if want else []}"]
        with suppress(Exception):
            store = self.store()
            lines += ["--- message states", str(store.messages.state_counts()),
                      f"pending events {store.events.pending_count()}; by partition (waiting, lease ttl ms): "
                      f"{_partitions(store)}"]
        lines += ["--- processes that exited on their own", *self.dead()]
        for log in sorted(self.home.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-_LOG_TAIL:]
            lines += [f"--- {log.name} (last {len(tail)} lines)", *tail]
        return "\n".join(lines)


def _partitions(store: Store) -> dict[int | None, tuple[int, int]]:
    """The partitions where events wait or a drain holds the lease: how many wait, the lease's ttl."""
    seen = {p: (store.r.llen(events_pending_key(p)), store.r.pttl(events_drain_key(p))) for p in ALL_PARTITIONS}
    return {p: state for p, state in seen.items() if state != (0, -2)}


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc (Linux)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for kid in parents.get(todo.pop(), []):
            found.append(kid)
            todo.append(kid)
    return found


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


# The waits that are 30 s in production, shortened so that a fault's recovery takes seconds: a hanging ClickSend
# call times out, an unknown send absent from the simulator's history (which never lags) is sent again, and
# `rq cron` polls receipts and sweeps for sends whose worker died.
QUICK = {"HOOKLINE_CLICKSEND_TIMEOUT": "5s", "HOOKLINE_RECONCILE_GRACE": "5s", "HOOKLINE_POLL_INTERVAL": "3s"}



def write_rules(home: Path, sources: str = SOURCES) -> Path:
    """The fault tests' rules directory under `home`."""
    rules = home / "rules"
    rules.mkdir(parents=True)
    (rules / "sources.yaml").write_text(sources)
    (rules / "faults.yaml").write_text(RULES)
    (rules / "policies.yaml").write_text(POLICIES)
    return rules


@contextmanager
def cluster(home: Path, env: dict[str, str] | None = None, sources: str = SOURCES) -> Iterator[Cluster]:
    """Redis on a free port with the fault rules in `home`; the caller starts the other processes. Prints the
    report when the test fails, and stops everything at the end."""
    rules = write_rules(home, sources)
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "HOME": str(home),
            "HOOKLINE_RULES_DIR": str(rules), "HOOKLINE_API_TOKEN": API_TOKEN, "HOOKLINE_LOG_LEVEL": "INFO",
            "HOOKLINE_SEND_RATE": "50", **QUICK}
    c = Cluster(home, base | (env or {}), Supervisor(home, say=lambda _: None), free_port())
    c.env["REDIS_URL"] = c.redis_url
    c.start_redis()
    try:
        yield c
    except BaseException:
        print(c.report())
        raise
    else:
        print("\n".join(c.notes))  # shown with -s, or -rP
    finally:
        c.close()


def expected_messages(store: Store, event_ids: Iterable[str]) -> dict[str, str]:
    """Every message our events produced, by id, with the event it came from."""
    return {mid: eid for eid in event_ids for mid in store.messages.event_message_ids(eid)}


def assert_each_sent_once(c: Cluster, message_ids: Iterable[str]) -> dict[str, Any]:
    """Every one of `message_ids` was accepted by ClickSend exactly once and nothing else was; returns the
    ledger."""
    want = set(message_ids)
    ledger = c.ledger()
    assert ledger["duplicates"] == {}, c.report(want)
    assert set(ledger["messages"]) == want, c.report(want)
    return ledger


def randomness(request: pytest.FixtureRequest) -> random.Random:
    """A random source whose seed is printed, so a failing run can be told apart from another."""
    seed = int(os.environ.get("HOOKLINE_FAULT_SEED", secrets.randbelow(1 << 30)))
    print(f"{request.node.name}: HOOKLINE_FAULT_SEED={seed}")
    return random.Random(seed)
