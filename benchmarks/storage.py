"""Publishing to and serving previews from the object store, against a local folder and nginx.

    .venv/bin/python -m benchmarks.storage --dist DIST [--reps 5] [--duration 8] [--workers 2]

DIST is a built ``dist/`` (the 66-dependency project: ``npm ci && npx vite build`` in a copy
of benchmarks/projects/lovable-style). Starts its own SeaweedFS (``weed server -s3``), Kiln
API processes (``kiln serve``, a private var/ folder, no Docker or workers needed: builds
are published straight through ``BuildStorage``) and a Debian nginx serving DIST from disk,
all on loopback, and prints:

- publish: the median time of ``BuildStorage.publish`` of DIST into the folder store (the
  embedded default: a move) and into S3 (every file uploaded, then the manifest);
- serving: ``wrk -t2 -c32`` requests/s and latency p50/p95 for ``index.html`` and the
  largest JS asset, from nginx, Kiln on the folder store and Kiln on S3 with its cache warm;
- time to first byte of a cold S3 preview: each of N freshly published builds (distinct
  bytes, so neither the memory nor the disk cache has them) asked once for each row.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from orchestrator.settings import REPO_ROOT, Settings
from orchestrator.storage.artifacts import OutputLimits
from orchestrator.storage.build_storage import BuildStorage
from orchestrator.storage.objects import LocalObjects, StoreConfig, open_objects
from tests.integration.faults import free_port
from tests.integration.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedS3

LIMITS = OutputLimits(max_bytes=500 * 1024 * 1024, max_files=20_000)
DOMAIN = "preview.localhost"
WRK_SCRIPT = """
wrk.headers["Host"] = "%s"
done = function(summary, latency, requests)
  io.write(string.format("KILN %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), summary.errors.status))
end
"""


def copy_dist(dist: Path, into: Path, marker: str | None = None) -> Path:
    """A fresh copy of DIST (publish takes it over); with ``marker``, distinct bytes."""
    target = into / f"dist-{uuid.uuid4().hex[:8]}"
    shutil.copytree(dist, target)
    if marker:
        with (target / "index.html").open("a") as f:
            f.write(f"<!-- {marker} -->\n")
        for script in target.glob("assets/*.js"):
            with script.open("a") as f:
                f.write(f"\n// {marker}\n")
    return target


def js_asset(dist: Path) -> str:
    """The largest JavaScript file of a dist, relative (the "280 KB JS asset" row)."""
    scripts = sorted(dist.glob("assets/*.js"), key=lambda p: p.stat().st_size)
    return scripts[-1].relative_to(dist).as_posix()


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def publish_times(dist: Path, storage: BuildStorage, reps: int, scratch: Path) -> list[float]:
    times = []
    for _ in range(reps):
        copy = copy_dist(dist, scratch)
        build_id = uuid.uuid4().hex[:16]
        started = time.perf_counter()
        storage.publish(copy, build_id, LIMITS)
        times.append(time.perf_counter() - started)
        shutil.rmtree(copy, ignore_errors=True)
    return times


@contextmanager
def kiln_serve(
    var_dir: Path, env: dict[str, str], workers: int, code: Path | None = None
) -> Iterator[int]:
    """``kiln serve`` on a free port; with ``code``, that checkout's API (one uvicorn process)."""
    port = free_port()
    full = {
        **os.environ,
        "KILN_VAR_DIR": str(var_dir),
        "KILN_PORT": str(port),
        "KILN_SERVE_WORKERS": str(workers),
        "KILN_LOG_FORMAT": "text",
        **env,
    }
    var_dir.mkdir(parents=True, exist_ok=True)
    log = (var_dir / "serve.log").open("ab")
    kiln = str(Path(sys.executable).with_name("kiln"))
    command = [kiln, "serve"]
    if code is not None:
        command = [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port)]
        full["PYTHONPATH"] = str(code)
    process = subprocess.Popen(
        command, env=full, stdout=log, stderr=subprocess.STDOUT, cwd=code or REPO_ROOT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                tail = (var_dir / "serve.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"kiln serve did not start:\n{tail}")
            time.sleep(0.3)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def nginx(dist: Path, scratch: Path) -> Iterator[int]:
    port = free_port()
    folder = scratch / "nginx"
    folder.mkdir()
    config = folder / "nginx.conf"
    config.write_text(
        f"""
worker_processes auto;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
daemon off;
user root;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {folder};
    proxy_temp_path {folder};
    fastcgi_temp_path {folder};
    uwsgi_temp_path {folder};
    scgi_temp_path {folder};
    server {{
        listen 127.0.0.1:{port};
        root {dist};
        location / {{ try_files $uri /index.html; }}
    }}
}}
"""
    )
    process = subprocess.Popen(["nginx", "-c", str(config)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def wrk(port: int, host: str, path: str, duration: int, scratch: Path) -> dict[str, float]:
    script = scratch / f"wrk-{uuid.uuid4().hex[:6]}.lua"
    script.write_text(WRK_SCRIPT % host)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            "-c32",
            f"-d{duration}s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("KILN "))
    requests, duration_us, p50, p95, bad = (int(v) for v in line.split()[1:])
    return {
        "rps": requests / (duration_us / 1e6),
        "p50_ms": p50 / 1000,
        "p95_ms": p95 / 1000,
        "non_2xx": bad,
    }


def ttfb(port: int, host: str, path: str) -> float:
    """Seconds to the response's first byte, on a new connection."""
    with httpx.Client(timeout=30) as client:
        started = time.perf_counter()
        with client.stream("GET", f"http://127.0.0.1:{port}{path}", headers={"Host": host}) as r:
            chunks = r.iter_raw()
            next(chunks, b"")
            elapsed = time.perf_counter() - started
            assert r.status_code == 200, (r.status_code, path)
            for _ in chunks:
                pass
    return elapsed


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, required=True)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--cold", type=int, default=20, help="fresh S3 builds for cold TTFB")
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="kiln serve processes")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of Kiln before this change (git archive), served from the same folder",
    )
    parser.add_argument(
        "--extra-kb",
        type=int,
        default=0,
        help="also measure a JavaScript file of this size added to the dist (e.g. 280)",
    )
    args = parser.parse_args()
    dist: Path = args.dist.resolve()
    asset = js_asset(dist)
    rows = {"index.html": "/", asset: "/" + asset}
    scratch = Path(tempfile.mkdtemp(prefix="kiln-bench-storage-"))
    if args.extra_kb:
        # A copy of DIST with one more asset of that size (the "280 KB JS" row),
        # made from the real bundle's bytes.
        bigger = scratch / "dist-with-extra"
        shutil.copytree(dist, bigger)
        body = (dist / asset).read_bytes()
        extra = f"assets/extra-{args.extra_kb}k.js"
        (bigger / extra).write_bytes(
            (body * (1 + args.extra_kb * 1024 // len(body)))[: args.extra_kb * 1024]
        )
        dist = bigger
        rows[extra] = "/" + extra
    results: dict[str, object] = {
        "files": sum(1 for p in dist.rglob("*") if p.is_file()),
        "bytes": sum(p.stat().st_size for p in dist.rglob("*") if p.is_file()),
        "asset": asset,
        "asset_bytes": (dist / asset).stat().st_size,
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg()[0],
    }
    s3 = SeaweedS3(scratch / "seaweed").start()
    try:
        local_var = scratch / "var-local"
        s3_var = scratch / "var-s3"
        local = BuildStorage(LocalObjects(local_var))
        s3_env = s3.env("bench")
        remote = BuildStorage(
            open_objects(
                StoreConfig(
                    s3_env["KILN_STORAGE_URL"],
                    endpoint=s3.endpoint,
                    region="us-east-1",
                    access_key=ACCESS_KEY,
                    secret_key=SECRET_KEY,
                    threads=Settings().storage_upload_threads,
                ),
                s3_var,
            )
        )
        # Publish: the workspace is its own filesystem in real builds (loop-mounted), so
        # the folder store's "move" is a copy there too; here scratch and var share one.
        local_times = publish_times(dist, local, args.reps, scratch)
        s3_times = publish_times(dist, remote, args.reps, scratch)
        print("publish", local_times, s3_times, flush=True)
        results["publish_ms"] = {
            "local": median_ms(local_times),
            "s3": median_ms(s3_times),
            "local_all": [round(t * 1000, 1) for t in local_times],
            "s3_all": [round(t * 1000, 1) for t in s3_times],
        }
        build = uuid.uuid4().hex[:16]
        local.publish(copy_dist(dist, scratch), build, LIMITS)
        remote.publish(copy_dist(dist, scratch), build, LIMITS)
        host = f"{build}.{DOMAIN}"
        serving: dict[str, dict[str, dict[str, float]]] = {name: {} for name in rows}
        with nginx(dist, scratch) as port:
            for name, path in rows.items():
                serving[name]["nginx"] = wrk(port, host, path, args.duration, scratch)
                print(name, "nginx", serving[name]["nginx"], flush=True)
        if args.baseline:
            with kiln_serve(local_var, {}, 1, code=args.baseline.resolve()) as port:
                for name, path in rows.items():
                    serving[name]["kiln_before"] = wrk(port, host, path, args.duration, scratch)
                    print(name, "kiln_before", serving[name]["kiln_before"], flush=True)
        with kiln_serve(local_var, {}, args.workers) as port:
            for name, path in rows.items():
                ttfb(port, host, path)  # known and in memory from here on
                serving[name]["kiln_local"] = wrk(port, host, path, args.duration, scratch)
                print(name, "kiln_local", serving[name]["kiln_local"], flush=True)
        cold_ids = []
        for i in range(args.cold):
            cold_id = uuid.uuid4().hex[:16]
            remote.publish(copy_dist(dist, scratch, marker=f"cold {i}"), cold_id, LIMITS)
            cold_ids.append(cold_id)
        with kiln_serve(s3_var, s3_env, args.workers) as port:
            cold: dict[str, list[float]] = {name: [] for name in rows}
            for cold_id in cold_ids:
                for name, path in rows.items():
                    cold[name].append(ttfb(port, f"{cold_id}.{DOMAIN}", path))
            results["s3_cold_ttfb_ms"] = {
                name: {"p50": pct(v, 0.5), "p95": pct(v, 0.95)} for name, v in cold.items()
            }
            for name, path in rows.items():
                for _ in range(args.workers * 4):  # each serving process warms its cache
                    ttfb(port, host, path)
                serving[name]["kiln_s3_warm"] = wrk(port, host, path, args.duration, scratch)
        results["serving"] = serving
        results["loadavg_end"] = os.getloadavg()[0]
    finally:
        s3.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print_table(results)


def print_table(results: dict[str, object]) -> None:
    publish = results["publish_ms"]
    assert isinstance(publish, dict)
    print(f"\npublish {results['files']} files, {int(results['bytes']) / 1024:.0f} KiB:")  # type: ignore[call-overload]
    print(f"  folder store {publish['local']:.0f} ms, S3 {publish['s3']:.0f} ms (medians)")
    serving = results["serving"]
    assert isinstance(serving, dict)
    print("\n| file | server | req/s | p50 ms | p95 ms | vs nginx |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, by_server in serving.items():
        base = by_server["nginx"]["rps"]
        for server, row in by_server.items():
            ratio = base / row["rps"] if row["rps"] else float("inf")
            print(
                f"| {name} | {server} | {row['rps']:.0f} | {row['p50_ms']:.2f} | "
                f"{row['p95_ms']:.2f} | {ratio:.1f}x |"
            )
    print(f"\nS3 cold TTFB (ms): {results['s3_cold_ttfb_ms']}")


if __name__ == "__main__":
    main()
