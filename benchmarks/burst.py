"""Burst benchmark (issue 6): N submissions at once against a real stack.

Starts its own API and workers (private var/, queue and instance label), submits N builds
from several projects as fast as it can (honouring 429 Retry-After), probes /healthz every
100 ms throughout, waits for every build to end, then counts what is left behind.

    KILN_TEST_REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python -m benchmarks.burst \
        --builds 50 --workers 2 --projects 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import docker
import httpx

from tests.integration.conftest import WRITE_DIST, launch_stack, node_project


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--builds", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--projects", type=int, default=10)
    args = parser.parse_args()

    var = Path(tempfile.mkdtemp(prefix="kiln-burst-"))
    stack = launch_stack(var, workers=args.workers)
    latencies: list[float] = []
    health_errors = Counter[str]()
    stop = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=stack.url, timeout=10) as http:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    code = http.get("/healthz").status_code
                    if code != 200:
                        health_errors[str(code)] += 1
                except httpx.HTTPError as exc:
                    health_errors[type(exc).__name__] += 1
                latencies.append(time.perf_counter() - started)
                stop.wait(0.1)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        t0 = time.monotonic()
        ids: list[str] = []
        refused = 0
        with httpx.Client(base_url=stack.url, timeout=60) as http:
            for i in range(args.builds):
                body = {"files": node_project(WRITE_DIST), "project": f"burst-{i % args.projects}"}
                while True:
                    reply = http.post("/api/v1/builds", json=body)
                    if reply.status_code != 429:
                        break
                    refused += 1
                    time.sleep(float(reply.headers.get("Retry-After", "1")))
                reply.raise_for_status()
                ids.append(reply.json()["id"])
        submitted_s = time.monotonic() - t0
        ends: dict[str, dict[str, object]] = {}
        deadline = time.monotonic() + 1800
        while len(ends) < len(ids) and time.monotonic() < deadline:
            for build_id in ids:
                if build_id not in ends:
                    body = stack.client.build(build_id)
                    if body["status"] not in ("queued", "running"):
                        ends[build_id] = body
            time.sleep(1)
        all_done_s = time.monotonic() - t0
        time.sleep(2)
        stop.set()
        prober.join()
        engine = docker.from_env(timeout=30)
        label = {"label": f"kiln.instance={stack.instance}"}
        leftovers = {
            "containers": len(engine.containers.list(all=True, sparse=True, filters=label)),
            "networks": len(engine.networks.list(filters=label)),
            "running_builds": len(stack.client.builds(status="running")),
            "queued_builds": len(stack.client.builds(status="queued")),
            "workspaces": len(list((var / "work").glob("*"))) if (var / "work").exists() else 0,
        }
        result = {
            "builds": args.builds,
            "workers": args.workers,
            "projects": args.projects,
            "ended": len(ends),
            "statuses": Counter(str(e["status"]) for e in ends.values()),
            "error_codes": Counter(
                str((e.get("error") or {}).get("code")) for e in ends.values() if e.get("error")
            ),  # type: ignore[union-attr]
            "submit_seconds": round(submitted_s, 1),
            "all_ended_seconds": round(all_done_s, 1),
            "submit_429s": refused,
            "health_probes": len(latencies),
            "health_errors": dict(health_errors),
            "health_latency_ms": {
                "p50": round(statistics.median(latencies) * 1000, 1),
                "p95": round(percentile(latencies, 95) * 1000, 1),
                "p99": round(percentile(latencies, 99) * 1000, 1),
                "max": round(max(latencies) * 1000, 1),
            },
            "leftovers": leftovers,
        }
        print(json.dumps(result, indent=2))
    finally:
        stop.set()
        stack.stop()


if __name__ == "__main__":
    main()
