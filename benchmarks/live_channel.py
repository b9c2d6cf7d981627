"""The live channel under many followers, against one API process on 127.0.0.1.

For each size (followers on one build, or spread over many), it opens that many SSE
followers (raw asyncio sockets, so the client stays light), writes timestamped log lines
to the builds' streams as a worker would, and measures: log line → follower latency
(p50/p95/p99 over every follower and line), whether every follower got every event and
``end``, the API process's RSS, Redis connections (CLIENT LIST: all of this stack's, and the
hub's own, named kiln-live), and /healthz p95 while it runs. A last run adds one follower
that never reads, and reports whether it was cut and how the others fared.

    .venv/bin/python -m benchmarks.live_channel [--sizes 100,1000,5000] [--lines 40]

Needs Redis (KILN_TEST_REDIS_URL, a database of its own) and Docker (the stack's health
check); no worker runs: builds stay queued and the benchmark writes their events itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from tests.integration.conftest import REDIS_URL, WRITE_DIST, Stack, launch_stack, node_project
from tests.integration.live_clients import writer

CONNECT_WAVE = 200  # connections opened at once (the listen backlog is finite)


@dataclass
class Follower:
    """One raw SSE follower: what it received and when."""

    build_id: str
    events: int = 0
    latencies: list[float] = field(default_factory=list)
    ended: bool = False
    cut: bool = False
    first: asyncio.Event = field(default_factory=asyncio.Event)


async def follow(
    port: int, f: Follower, rcvbuf: int | None = None, release: asyncio.Event | None = None
) -> None:
    """GET the build's events and read them until ``end`` (or an ``error``); with
    ``release``, read nothing until it is set (a stalled client)."""
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer_ = await asyncio.open_connection(sock=sock, limit=1 << 20)
    request = f"GET /api/v1/builds/{f.build_id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    writer_.write(request.encode())
    await writer_.drain()
    if release is not None:
        f.first.set()
        await release.wait()
    event = ""
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"event: "):
                event = line[7:].strip().decode()
                f.events += 1
                f.first.set()
                if event == "end":
                    f.ended = True
                    return
                if event == "error":
                    f.cut = True
                    return
            elif line.startswith(b"data: ") and event == "log":
                # The stamp opens the text; slicing it out keeps the client light.
                start = line.find(b'"text": "') + 9
                stamp = line[start : line.find(b" ", start)]
                if stamp[:1].isdigit():
                    f.latencies.append(time.time() - float(stamp))
    finally:
        writer_.close()


async def probe(port: int, build_id: str, count: int = 5) -> None:
    """A few followers in a process of their own: their latency is the server's plus a
    lightly loaded client's, unlike the crowd's (one busy client process)."""
    fs = [Follower(build_id) for _ in range(count)]
    tasks = [asyncio.create_task(follow(port, f)) for f in fs]
    await asyncio.gather(*(f.first.wait() for f in fs))
    print("ready", flush=True)
    await asyncio.wait(tasks, timeout=300)
    latencies = [x for f in fs for x in f.latencies]
    print(json.dumps([pct(latencies, q) for q in (0.5, 0.95, 0.99)]), flush=True)


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank), in ms."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


def rss_mb(pid: int) -> float:
    """A process's resident memory."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def redis_connections(url: str) -> tuple[int, int]:
    """(every client on this database, the hub's own) from CLIENT LIST."""
    client = redis.Redis.from_url(url)
    db = str(client.connection_pool.connection_kwargs.get("db", 0))
    mine = [c for c in client.client_list() if c["db"] == db]
    return len(mine) - 1, sum(1 for c in mine if c.get("name") == "kiln-live")  # -1: us


async def probe_health(url: str, stop: asyncio.Event, times: list[float]) -> None:
    """GET /healthz every 100 ms until told to stop."""
    async with httpx.AsyncClient(timeout=30) as client:
        while not stop.is_set():
            t0 = time.perf_counter()
            with contextlib.suppress(httpx.HTTPError):  # a timeout counts as its 30 s
                await client.get(f"{url}/healthz")
            times.append(time.perf_counter() - t0)
            await asyncio.sleep(0.1)


@dataclass(frozen=True)
class Size:
    """One measurement's shape."""

    followers: int
    builds: int
    slow: bool = False  # add a follower that reads nothing until the end
    ticks: int = 40
    lines_per_tick: int = 1
    width: int = 60
    interval_s: float = 0.05

    @property
    def expected(self) -> int:
        return self.ticks * self.lines_per_tick + 2  # the queued status, the lines, end


async def run_size(stack: Stack, builds: list[str], size: Size) -> dict[str, object]:
    """One measurement: ``size.followers`` spread over ``builds``."""
    redis_url = stack.env["KILN_REDIS_URL"]
    bus = writer(redis_url, stack.var_dir)
    fs = [Follower(builds[n % len(builds)]) for n in range(size.followers)]
    tasks: list[asyncio.Task[None]] = []
    for start in range(0, size.followers, CONNECT_WAVE):
        wave = fs[start : start + CONNECT_WAVE]
        tasks += [asyncio.create_task(follow(stack.port, f)) for f in wave]
        await asyncio.wait_for(asyncio.gather(*(f.first.wait() for f in wave)), 120)
    laggard, release = Follower(builds[0]), asyncio.Event()
    stalled = None
    if size.slow:
        stalled = asyncio.create_task(follow(stack.port, laggard, 4096, release))
        await laggard.first.wait()
    prober_process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.live_channel", "--probe", f"{stack.port}:{builds[0]}",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert prober_process.stdout is not None
    await asyncio.wait_for(prober_process.stdout.readline(), 120)
    await asyncio.sleep(1)
    health: list[float] = []
    stop = asyncio.Event()
    prober = asyncio.create_task(probe_health(stack.url, stop, health))
    rss_peak = 0.0
    pad = "x" * size.width
    for n in range(size.ticks):
        for build_id in builds:
            now = f"{time.time():.6f}"
            batch = [f"{now} line {n}.{k} {pad}" for k in range(size.lines_per_tick)]
            bus.logs(build_id, "building", "stdout", batch)
        rss_peak = max(rss_peak, rss_mb(stack.api.pid))  # type: ignore[union-attr]
        await asyncio.sleep(size.interval_s)
    connections = redis_connections(redis_url)
    for build_id in builds:
        bus.publish(build_id, "end", {"id": build_id, "project": "bench"})
    _, pending = await asyncio.wait(tasks, timeout=120)
    stop.set()
    await prober
    for t in pending:
        t.cancel()
    if stalled is not None:
        release.set()
        await asyncio.wait([stalled], timeout=60)
    probe_line = await asyncio.wait_for(prober_process.stdout.readline(), 300)
    await prober_process.wait()
    probe_p50, probe_p95, probe_p99 = json.loads(probe_line)
    latencies = [x for f in fs for x in f.latencies]
    complete = sum(1 for f in fs if f.ended and f.events == size.expected)
    return {
        "followers": size.followers,
        "builds": len(builds),
        "complete": complete,
        "cut": sum(1 for f in fs if f.cut),
        "p50_ms": pct(latencies, 0.50),
        "p95_ms": pct(latencies, 0.95),
        "p99_ms": pct(latencies, 0.99),
        "probe_p50_ms": probe_p50,
        "probe_p95_ms": probe_p95,
        "probe_p99_ms": probe_p99,
        "api_rss_mb": rss_peak,
        "redis_conns": connections[0],
        "hub_conns": connections[1],
        "healthz_p95_ms": pct(health, 0.95),
        "slow": size.slow,
        "slow_cut": laggard.cut if size.slow else None,
        "slow_events": laggard.events if size.slow else None,
        "events_per_follower": size.expected,
    }


async def bench(sizes: list[Size]) -> list[dict[str, object]]:
    """Run every size against one stack (one API process)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the API inherits it
    var = Path(tempfile.mkdtemp(prefix="kiln-live-bench-"))
    # A queue of 500 events (the default is 1000) so that the stalled follower below is cut
    # after ~6 MB: 4 MB of kernel socket buffers plus its queue.
    # Builds stay queued (no worker), so admission's queue caps are raised for the run.
    env = {"KILN_LIVE_QUEUE_LIMIT": "500", "KILN_MAX_QUEUED": "10000"}
    stack = launch_stack(var, workers=0, env={**env, "KILN_MAX_QUEUED_PER_PROJECT": "10000"})
    try:
        results = []
        for size in sizes:
            builds = [
                stack.client.submit_files(node_project(WRITE_DIST), project="bench", fresh=True)
                for _ in range(size.builds)
            ]
            row = await run_size(stack, [b["id"] for b in builds], size)
            print(json.dumps(row), flush=True)
            results.append(row)
        return results
    finally:
        stack.stop()


def table(rows: list[dict[str, object]]) -> str:
    """A Markdown table of the results."""
    head = (
        "| followers | builds | got every event | cut | p50 / p95 / p99 ms (all) "
        "| p50 / p95 / p99 ms (probe) | API RSS MB | Redis conns (hub) | /healthz p95 ms |\n|"
        + "---|"
        * 9
    )
    body = []
    for r in rows:
        name = f"{r['followers']}"
        if r["slow"]:
            name += f" + 1 stalled ({'cut' if r['slow_cut'] else 'NOT cut'})"
        body.append(
            f"| {name} | {r['builds']} | {r['complete']}/{r['followers']} | {r['cut']} "
            f"| {r['p50_ms']:.0f} / {r['p95_ms']:.0f} / {r['p99_ms']:.0f} "
            f"| {r['probe_p50_ms']:.0f} / {r['probe_p95_ms']:.0f} / {r['probe_p99_ms']:.0f} "
            f"| {r['api_rss_mb']:.0f} | {r['redis_conns']} ({r['hub_conns']}) "
            f"| {r['healthz_p95_ms']:.0f} |"
        )
    return "\n".join([head, *body])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000,5000", help="followers on one build")
    parser.add_argument("--spread", default="1000/100", help="followers/builds, or empty")
    parser.add_argument("--lines", type=int, default=40, help="log lines per build")
    parser.add_argument("--slow", type=int, default=20, help="followers beside a stalled one")
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # PORT:BUILD, run by the benchmark
    args = parser.parse_args()
    if args.probe:
        port, build_id = args.probe.split(":")
        asyncio.run(probe(int(port), build_id))
        return
    assert REDIS_URL, "set KILN_TEST_REDIS_URL to a database of your own"
    sizes = [Size(int(n), 1, ticks=args.lines) for n in args.sizes.split(",") if n]
    if args.spread:
        followers, builds = (int(x) for x in args.spread.split("/"))
        sizes.append(Size(followers, builds, ticks=args.lines))
    if args.slow:
        # ~8 MB of 4 KB lines: more than the kernel buffers for the stalled client, so the
        # hub must cut it; the others' latency shows whether it held them up.
        sizes.append(
            Size(args.slow, 1, slow=True, ticks=200, lines_per_tick=10, width=3900, interval_s=0.02)
        )
    rows = asyncio.run(bench(sizes))
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"load average after: {os.getloadavg()}")
    print(table(rows))


if __name__ == "__main__":
    main()
