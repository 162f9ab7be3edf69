"""Admission benchmark: one drain batch of events (one SMS each, the rules of bench/sending.py) processed
in-process against a private Redis and the simulator, with Redis round trips and commands counted, optionally
under cProfile.

Two policies: `bench` (bench/sending.py's: the default policy, nothing to check but opt-outs and the balance
flag) and `full` (a duplicate window, a per-recipient rate and a daily budget: every check admission makes).

Run: python bench/admission.py [--events 1000] [--policy full] [--profile 25]. Prints a Markdown block.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.services import RULES  # noqa: E402
from workers.core.events import Event  # noqa: E402
from workers.entry.runtime import Runtime  # noqa: E402
from workers.flow.admission import Admission  # noqa: E402
from workers.store import Store  # noqa: E402
from workers.tools.localredis import free_port, start_redis  # noqa: E402
from workers.wiring.rulesdir import RulesDir  # noqa: E402
from workers.wiring.settings import Settings  # noqa: E402

POLICIES = {
    "bench": "policies:\n  default: {}\n",
    "full": "policies:\n  default: {duplicate_window: 10m, max_per_recipient: {count: 3, per: 1h},"
            " daily_budget: 100000}\n",
}


class Counted(redis.Connection):
    """A connection that counts what it sends: one packed send is one round trip (a pipeline sends once)."""

    sends = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        Counted.sends += 1
        super().send_packed_command(command, check_health)


def commands(r: redis.Redis) -> int:
    """Commands Redis has run so far (INFO commandstats), minus the INFO calls themselves."""
    stats = r.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


def redis_cpu(r: redis.Redis) -> float:
    """Seconds of CPU the Redis server has used."""
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def count_admission(counter: dict[str, int]) -> Callable[[], None]:
    """Count the round trips made inside admission (whichever entry point processing uses); returns an undo."""
    undo = []
    for name in ("admit", "admit_batch"):
        original = getattr(Admission, name)

        def wrapped(self: Admission, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            counter["depth"] += 1
            before = Counted.sends
            try:
                return _original(self, *args, **kwargs)
            finally:
                counter["depth"] -= 1
                if counter["depth"] == 0:
                    counter["admission"] += Counted.sends - before

        setattr(Admission, name, wrapped)
        undo.append((name, original))
    return lambda: [setattr(Admission, n, o) for n, o in undo] and None


def run(events: int, policy: str, profile: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="hookline-admission-"))
    redis_proc, url = start_redis(tmp / "redis", appendonly=False)
    rules = tmp / "rules"
    rules.mkdir()
    (rules / "sources.yaml").write_text("sources:\n  bench: {verify: {scheme: none}, event_type: {value: order}}\n")
    (rules / "bench.yaml").write_text(RULES)
    (rules / "policies.yaml").write_text(POLICIES[policy])
    sim_port = free_port()
    sim = f"http://127.0.0.1:{sim_port}"
    proc = subprocess.Popen([sys.executable, "-m", "workers.entry.cli", "simulator", "--port", str(sim_port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not _up(sim):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the simulator at {sim} never answered")
            time.sleep(0.1)
        settings = Settings(redis_url=url, rules_dir=str(rules), clicksend_base_url=sim, log_level="WARNING")
        client = redis.Redis.from_url(url, decode_responses=True, connection_class=Counted)
        rt = Runtime(settings=settings, store=Store(client, 3600),
                     rq_connection=redis.Redis.from_url(url, connection_class=Counted), rules=RulesDir(rules, settings))
        assert rt.rules.reload(), rt.rules.errors
        now = time.time()
        ids = []
        for i in range(events):
            event = Event(id=f"evt_{i}", source="bench", type="order", external_id=str(i), received_at=now,
                          payload={"n": str(i), "phone": f"+6141{i % (events // 2 or 1):07d}"})
            rt.store.events.ingest(event, 3600, 3600, rt.settings.partitions)
            ids.append(event.id)
        info = redis.Redis.from_url(url)
        counter = {"depth": 0, "admission": 0}
        undo = count_admission(counter)
        before_cmds, before_sends, before_redis = commands(info), Counted.sends, redis_cpu(info)
        profiler = cProfile.Profile()
        started, cpu = time.perf_counter(), time.process_time()
        if profile:
            profiler.enable()
        counts = rt.processing.process_events(ids, time.time())
        profiler.disable()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        redis_seconds = redis_cpu(info) - before_redis
        sends, cmds = Counted.sends - before_sends, commands(info) - before_cmds
        undo()
        calls = requests.get(f"{sim}/_sim/ledger", timeout=5).json()["calls"]
        out = io.StringIO()
        if profile:
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(profile)
        return {"events": events, "policy": policy, "seconds": elapsed, "cpu": cpu, "redis_cpu": redis_seconds,
                "counts": dict(counts),
                "round_trips": sends, "commands": cmds, "admission_round_trips": counter["admission"],
                "price_calls": calls.get("/v3/sms/price", 0), "profile": out.getvalue()}
    finally:
        proc.terminate()
        proc.wait(10)
        redis_proc.terminate()
        redis_proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=1).ok
    except requests.RequestException:
        return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--policy", choices=sorted(POLICIES), action="append")
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions by cumulative time")
    args = parser.parse_args()
    print("| policy | events | messages by state | drain s | drain CPU ms/message | Redis CPU ms/message | "
          "round trips/message | in admission | commands/message | price calls |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    profiles = []
    for policy in args.policy or ["bench", "full"]:
        r = run(args.events, policy, args.profile)
        n = r["events"]
        states = ", ".join(f"{count} {state}" for state, count in r["counts"].items())
        print(f"| {policy} | {n} | {states} | {r['seconds']:.2f} | {1000 * r['cpu'] / n:.3f} | "
              f"{1000 * r['redis_cpu'] / n:.3f} | {r['round_trips'] / n:.3f} | "
              f"{r['admission_round_trips'] / n:.3f} | {r['commands'] / n:.2f} | {r['price_calls']} |")
        profiles.append((policy, r["profile"]))
    for policy, text in profiles:
        if text:
            print(f"\n#### cProfile, policy {policy}\n\n```\n{text}```")


if __name__ == "__main__":
    main()
