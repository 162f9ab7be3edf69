"""The capacity figures of `python -m bench`: Redis commands, bytes on the wire, memory kept and Redis CPU per
event, per message and per receipt (INFO commandstats, INFO stats and memory, /proc differences over a
phase), and what redis-benchmark gets from the same redis-server for the commands Hookline mostly uses.

Owns those figures; the README's capacity plan is written from them.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from typing import Any
from urllib.parse import urlsplit

from bench.measure import Snapshot, cpu_ms_by_process
from workers.core.lifecycle import State

# Commands the benchmark itself sends (INFO for the snapshots; a state check is one ZCARD per state).
OWN_COMMANDS = ("info", "client|setinfo", "client|setname", "hello")
STATE_CHECK_COMMANDS = len(State)


def redis_costs(before: Snapshot, after: Snapshot, polls: int, n: int) -> dict[str, float]:
    """Per item between the snapshots: Redis commands (the benchmark's own subtracted), bytes in + out, memory
    kept and Redis CPU ms; `polls` is how many state checks the benchmark made in between."""
    calls = {k: v - before.commands.get(k, 0) for k, v in after.commands.items()}
    calls = {k: v for k, v in calls.items() if v and k not in OWN_COMMANDS}
    calls["zcard"] = calls.get("zcard", 0) - polls * STATE_CHECK_COMMANDS
    net = sum(after.info[k] - before.info[k] for k in ("total_net_input_bytes", "total_net_output_bytes"))
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:12]
    return {"commands": sum(calls.values()) / n, "bytes": net / n,
            "memory": (after.info["used_memory"] - before.info["used_memory"]) / n,
            "redis_cpu_ms": cpu_ms_by_process(before, after, n)["redis"],
            "top": {k: round(v / n, 2) for k, v in top}}


def capacity(sending: tuple[Snapshot, Snapshot, int, int], receipts: tuple[Snapshot, Snapshot, int, int],
             messages_per_event: float) -> dict[str, Any]:
    """The capacity section of the report from the clean sending phase and the receipts phase, each given as
    (before, after, state checks in between, items)."""
    per_event = redis_costs(*sending)
    per_receipt = redis_costs(*receipts)
    return {
        "redis_commands_per_event": per_event["commands"],
        "redis_commands_per_message": per_event["commands"] / messages_per_event,
        "bytes_per_event": per_event["bytes"], "bytes_per_message": per_event["bytes"] / messages_per_event,
        "memory_per_event": per_event["memory"], "memory_per_message": per_event["memory"] / messages_per_event,
        "redis_cpu_ms_per_event": per_event["redis_cpu_ms"],
        "redis_cpu_ms_per_message": per_event["redis_cpu_ms"] / messages_per_event,
        "events_per_s_per_redis_core": 1000 / per_event["redis_cpu_ms"] if per_event["redis_cpu_ms"] else None,
        "top_commands_per_event": per_event["top"],
        "redis_commands_per_receipt": per_receipt["commands"], "bytes_per_receipt": per_receipt["bytes"],
        "memory_per_receipt": per_receipt["memory"],
        "redis_cpu_ms_per_receipt": per_receipt["redis_cpu_ms"], "top_commands_per_receipt": per_receipt["top"],
    }


def redis_benchmark(redis_url: str, requests: int) -> dict[str, float]:
    """Requests/s redis-benchmark gets from the Redis at `redis_url`, one at a time and 16 pipelined, for the
    commands Hookline mostly sends; empty when redis-benchmark is not installed."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return {}
    port = str(urlsplit(redis_url).port)
    out: dict[str, float] = {}
    for pipelined in (1, 16):
        run = subprocess.run([binary, "-h", "127.0.0.1", "-p", port, "-n", str(requests), "-P", str(pipelined),
                              "-t", "set,get,hset,zadd,lpush,rpop", "--csv"],
                             capture_output=True, text=True, timeout=300, check=True)
        for row in csv.reader(run.stdout.splitlines()[1:]):
            out[f"{row[0].split()[0].lower()} -P {pipelined}"] = float(row[1])
    return out
