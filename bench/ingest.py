"""Ingest benchmark: Hookline's POST /hooks/<source> against an enqueue-only Flask endpoint, same gunicorn settings.

Run: python bench/ingest.py [--rounds 5] [--seconds 5] [--latency-seconds 8] [--rate 1000] [--json FILE];
BENCH_GUNICORN replaces the gunicorn flags. Prints a Markdown block for BENCHMARKS.md. Not a test.
`run()` is the same measurement for other scripts (`python -m bench`): it returns the figures as a dict.

The machine is shared and noisy, so the two apps are measured in alternating short phases (which goes first
alternates too), each figure is the median over rounds, and the CPU each server spends per request is
reported beside its throughput: it is the figure least moved by other work on the machine.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import platform
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from workers.tools.localredis import free_port, start_redis  # noqa: E402

SECRET = "bench-shop-secret"
# The web process's own settings (gevent workers, bounded waits: webhooks/serving.py), for both apps.
GUNICORN = os.environ.get("BENCH_GUNICORN", "--config python:webhooks.serving --workers 3 --log-level warning "
                          "--backlog 2048").split()


def make_requests(n: int, host: str) -> list[bytes]:
    """Pre-generated, uniquely identified, validly signed Shopify-style requests (raw HTTP/1.1)."""
    out = []
    for i in range(n):
        body = json.dumps({"id": i, "name": f"#{i}", "total_price": "25.00",
                           "customer": {"first_name": "Ann", "phone": "+61411111111"}}).encode()
        sig = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
        head = (f"POST /hooks/shop HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"X-Shopify-Topic: orders/create\r\nX-Shopify-Webhook-Id: bench-{time.time_ns()}-{i}\r\n"
                f"X-Shopify-Hmac-Sha256: {sig}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        out.append(head.encode() + body)
    return out


def _response_end(buf: bytearray) -> tuple[bool, bool] | None:
    """(done, server closes) once `buf` holds a whole response (by Content-Length), else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).lower()
    length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0]) if b"content-length:" in head else 0
    if len(buf) < end + 4 + length:
        return None
    return True, b"connection: close" in head


def drive(port: int, reqs: list[bytes], seconds: float, *, rate: float | None = None,
          concurrency: int = 0, keepalive: bool = False) -> list[tuple[float, int]]:
    """Send `reqs` in order and return (latency, status) per request.

    Each request goes on a new connection, or with `keepalive` on an idle one when there is one (as a sender
    with a connection pool would; the requests must not say `Connection: close`). With `rate`, requests start
    on a fixed schedule for `seconds` whether or not earlier ones finished (open loop), and each latency counts
    from the moment the request was due: a stalled client or server shows up in the figures instead of hiding
    (no coordinated omission). Without it, `concurrency` requests are kept in flight back to back for
    `seconds` (closed loop, for maximum throughput). Raw non-blocking sockets on one selector: the load
    generator shares the two cores with the server, so it must cost as little as possible.
    """
    sel = selectors.DefaultSelector()
    results: list[tuple[float, int]] = []
    idle: list[socket.socket] = []
    start = time.perf_counter()
    total = int(rate * seconds) if rate else len(reqs)
    sent = 0

    def connect(raw: bytes, due: float, reused: socket.socket | None = None) -> None:
        sock = reused
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
        sel.register(sock, selectors.EVENT_WRITE, [raw, due, bytearray(), raw, reused is not None])

    def launch(due: float) -> None:
        nonlocal sent
        connect(reqs[sent], due, idle.pop() if idle else None)
        sent += 1

    def finish(sock: socket.socket, data: list, response: bytes | None, reuse: bool = False) -> None:
        sel.unregister(sock)
        if reuse:
            idle.append(sock)
        else:
            sock.close()
        if not response and data[4]:
            # The server had closed this idle connection: send again on a new one, as HTTP clients do.
            connect(data[3], data[1])
            return
        status = int(response.split(b" ", 2)[1]) if response else 0  # 0: connection failed
        results.append((time.perf_counter() - data[1], status))

    while True:
        now = time.perf_counter()
        if rate:
            while sent < total and start + sent / rate <= now:
                launch(start + sent / rate)
            timeout = max(0.0, start + sent / rate - now) if sent < total else None
        else:
            while now < start + seconds and len(sel.get_map()) < concurrency and sent < total:
                launch(now)
            timeout = max(0.0, start + seconds - now)
        if not sel.get_map():
            if sent >= total or (not rate and now >= start + seconds):
                for sock in idle:
                    sock.close()
                return results
            time.sleep(timeout or 0)
            continue
        for key, mask in sel.select(timeout):
            sock, data = key.fileobj, key.data
            raw, buf = data[0], data[2]
            try:
                if mask & selectors.EVENT_WRITE:
                    n = sock.send(raw)
                    data[0] = raw[n:]
                    if not data[0]:
                        sel.modify(sock, selectors.EVENT_READ, data)
                    continue
                chunk = sock.recv(65536)
            except OSError:
                finish(sock, data, None)
                continue
            if not chunk:  # the server closed: the whole response is in
                finish(sock, data, bytes(buf))
                continue
            buf += chunk
            if keepalive and (end := _response_end(buf)) is not None:
                finish(sock, data, bytes(buf), reuse=not end[1])


def closed_loop(port: int, reqs: list[bytes], seconds: float, concurrency: int) -> dict[str, float]:
    """Max throughput: `concurrency` requests in flight back to back for `seconds`."""
    start = time.perf_counter()
    results = drive(port, reqs, seconds, concurrency=concurrency)
    took = time.perf_counter() - start  # the last requests finish after `seconds`
    return {"rps": len(results) / took, "errors": sum(s != 202 for _, s in results), "n": len(results),
            "seconds": took}


def open_loop(port: int, reqs: list[bytes], rate: float, seconds: float, keepalive: bool = False
              ) -> dict[str, float]:
    """Latency at a fixed offered rate, each request on a new connection or (`keepalive`) on a reused one."""
    if keepalive:
        reqs = [r.replace(b"Connection: close\r\n", b"", 1) for r in reqs[:int(rate * seconds)]]
    start = time.perf_counter()
    results = drive(port, reqs, seconds, rate=rate, keepalive=keepalive)
    lats = sorted(lat for lat, _ in results)
    return {
        "offered": rate,
        "achieved": len(results) / (time.perf_counter() - start),
        "p50_ms": statistics.median(lats) * 1000,
        "p99_ms": lats[int(len(lats) * 0.99) - 1] * 1000,
        "max_ms": lats[-1] * 1000,
        "errors": sum(s != 202 for _, s in results),
        "n": len(results),
    }


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """User + system CPU seconds used so far by these processes (children not included)."""
    total = 0.0
    for proc in procs:
        t = proc.cpu_times()
        total += t.user + t.system
    return total


def serve(app: str, port: int, env: dict[str, str], flags: list[str]) -> subprocess.Popen[bytes]:
    """Start gunicorn with `flags` serving `app` on loopback `port`, once it answers /healthz."""
    proc = subprocess.Popen([shutil.which("gunicorn") or "gunicorn", "--bind", f"127.0.0.1:{port}", *flags, app],
                            env=env, cwd=ROOT)
    for _ in range(300):
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
            return proc
        except requests.RequestException:  # not listening yet, or still booting
            time.sleep(0.1)
    raise RuntimeError(f"{app} did not start")


APPS = {"baseline": "baseline_app:create_app()", "hookline": "webhooks:create_app()"}
LABELS = {"baseline": "enqueue-only Flask + RQ", "hookline": "Hookline `POST /hooks/shop`"}


def run(*, rounds: int = 5, seconds: float = 5.0, latency_seconds: float = 8.0, rate: float = 1000.0,
        concurrency: int = 32, gunicorn: list[str] | None = None) -> dict[str, Any]:
    """Measure both apps under the same gunicorn flags (`gunicorn`, default GUNICORN) and return the figures.

    Each round: `seconds` of maximum throughput for each app (`concurrency` requests in flight back to back, a
    new connection each), taken in one-second slices that alternate between the apps (A B B A …), so that other
    work on the machine, which comes and goes over seconds, weighs on both alike; with the CPU per request of
    the server (gunicorn master and workers), Redis and the load generator. Then, for each app in turn (the
    order alternates between rounds), `latency_seconds` at `rate` requests/s offered with a new connection per
    request, and as long again over kept-alive connections.

    The answer: `ratio_vs_enqueue_only` (Hookline's median req/s over the baseline's), `ratio_per_round`,
    `cpu_ratio_vs_enqueue_only` (the baseline's median server CPU per request over Hookline's),
    `p99_ms_at_rate` ({"new_connections", "kept_alive"}: Hookline's worst round), per-app medians under `apps`,
    every round under `rounds`, and the conditions. Starts and stops its own Redis and servers on loopback.
    """
    flags = gunicorn if gunicorn is not None else GUNICORN
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="hookline-bench-"))
    redis_proc, url = start_redis(tmp / "redis", appendonly=False)
    rules = tmp / "rules"
    rules.mkdir()
    (rules / "sources.yaml").write_text(
        "sources:\n  shop:\n    verify: {scheme: shopify, secret: '${SHOP_SECRET}'}\n"
        "    schema: {type: object, required: [id]}\n"
    )
    env = {**os.environ, "REDIS_URL": url, "HOOKLINE_RULES_DIR": str(rules), "SHOP_SECRET": SECRET,
           "PYTHONPATH": f"{ROOT}:{ROOT / 'bench'}", "HOOKLINE_LOG_LEVEL": "WARNING"}
    ports = {name: free_port() for name in APPS}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    phases: list[dict[str, Any]] = []
    try:
        for name, app in APPS.items():
            procs[name] = serve(app, ports[name], env, flags)
        flush = redis.Redis.from_url(url).flushdb
        groups = {}
        for name, proc in procs.items():
            server = psutil.Process(proc.pid)
            groups[name] = {"server": [server, *server.children()], "client": [psutil.Process()],
                            "redis": [psutil.Process(redis_proc.pid)]}
        for i in range(rounds):
            reqs = {name: make_requests(int(seconds * 5000) + 2 * int(rate * latency_seconds) + 2000, "bench")
                    for name in APPS}
            for name in APPS:
                closed_loop(ports[name], reqs[name][-2000:], 1, 8)  # warm up
            flush()
            tp = {name: {"n": 0, "errors": 0, "seconds": 0.0, "cpu": dict.fromkeys(groups[name], 0.0)}
                  for name in APPS}
            slices = max(1, round(seconds))
            for j in range(slices):
                for name in (APPS if j % 4 in (0, 3) else reversed(APPS)):
                    got, cpu = measured(groups[name], partial(closed_loop, ports[name], reqs[name][tp[name]["n"]:],
                                                              seconds / slices, concurrency))
                    tp[name]["n"] += got["n"]
                    tp[name]["errors"] += got["errors"]
                    tp[name]["seconds"] += got["seconds"]
                    for k, v in cpu.items():
                        tp[name]["cpu"][k] += v
            flush()
            for name in (APPS if i % 2 == 0 else reversed(APPS)):
                rest = reqs[name][tp[name]["n"]:]
                lat, lat_cpu = measured(groups[name], partial(open_loop, ports[name], rest, rate, latency_seconds))
                flush()
                ka, ka_cpu = measured(groups[name], partial(open_loop, ports[name], rest[lat["n"]:], rate,
                                                            latency_seconds, keepalive=True))
                flush()
                n = tp[name]["n"]
                phases.append({"round": i + 1, "name": name,
                               "throughput": {"rps": n / tp[name]["seconds"], "n": n, "errors": tp[name]["errors"]},
                               "throughput_cpu_ms": per_request(tp[name]["cpu"], n),
                               "latency": lat, "latency_cpu_ms": per_request(lat_cpu, lat["n"]),
                               "keepalive": ka, "keepalive_cpu_ms": per_request(ka_cpu, ka["n"])})
    finally:
        for p in procs.values():
            p.terminate()
            p.wait(10)
        redis_proc.terminate()
        redis_proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    return figures(phases, load_before, os.getloadavg(), flags,
                   {"rounds": rounds, "seconds": seconds, "latency_seconds": latency_seconds, "rate": rate,
                    "concurrency": concurrency})


def measured(groups: dict[str, list[psutil.Process]], phase: Any) -> tuple[dict[str, Any], dict[str, float]]:
    """Run `phase` and return its figures and the CPU seconds each group of processes spent meanwhile."""
    before = {k: cpu_seconds(g) for k, g in groups.items()}
    result = phase()
    return result, {k: cpu_seconds(g) - before[k] for k, g in groups.items()}


def per_request(cpu: dict[str, float], n: int) -> dict[str, float]:
    """CPU seconds by group as milliseconds per request."""
    return {k: v * 1000 / max(1, n) for k, v in cpu.items()}


def figures(phases: list[dict[str, Any]], load_before: tuple[float, ...], load_after: tuple[float, ...],
            flags: list[str], settings: dict[str, float]) -> dict[str, Any]:
    """The medians, ratios and worst p99s of `phases`, with the phases themselves and the conditions."""
    apps: dict[str, dict[str, float]] = {}
    for name in APPS:
        mine = [p for p in phases if p["name"] == name]
        apps[name] = {
            "rps": statistics.median(p["throughput"]["rps"] for p in mine),
            "server_cpu_ms": statistics.median(p["throughput_cpu_ms"]["server"] for p in mine),
            "redis_cpu_ms": statistics.median(p["throughput_cpu_ms"]["redis"] for p in mine),
            "client_cpu_ms": statistics.median(p["throughput_cpu_ms"]["client"] for p in mine),
            "p99_ms_new_connections": max(p["latency"]["p99_ms"] for p in mine),
            "p99_ms_kept_alive": max(p["keepalive"]["p99_ms"] for p in mine),
            "errors": sum(p[k]["errors"] for p in mine for k in ("throughput", "latency", "keepalive")),
        }
    paired = [h["throughput"]["rps"] / b["throughput"]["rps"]
              for b, h in zip(*([p for p in phases if p["name"] == name] for name in APPS), strict=True)]
    hook, base = apps["hookline"], apps["baseline"]
    return {
        "ratio_vs_enqueue_only": hook["rps"] / base["rps"],
        "ratio_per_round": paired,
        "cpu_ratio_vs_enqueue_only": base["server_cpu_ms"] / hook["server_cpu_ms"],
        "p99_ms_at_rate": {"new_connections": hook["p99_ms_new_connections"],
                           "kept_alive": hook["p99_ms_kept_alive"]},
        "apps": apps,
        "rounds": phases,
        "settings": settings,
        "gunicorn": flags,
        "load_before": load_before,
        "load_after": load_after,
    }


def report(fig: dict[str, Any]) -> str:
    """The Markdown block for BENCHMARKS.md: the conditions, every phase, then the medians and ratios."""
    s, apps = fig["settings"], fig["apps"]
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("flask", "gunicorn", "rq", "redis"))
    rows = "\n".join(
        f"| {p['round']} | {LABELS[p['name']]} | {p['throughput']['rps']:.0f} | {p['throughput_cpu_ms']['server']:.2f} "
        f"| {p['throughput_cpu_ms']['redis']:.2f} | {p['throughput_cpu_ms']['client']:.2f} "
        f"| {p['latency']['achieved']:.0f} | {p['latency']['p50_ms']:.1f} | {p['latency']['p99_ms']:.1f} "
        f"| {p['latency_cpu_ms']['server']:.2f} | {p['keepalive']['p99_ms']:.1f} | {p['keepalive_cpu_ms']['server']:.2f} "
        f"| {p['throughput']['errors'] + p['latency']['errors'] + p['keepalive']['errors']} |"
        for p in fig["rounds"])
    medians = "\n".join(
        f"| {LABELS[name]} | {a['rps']:.0f} | {a['server_cpu_ms']:.3f} | {a['redis_cpu_ms']:.3f} "
        f"| {a['client_cpu_ms']:.3f} | {a['p99_ms_new_connections']:.1f} | {a['p99_ms_kept_alive']:.1f} "
        f"| {a['errors']} |" for name, a in apps.items())
    lb, la = fig["load_before"], fig["load_after"]
    return f"""### Ingest ({time.strftime('%Y-%m-%d %H:%M')})

Machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}; {versions};
load average {lb[0]:.2f} / {lb[1]:.2f} / {lb[2]:.2f} before the run and {la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f} after \
(1 / 5 / 15 min). Redis: a private redis-server, AOF off, flushed between phases.
gunicorn `{' '.join(fig['gunicorn'])}` for both apps.
{s['rounds']} rounds; in each, {s['seconds']:g} s of maximum throughput for each app ({s['concurrency']} requests in flight back
to back, a new connection each) in one-second slices alternating between the apps (A B B A …), with the CPU per
request of the server's processes, Redis and the load generator; then, for each app in turn (the order
alternating between rounds), {s['latency_seconds']:g} s at {s['rate']:.0f} requests/s offered with a new connection per request (each
latency counted from the moment its request was due), and as long again over kept-alive connections.

| round | endpoint | req/s | server CPU ms | Redis CPU ms | client CPU ms | achieved /s at rate | p50 ms | p99 ms | server CPU ms at rate | kept-alive p99 ms | kept-alive server CPU ms | errors |
|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{rows}

Medians over the rounds (p99: the worst round):

| endpoint | req/s | server CPU ms / request | Redis CPU ms | client CPU ms | p99 ms, new connections | p99 ms, kept alive | errors |
|---|---:|---:|---:|---:|---:|---:|---:|
{medians}

Hookline / enqueue-only by median throughput: **{fig['ratio_vs_enqueue_only']:.2f}x** (target ≥ 1.2x; per round \
{', '.join(f'{r:.2f}' for r in fig['ratio_per_round'])}).
By server CPU per request (the baseline's over Hookline's): **{fig['cpu_ratio_vs_enqueue_only']:.2f}x**.
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5, help="length of each throughput phase")
    parser.add_argument("--latency-seconds", type=float, default=8, help="length of each fixed-rate phase")
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    fig = run(rounds=args.rounds, seconds=args.seconds, latency_seconds=args.latency_seconds, rate=args.rate,
              concurrency=args.concurrency)
    if args.json:
        args.json.write_text(json.dumps(fig, indent=2))
    print(report(fig))


if __name__ == "__main__":
    main()
