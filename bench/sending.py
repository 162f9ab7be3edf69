"""Sending benchmark: 2,000 events → 2,000 SMS through real RQ workers and the simulator (20 ms latency),
against a no-op RQ job drain by the same worker processes in the same run; then again under 15% 429s and a
20 requests/s cap, counting lost and duplicated messages in the simulator's ledger.

Run: python bench/sending.py [--events 2000] [--workers 2]. Prints a Markdown block for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import redis
import requests
from rq import Queue

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from workers.core.events import Event  # noqa: E402
from workers.store import Store  # noqa: E402
from workers.tools.localredis import free_port, start_redis  # noqa: E402
from workers.wiring import pipeline  # noqa: E402
from workers.wiring.settings import DEFAULT_PARTITIONS  # noqa: E402

RULES = """
rules:
  - name: bench-order
    source: bench
    event: order
    send: {channel: sms, to: "{{ payload.phone }}", body: "Order {{ payload.n }} is confirmed. Thanks!"}
"""


def wait_for(check, timeout: float = 300.0, every: float = 0.02) -> float:  # noqa: ANN001
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > timeout:
            raise TimeoutError("benchmark phase did not finish")
        time.sleep(every)
    return time.perf_counter() - start


def noop_drain(conn: redis.Redis, n: int) -> float:
    q = Queue("bench-noop", connection=conn)
    jobs = [Queue.prepare_data("builtins.len", ([1],), result_ttl=0) for _ in range(n)]
    start = time.perf_counter()
    q.enqueue_many(jobs)
    wait_for(lambda: q.count == 0 and q.started_job_registry.count == 0)
    return time.perf_counter() - start


def hookline_run(store: Store, conn: redis.Redis, sim: str, n: int, tag: str) -> dict[str, float]:
    now = time.time()
    before = requests.get(f"{sim}/_sim/ledger", timeout=5).json()
    claims = []
    for i in range(n):  # the backlog: stored and pending, the drain not started yet
        event = Event(id=f"evt_{tag}_{i}", source="bench", type="order", external_id=f"{tag}-{i}", received_at=now,
                      payload={"n": f"{tag}-{i}", "phone": f"+6141{i:07d}"})
        claims.append(store.events.ingest(event, 3600, 3600, DEFAULT_PARTITIONS).drain)
    before_sent = store.messages.state_counts().get("sent", 0)
    for claim in filter(None, claims):  # one per partition the backlog went to
        pipeline.Enqueuer(conn, store.outbox).drain(claim)
    elapsed = wait_for(lambda: store.messages.state_counts().get("sent", 0) >= before_sent + n, every=0.01)
    after = requests.get(f"{sim}/_sim/ledger", timeout=5).json()
    calls = after["calls"].get("/v3/sms/send", 0) - before["calls"].get("/v3/sms/send", 0)
    refused = after["calls"].get("429", 0) - before["calls"].get("429", 0)
    mine = {k: v for k, v in after["messages"].items() if k not in before["messages"]}
    return {"seconds": elapsed, "rate": n / elapsed, "calls": calls, "refused": refused, "calls_per_msg": calls / n,
            "accepted": sum(mine.values()), "unique": len(mine), "dupes": sum(v - 1 for v in mine.values()),
            "lost": n - len(mine)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1000, help="messages per ClickSend call")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hookline-bench-"))
    redis_proc, url = start_redis(tmp / "redis", appendonly=False)
    rules = tmp / "rules"
    rules.mkdir()
    (rules / "sources.yaml").write_text("sources:\n  bench: {verify: {scheme: none}, event_type: {value: order}}\n")
    (rules / "bench.yaml").write_text(RULES)
    sim_port = free_port()
    sim = f"http://127.0.0.1:{sim_port}"
    env = {**os.environ, "REDIS_URL": url, "HOOKLINE_RULES_DIR": str(rules), "CLICKSEND_BASE_URL": sim,
           "HOOKLINE_SEND_RATE": "20", "HOOKLINE_LOG_LEVEL": "WARNING",
           # --batch 100 makes enough calls per run for the 15% 429s to land on several of them.
           "HOOKLINE_SEND_BATCH": str(args.batch)}
    procs = [subprocess.Popen([sys.executable, "-m", "workers.entry.cli", "simulator", "--port", str(sim_port),
                               "--latency", "0.02"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    wait_for(lambda: _up(sim), timeout=20)
    for _ in range(args.workers):
        procs.append(subprocess.Popen(
            [shutil.which("rq") or "rq", "worker", "--url", url, "--with-scheduler", "--quiet",
             *pipeline.ALL_QUEUES, "bench-noop"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
    conn = redis.Redis.from_url(url)
    store = Store.from_url(url, 3600)
    try:
        time.sleep(2)  # workers registered
        noop_drain(conn, 200)  # warm-up
        noop = noop_drain(conn, args.events)
        clean = hookline_run(store, conn, sim, args.events, "clean")
        requests.put(f"{sim}/_sim/faults", json={"rate_429": 0.15, "rate_limit": 20}, timeout=5)
        faulty = hookline_run(store, conn, sim, args.events, "faulty")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(15)
        redis_proc.terminate()
        shutil.rmtree(tmp, ignore_errors=True)

    noop_rate = args.events / noop
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("rq", "redis", "requests", "flask"))
    print(f"""### Sending ({time.strftime('%Y-%m-%d')})

Machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}; {versions}.
{args.workers} `rq worker` processes (fork per job, as in production) on all Hookline queues plus `bench-noop`;
the simulator in its own process with 20 ms latency on every request; {args.events} events pre-stored in the
pending list, one SMS each; {args.batch} messages per ClickSend call.

| run | seconds | messages/s | send calls accepted | 429s | calls/message | lost | duplicates |
|---|---:|---:|---:|---:|---:|---:|---:|
| no-op RQ job drain ({args.events} jobs, baseline) | {noop:.2f} | {noop_rate:.0f} | – | – | – | – | – |
| Hookline, clean | {clean['seconds']:.2f} | {clean['rate']:.0f} | {clean['calls']:.0f} | {clean['refused']:.0f} | {clean['calls_per_msg']:.4f} | {clean['lost']:.0f} | {clean['dupes']:.0f} |
| Hookline, 15% 429s + 20 req/s cap | {faulty['seconds']:.2f} | {faulty['rate']:.0f} | {faulty['calls']:.0f} | {faulty['refused']:.0f} | {faulty['calls_per_msg']:.4f} | {faulty['lost']:.0f} | {faulty['dupes']:.0f} |

Hookline clean / no-op drain: **{clean['rate'] / noop_rate:.1f}x** (target ≥ 2x); calls per message under backlog:
**{clean['calls_per_msg']:.4f}** (target ≤ 0.05); faulty / clean: **{faulty['rate'] / clean['rate']:.2f}x** (target ≥ 0.6x),
lost {faulty['lost']:.0f}, duplicates {faulty['dupes']:.0f} (target 0 and 0).
""")


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=1).ok
    except requests.RequestException:
        return False


if __name__ == "__main__":
    main()
