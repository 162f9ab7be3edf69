"""`hookline up`: run Redis (if none is configured), web, workers and cron on one machine, and stop them all.

Owns child processes and their shutdown order; what each child does is the Procfile's business.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from workers.core.envrefs import find_refs
from workers.errors import ToolError
from workers.tools.localredis import free_port, start_redis
from workers.wiring import pipeline
from workers.wiring.settings import (
    DEFAULT_RULES_DIR,
    RUNNING_FILE,
    SECRETS_FILE,
    read_env_file,
    recorded_redis_url,
    write_env_file,
)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux: a child gets SIGTERM if `hookline up` itself is killed, so nothing is left behind.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """One process `hookline up` started."""

    name: str
    proc: subprocess.Popen[bytes]


@dataclass
class Supervisor:
    """Starts the children in order and stops them in reverse order."""

    home: Path
    say: Callable[[str], None] = print
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, args: list[str], env: Mapping[str, str]) -> Child:
        """Start `args` as child `name` in its own session (Ctrl-C reaches only the supervisor)."""
        proc = subprocess.Popen(args, env=dict(env), stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_die_with_parent)
        child = Child(name, proc)
        self.children.append(child)
        return child

    def adopt(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        """Take charge of a process started elsewhere (the private Redis)."""
        self.children.append(Child(name, proc))

    def wait(self, stop: list[bool]) -> int:
        """Block until asked to stop or until a child exits on its own; return the exit code to use."""
        while not stop[0]:
            for child in self.children:
                code = child.proc.poll()
                if code is not None:
                    self.say(f"hookline: {child.name} exited with {code}; stopping everything")
                    return 1
            time.sleep(0.2)
        return 0

    def stop_all(self, grace: float = 15.0) -> None:
        """SIGTERM each child, newest first (web before workers before Redis); SIGKILL what lingers."""
        for child in reversed(self.children):
            if child.proc.poll() is None:
                _signal_group(child.proc, signal.SIGTERM)
                try:
                    child.proc.wait(grace)
                except subprocess.TimeoutExpired:
                    _signal_group(child.proc, signal.SIGKILL)
                    child.proc.wait(5)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def dev_secrets(home: Path, rules_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Values for every `${VAR}` that sources.yaml needs but the environment lacks, plus an API token.

    Generated once and kept in `.hookline/secrets.env` (mode 600) so they survive restarts.
    """
    path = home / SECRETS_FILE
    saved = read_env_file(path)
    needed = {"HOOKLINE_API_TOKEN": False, "HOOKLINE_RECEIPT_TOKEN": False}
    needed.update(_source_refs(rules_dir / "sources.yaml"))
    out: dict[str, str] = {}
    for name, whsec in needed.items():
        if name in environ:
            continue
        if name not in saved:
            saved[name] = ("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode() if whsec
                           else secrets.token_urlsafe(24))
        out[name] = saved[name]
    if out:
        write_env_file(path, saved)
    return out


def _source_refs(path: Path) -> dict[str, bool]:
    """`${VAR}` names in sources.yaml, each with whether it is a Standard Webhooks (whsec_) secret."""
    try:
        data = yaml.safe_load(path.read_text()) if path.exists() else None
    except yaml.YAMLError:
        return {}  # reported properly when the web process loads the rules
    refs: dict[str, bool] = {}
    sources = data.get("sources") if isinstance(data, dict) else None
    for body in (sources or {}).values():
        verify = body.get("verify") if isinstance(body, dict) else None
        whsec = isinstance(verify, dict) and verify.get("scheme") == "standard-webhooks"
        for name in find_refs(body):
            refs[name] = refs.get(name, False) or (whsec and name in set(find_refs(verify)))
    return refs


def _provider_mode(env: Mapping[str, str]) -> str:
    if env.get("CLICKSEND_USERNAME") and env.get("CLICKSEND_API_KEY"):
        return "direct"
    return "maton" if env.get("MATON_API_KEY") else "simulated"


def web_command(bin_dir: Path, host: str, port: int, workers: int = 3) -> list[str]:
    """The web process, as the Procfile's `web` line runs it: gunicorn with `webhooks.serving`'s settings
    (gevent workers, bounded header and body times, JSON server errors)."""
    return [str(bin_dir / "gunicorn"), "--config", "python:webhooks.serving", "--bind", f"{host}:{port}",
            "--workers", str(workers), "--log-level", "warning", "webhooks:create_app()"]


def _say(line: str) -> None:
    print(line, flush=True)  # at once, even into a pipe or a log file


def up(host: str, port: int, workers: int, environ: Mapping[str, str], home: Path,
       say: Callable[[str], None] = _say, redis_url: str | None = None) -> int:
    """Run the whole service until Ctrl-C (or SIGTERM); return the process exit code.

    `redis_url` (else REDIS_URL) names a Redis to use; with neither a private one is started under `home`.
    """
    env = dict(environ) | ({"REDIS_URL": redis_url} if redis_url else {})
    sup = Supervisor(home, say)
    stop = [False]

    def request_stop(signum: int, frame: object) -> None:
        stop[0] = True

    rules_dir = Path(env.get("HOOKLINE_RULES_DIR", DEFAULT_RULES_DIR))
    if not rules_dir.is_dir():
        say(f"hookline: no rules directory at {rules_dir.resolve()}: `hookline init` writes the example rules "
            "there (then run `hookline up` again), or set HOOKLINE_RULES_DIR to your own")
        return 2
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    running = home / RUNNING_FILE
    try:
        if not env.get("REDIS_URL"):
            proc, url = start_redis(home / "redis")
            sup.adopt("redis", proc)
            env["REDIS_URL"] = url
            say(f"hookline: started a private Redis at {url} (data and AOF in {home / 'redis'})")
        generated = dev_secrets(home, rules_dir, env)
        env.update(generated)
        if generated:
            say(f"hookline: generated {', '.join(sorted(generated))}; values in {home / SECRETS_FILE}")
        write_env_file(running, {"REDIS_URL": env["REDIS_URL"], "HOOKLINE_RULES_DIR": str(rules_dir.resolve()),
                                 "HOOKLINE_URL": f"http://{host}:{port}"},
                       comment=f"Written by `hookline up` (pid {os.getpid()}) for the commands run beside it; "
                               "removed when it stops.\nThe environment, when set, wins over this file.")
        _start_children(sup, env, host, port, workers)
        for line in banner(host, port, home, token_in_file="HOOKLINE_API_TOKEN" in generated):
            say(line)
        return sup.wait(stop)
    finally:
        say("hookline: stopping")
        if recorded_redis_url(home) == env.get("REDIS_URL"):
            running.unlink()  # ours (not another `up`'s in the same folder): commands now say nothing runs
        sup.stop_all()


def _start_children(sup: Supervisor, env: dict[str, str], host: str, port: int, workers: int) -> None:
    """The simulator (when nothing else sends), the web server, the RQ workers and cron; `env` gains the
    simulator's URL and credentials."""
    bin_dir = Path(sys.executable).parent
    settings_mode = _provider_mode(env)
    if settings_mode == "simulated" and not env.get("CLICKSEND_BASE_URL"):
        _start_simulator(sup, env)
    elif settings_mode != "simulated":
        sup.say(f"hookline: sending for real through ClickSend ({settings_mode})")
    sup.start("web", web_command(bin_dir, host, port), env)
    # Callbacks get a worker of their own (the Procfile's `callbacks`): a slow origin then holds that one only,
    # never the workers that plan and send.
    # The workers that plan and send take turns between the two queues: with a drain per partition waiting,
    # RQ's default (the first queue first) would leave every flush behind the whole backlog's planning.
    turns = ("--dequeue-strategy", "round_robin", pipeline.EVENTS_QUEUE, pipeline.SEND_QUEUE)
    queue_sets = [(f"worker-{i + 1}", turns) for i in range(workers)]
    for name, queues in [*queue_sets, ("callbacks", (pipeline.CALLBACKS_QUEUE,))]:
        sup.start(name, [str(bin_dir / "rq"), "worker", *rq_connection_args(env["REDIS_URL"]), "--with-scheduler",
                         "--quiet", "--worker-class", "workers.entry.worker.HooklineWorker", *queues], env)
    sup.start("cron", [*cron_command(bin_dir, env["REDIS_URL"]), "--logging-level", "WARNING"], env)


def cron_command(bin_dir: Path, redis_url: str) -> list[str]:
    """`rq cron` as the Procfile's `cron:` runs it, on a connection that waits out a Redis restart."""
    return [str(bin_dir / "rq"), "cron", *rq_connection_args(redis_url, patient=True), "workers.entry.cron"]


def rq_connection_args(url: str, patient: bool = False) -> list[str]:
    """How the Procfile's `rq worker` and `rq cron` name their Redis: `url` (plain or Sentinel) read by
    Hookline's connection class (`patient`: the one that retries through a Redis restart, for `rq cron`)."""
    kind = "PatientRedis" if patient else "HooklineRedis"
    return ["--url", url, "--connection-class", f"workers.entry.worker.{kind}"]


def _start_simulator(sup: Supervisor, env: dict[str, str]) -> None:
    sim_port = free_port()
    # Fresh credentials each run, given to the simulator (by environment, not argv) and to our own
    # processes: they talk to it exactly as to ClickSend, and a caller without them gets 401.
    sim_user, sim_key = f"hookline-{secrets.token_hex(4)}", secrets.token_urlsafe(24)
    child = sup.start("simulator", [sys.executable, "-m", "workers.entry.cli", "simulator", "--port", str(sim_port)],
                      env | {"HOOKLINE_SIMULATOR_USERNAME": sim_user, "HOOKLINE_SIMULATOR_API_KEY": sim_key})
    # The workers and cron ask ClickSend for the account as they start: they find the simulator listening.
    _wait_listening(child, sim_port)
    env.update(CLICKSEND_BASE_URL=f"http://127.0.0.1:{sim_port}", CLICKSEND_USERNAME=sim_user,
               CLICKSEND_API_KEY=sim_key)
    lines = ["NO CLICKSEND CREDENTIALS: MESSAGES ARE SIMULATED, NOTHING REACHES A PHONE",
             f"simulator at {env['CLICKSEND_BASE_URL']}  (ledger: /_sim/ledger)",
             "set CLICKSEND_USERNAME + CLICKSEND_API_KEY, or MATON_API_KEY, to send for real"]
    width = max(len(line) for line in lines)
    sup.say("\n  " + "!" * (width + 8))
    for line in lines:
        sup.say(f"  !!  {line.ljust(width)}  !!")
    sup.say("  " + "!" * (width + 8) + "\n")


def _wait_listening(child: Child, port: int, timeout: float = 20.0) -> None:
    """Return once `child` accepts connections on 127.0.0.1:`port`; ToolError if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while child.proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise ToolError(f"the {child.name} did not start listening on port {port}")


def banner(host: str, port: int, home: Path, token_in_file: bool) -> list[str]:
    """What `hookline up` says once everything is started: where to send, where the pages are, where the
    token that signs in to them is, and that commands run here find this instance by themselves."""
    base = f"http://{host}:{port}"
    token = f"HOOKLINE_API_TOKEN in {home / SECRETS_FILE}" if token_in_file else \
        "the HOOKLINE_API_TOKEN of this environment"
    return [f"hookline: listening on {base}  (POST /hooks/<source>, GET /readyz); Ctrl-C stops",
            f"hookline: pages at {base}/ui/  (sign in with {token})",
            f"hookline: commands run in this folder (hookline trace, approvals list, …) find this Redis through "
            f"{home / RUNNING_FILE}"]
