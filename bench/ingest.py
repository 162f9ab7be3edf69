"""Ingest benchmark: Hookline's POST /hooks/<source> against an enqueue-only Flask endpoint, same gunicorn settings.

Run: python bench/ingest.py [--seconds 8]. Prints a Markdown block for BENCHMARKS.md. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from workers.localredis import free_port, start_redis  # noqa: E402

SECRET = "bench-shop-secret"
GUNICORN = os.environ.get("BENCH_GUNICORN", "--workers 3 --worker-class gthread --threads 4 --log-level warning "
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


async def one(port: int, raw: bytes) -> tuple[float, int]:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    status_line = await reader.readline()
    await reader.read()
    writer.close()
    return time.perf_counter() - start, int(status_line.split()[1])


async def closed_loop(port: int, reqs: list[bytes], seconds: float, concurrency: int) -> dict[str, float]:
    """Max throughput: `concurrency` clients back to back for `seconds`."""
    it = iter(reqs)
    done: list[float] = []
    bad = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal bad
        while time.perf_counter() < deadline:
            lat, status = await one(port, next(it))
            done.append(lat)
            bad += status != 202

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return {"rps": len(done) / elapsed, "errors": bad, "n": len(done)}


async def open_loop(port: int, reqs: list[bytes], rate: float, seconds: float) -> dict[str, float]:
    """Latency at a fixed offered rate (requests start on schedule whether or not earlier ones finished)."""
    tasks = []
    start = time.perf_counter()
    total = int(rate * seconds)
    for i in range(total):
        target = start + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(port, reqs[i])))
    results = await asyncio.gather(*tasks)
    lats = sorted(r[0] for r in results)
    return {
        "offered": rate,
        "achieved": total / (time.perf_counter() - start),
        "p50_ms": statistics.median(lats) * 1000,
        "p99_ms": lats[int(len(lats) * 0.99) - 1] * 1000,
        "errors": sum(r[1] != 202 for r in results),
    }


def serve(app: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([shutil.which("gunicorn") or "gunicorn", "--bind", f"127.0.0.1:{port}", *GUNICORN, app],
                            env=env, cwd=ROOT)
    for _ in range(300):
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
            return proc
        except requests.RequestException:  # not listening yet, or still booting
            time.sleep(0.1)
    raise RuntimeError(f"{app} did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=1000)
    args = parser.parse_args()

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
    ports = {"baseline": free_port(), "hookline": free_port()}
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, dict[str, dict[str, float]]] = {}
    try:
        procs.append(serve("baseline_app:create_app()", ports["baseline"], env))
        procs.append(serve("webhooks:create_app()", ports["hookline"], env))
        n_needed = int(args.rate * args.seconds) + 200_000
        for name in ("baseline", "hookline", "baseline", "hookline"):  # interleaved: noise hits both
            reqs = make_requests(n_needed if name == "hookline" else 60_000, "bench")
            warm = asyncio.run(closed_loop(ports[name], reqs[-2000:], 1, 8))
            del warm
            tp = asyncio.run(closed_loop(ports[name], reqs, args.seconds, args.concurrency))
            lat = asyncio.run(open_loop(ports[name], reqs[tp["n"]:], args.rate, args.seconds / 2))
            prev = results.get(name)
            if prev is None or tp["rps"] > prev["throughput"]["rps"]:
                results[name] = {"throughput": tp, "latency": lat}
            redis.Redis.from_url(url).flushdb()
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        redis_proc.terminate()
        shutil.rmtree(tmp, ignore_errors=True)

    b, h = results["baseline"], results["hookline"]
    ratio = h["throughput"]["rps"] / b["throughput"]["rps"]
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("flask", "gunicorn", "rq", "redis"))
    print(f"""### Ingest ({time.strftime('%Y-%m-%d')})

Machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}; {versions};
Redis: a private redis-server, AOF off.
gunicorn `{' '.join(GUNICORN)}` for both apps; load from one asyncio client process on the same machine,
a new connection per request; best of two interleaved rounds each.

| endpoint | req/s ({args.concurrency} clients) | p50 at {args.rate:.0f}/s offered | p99 at {args.rate:.0f}/s offered | errors |
|---|---:|---:|---:|---:|
| enqueue-only Flask + RQ (baseline) | {b['throughput']['rps']:.0f} | {b['latency']['p50_ms']:.1f} ms | {b['latency']['p99_ms']:.1f} ms | {b['throughput']['errors'] + b['latency']['errors']} |
| Hookline `POST /hooks/shop` | {h['throughput']['rps']:.0f} | {h['latency']['p50_ms']:.1f} ms | {h['latency']['p99_ms']:.1f} ms | {h['throughput']['errors'] + h['latency']['errors']} |

Ratio Hookline / baseline (req/s): **{ratio:.2f}x** (target ≥ 0.8x). Hookline p99 at {args.rate:.0f}/s: **{h['latency']['p99_ms']:.1f} ms** (target ≤ 20 ms).
""")


if __name__ == "__main__":
    main()
