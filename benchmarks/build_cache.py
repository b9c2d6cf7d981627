"""Kiln against the same work done by hand on the host, side by side, in one run.

    .venv/bin/python benchmarks/build_cache.py [--reps 3] [--workers 2] [--redis-url URL]

Starts its own API and workers (a private var/ folder and queue, real Docker and Redis),
then measures each row on Kiln (client side: submit until the ``end`` event) and on the
host (``npm`` in a copy of the project), and prints a table of medians. Both sides share
one npm cache folder, primed before the first row, so "cold" means: no node_modules (no
layer), packages already downloaded once — the same cache state on both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.cache.gc import collect  # noqa: E402
from orchestrator.cache.layers import layer_store  # noqa: E402
from orchestrator.client import KilnClient, tar_project  # noqa: E402
from orchestrator.settings import Settings  # noqa: E402

PROJECTS = {
    "react-ts template": (ROOT / "templates" / "react-ts", "src/App.tsx"),
    "lovable-style (66 deps)": (ROOT / "benchmarks" / "projects" / "lovable-style", "src/App.tsx"),
}
SANDBOX_UID = 10001
LOG_PROBE = """
const start = Date.now();
const timer = setInterval(() => {
  console.log("probe " + Date.now());
  if (Date.now() - start > 3000) {
    clearInterval(timer);
    const fs = require("fs");
    fs.mkdirSync("dist", { recursive: true });
    fs.writeFileSync("dist/index.html", "<!doctype html><p>probe</p>");
  }
}, 50);
"""


@dataclass
class Row:
    """One line of the table."""

    name: str
    kiln: list[float] = field(default_factory=list)
    host: list[float] = field(default_factory=list)
    target: str = ""
    check: Callable[[float, float | None], bool] | None = None
    unit: str = "s"
    note: str = ""

    def cells(self) -> list[str]:
        kiln = statistics.median(self.kiln) if self.kiln else None
        host = statistics.median(self.host) if self.host else None
        ratio = f"{kiln / host:.2f}x" if kiln is not None and host else ""
        met = ""
        if self.check is not None and kiln is not None:
            met = "yes" if self.check(kiln, host) else "NO"
        return [
            self.name,
            _fmt(kiln, self.unit),
            _fmt(host, self.unit),
            ratio,
            self.target,
            met,
            self.note,
        ]


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if unit == "ms" else f"{value:.2f} s"


# -- the Kiln side ------------------------------------------------------------------------


class Kiln:
    """A private Kiln: one API, N workers, own var/ folder and queue."""

    def __init__(
        self,
        work: Path,
        workers: int,
        redis_url: str,
        npm_cache: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.var = work / "var"
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "KILN_VAR_DIR": str(self.var),
            "KILN_PORT": str(port),
            "KILN_REDIS_URL": redis_url,
            "KILN_QUEUE_NAME": f"kiln-bench-{uuid.uuid4().hex[:8]}",
            "KILN_NPM_CACHE": str(npm_cache),
            "KILN_WARM_TEMPLATES": "false",  # cold rows must be cold
            **(extra_env or {}),
        }
        kiln = str(Path(sys.executable).with_name("kiln"))
        (self.var / "logs").mkdir(parents=True)
        subprocess.run([kiln, "db", "upgrade"], env=self.env, cwd=ROOT, check=True)
        self.processes = [
            subprocess.Popen(
                [kiln, name],
                env=self.env,
                cwd=ROOT,
                stdout=(self.var / "logs" / f"{name}-{i}.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            for i, name in enumerate(["serve"] + ["worker"] * workers)
        ]
        self.client = KilnClient(self.url, timeout=120)
        # One HTTP client kept for every submit, as an app builder's backend keeps one:
        # making an httpx client costs 32-60 ms here (its TLS context), measured.
        self.http = httpx.Client(base_url=self.url, timeout=120)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise SystemExit(f"Kiln did not come up; see {self.var / 'logs'}")
        time.sleep(1)  # let the workers register on the queue

    def settings(self) -> Settings:
        return Settings(var_dir=self.var, _env_file=None)  # type: ignore[call-arg]

    def drop_layers(self) -> None:
        collect(self.settings(), layer_budget_mb=0, npm_budget_mb=1 << 30)

    def submit_dir(self, folder: Path, **params: Any) -> tuple[float, dict[str, Any]]:
        """Submit a folder fresh; (seconds from submit to the end event, end body)."""
        started = time.monotonic()
        end = self.wait(self.submit_only(folder, **params))
        return time.monotonic() - started, end

    def submit_only(self, folder: Path, **params: Any) -> str:
        """Submit a folder fresh (as a tarball); its build's id."""
        reply = self.http.post(
            "/api/v1/builds",
            content=tar_project(folder),
            params={"fresh": "true", **params},
            headers={"Content-Type": "application/gzip"},
        )
        reply.raise_for_status()
        return str(reply.json()["id"])

    def wait(self, build_id: str) -> dict[str, Any]:
        for _id, event, data in self.client.events(build_id):
            if event == "end":
                if data["status"] != "succeeded":
                    raise SystemExit(f"build {build_id} {data['status']}: {data['error']}")
                return data
        raise SystemExit(f"build {build_id}: no end event")

    def stop(self) -> None:
        self.http.close()
        for p in self.processes:
            p.terminate()
        for p in self.processes:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        layer_store(self.settings()).unmount_all()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the host side ------------------------------------------------------------------------


def sh(argv: list[str], cwd: Path, npm_cache: Path) -> float:
    """Run a command on the host; its wall time in seconds (fails loudly)."""
    env = {**os.environ, "npm_config_cache": str(npm_cache), "npm_config_update_notifier": "false"}
    started = time.monotonic()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")
    return time.monotonic() - started


NPM_CI = ["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"]
NPM_BUILD = ["npm", "run", "build"]


def copy_project(source: Path, target: Path) -> Path:
    ignore = shutil.ignore_patterns("node_modules", "dist")
    shutil.copytree(source, target, ignore=ignore, dirs_exist_ok=True)
    return target


def touch_source(folder: Path, relative: str, marker: str) -> None:
    """The one-file change: a comment with a unique marker appended to a source file."""
    path = folder / relative
    path.write_text(path.read_text() + f"\n// kiln-bench {marker}\n")


def hand_to_sandbox(folder: Path) -> None:
    if os.geteuid() == 0:
        for current, dirs, files in os.walk(folder):
            os.chown(current, SANDBOX_UID, SANDBOX_UID)
            for name in dirs + files:
                os.chown(os.path.join(current, name), SANDBOX_UID, SANDBOX_UID)


# -- the rows -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions per row (median)")
    parser.add_argument("--workers", type=int, default=2, help="Kiln workers")
    parser.add_argument("--concurrent", type=int, default=10, help="builds submitted at once")
    parser.add_argument(
        "--redis-url", default=os.environ.get("KILN_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    )
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kiln-bench-"))
    npm_cache = work / "npm-cache"
    host_dirs = {
        name: copy_project(source, work / "host" / str(i))
        for i, (name, (source, _)) in enumerate(PROJECTS.items())
    }
    print(f"work folder {work}; priming the shared npm cache ...", file=sys.stderr)
    for folder in host_dirs.values():
        sh(NPM_CI, folder, npm_cache)
    hand_to_sandbox(npm_cache)
    kiln = Kiln(work, args.workers, args.redis_url, npm_cache)
    rows: list[Row] = []
    try:
        rows += cold_and_warm(kiln, host_dirs, work, npm_cache, args.reps)
        rows.append(identical(kiln, work, args.reps))
        rows.append(concurrent(kiln, host_dirs, work, npm_cache, args.concurrent))
        rows += latency(kiln, work, args.reps)
    finally:
        kiln.stop()
    print_table(rows, args)
    if args.json:
        args.json.write_text(
            json.dumps({r.name: {"kiln": r.kiln, "host": r.host} for r in rows}, indent=1)
        )
    shutil.rmtree(work, ignore_errors=True)


def cold_and_warm(
    kiln: Kiln, host_dirs: dict[str, Path], work: Path, npm_cache: Path, reps: int
) -> list[Row]:
    rows = []
    for name, (source, changed_file) in PROJECTS.items():
        cold = Row(
            f"cold build: {name}",
            target="<= 1.25x host",
            check=lambda k, h: h is not None and k <= 1.25 * h,
        )
        warm = Row(
            f"warm rebuild, one file changed: {name}",
            target="<= 1.15x host",
            check=lambda k, h: h is not None and k <= 1.15 * h,
        )
        host = host_dirs[name]
        folder = copy_project(source, work / "kiln" / name.split()[0])
        for rep in range(reps):
            print(f"{name}: cold {rep + 1}/{reps}", file=sys.stderr)
            shutil.rmtree(host / "node_modules", ignore_errors=True)
            shutil.rmtree(host / "dist", ignore_errors=True)
            cold.host.append(sh(NPM_CI, host, npm_cache) + sh(NPM_BUILD, host, npm_cache))
            kiln.drop_layers()
            touch_source(folder, changed_file, uuid.uuid4().hex)
            seconds, end = kiln.submit_dir(folder)
            assert end["cache"].get("layer") == "miss", end["cache"]
            cold.kiln.append(seconds)
        for rep in range(reps):
            print(f"{name}: warm {rep + 1}/{reps}", file=sys.stderr)
            marker = uuid.uuid4().hex
            touch_source(host, changed_file, marker)
            warm.host.append(sh(NPM_BUILD, host, npm_cache))
            touch_source(folder, changed_file, marker)
            seconds, end = kiln.submit_dir(folder)
            assert end["cache"].get("layer") == "hit", end["cache"]
            warm.kiln.append(seconds)
        rows += [cold, warm]
    return rows


def identical(kiln: Kiln, work: Path, reps: int) -> Row:
    row = Row(
        "identical resubmission (submit -> succeeded)",
        target="< 300 ms",
        check=lambda k, _h: k < 0.3,
        unit="ms",
        note="host: nothing to compare",
    )
    folder = copy_project(PROJECTS["react-ts template"][0], work / "identical")
    touch_source(folder, "src/App.tsx", uuid.uuid4().hex)
    kiln.submit_dir(folder)
    body = tar_project(folder)
    with httpx.Client(base_url=kiln.url, timeout=60) as http:
        for _ in range(max(reps, 5)):
            started = time.monotonic()
            reply = http.post(
                "/api/v1/builds", content=body, headers={"Content-Type": "application/gzip"}
            ).json()
            build = http.get(f"/api/v1/builds/{reply['id']}").json()
            elapsed = time.monotonic() - started
            assert build["status"] == "succeeded" and build["reused_from"], build
            row.kiln.append(elapsed)
    return row


def concurrent(
    kiln: Kiln, host_dirs: dict[str, Path], work: Path, npm_cache: Path, count: int
) -> Row:
    name = "react-ts template"
    source, changed_file = PROJECTS[name]
    row = Row(
        f"{count} builds at once (react-ts, one file changed each, warm layer)",
        note=f"host: the {count} builds one after another",
    )
    folders = []
    for i in range(count):
        folder = copy_project(source, work / "many" / str(i))
        touch_source(folder, changed_file, uuid.uuid4().hex)
        folders.append(folder)
    kiln.submit_dir(folders[0])  # the layer exists (the cold rows made it); make sure
    for folder in folders:
        touch_source(folder, changed_file, uuid.uuid4().hex)
    print(f"{count} builds at once", file=sys.stderr)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=count) as pool:
        ends = list(pool.map(lambda f: kiln.submit_dir(f)[1], folders))
    row.kiln.append(time.monotonic() - started)
    assert all(e["cache"].get("layer") == "hit" for e in ends)
    host = host_dirs[name]
    started = time.monotonic()
    for _ in range(count):
        touch_source(host, changed_file, uuid.uuid4().hex)
        sh(NPM_BUILD, host, npm_cache)
    row.host.append(time.monotonic() - started)
    return row


def latency(kiln: Kiln, work: Path, reps: int) -> list[Row]:
    first = Row(
        "submit -> first log line (idle worker)",
        target="< 1 s",
        check=lambda k, _h: k < 1.0,
        unit="ms",
        note="any log event ([kiln] line)",
    )
    first_output = Row("submit -> first line from the container", unit="ms")
    lag = Row("log line in container -> SSE client (median)", unit="ms")
    lag95 = Row("log line in container -> SSE client (p95)", unit="ms")
    folder = work / "probe"
    folder.mkdir()
    (folder / "build.js").write_text(LOG_PROBE)
    manifest = {"name": "probe", "private": True, "scripts": {"build": "node build.js"}}
    (folder / "package.json").write_text(json.dumps(manifest))
    lags: list[float] = []
    for rep in range(reps):
        (folder / "marker.txt").write_text(str(rep) + uuid.uuid4().hex)
        time.sleep(1.0)  # the workers are idle
        started = time.monotonic()
        http = kiln.http
        reply = http.post(
            "/api/v1/builds",
            content=tar_project(folder),
            headers={"Content-Type": "application/gzip"},
        ).json()
        got_first = got_output = None
        with connect_sse(
            http,
            "GET",
            f"/api/v1/builds/{reply['id']}/events",
            timeout=httpx.Timeout(60, read=120),
        ) as source:
            for sse in source.iter_sse():
                if not sse.data:
                    continue
                now = time.monotonic()
                data = json.loads(sse.data)
                if sse.event == "end":
                    break
                if sse.event != "log":
                    continue
                got_first = got_first or now
                if data.get("source") != "kiln":
                    got_output = got_output or now
                if data["text"].startswith("probe "):
                    lags.append(time.time() * 1000 - int(data["text"].split()[1]))
        assert got_first and got_output
        first.kiln.append(got_first - started)
        first_output.kiln.append(got_output - started)
    lag.kiln.append(statistics.median(lags) / 1000)
    lag95.kiln.append(statistics.quantiles(lags, n=20)[18] / 1000)
    return [first, first_output, lag, lag95]


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    header = ["row", "Kiln", "host by hand", "ratio", "target", "met", "note"]
    table = [header] + [r.cells() for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    print(
        f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{_memory_gib():.0f} GiB; host node {_version(['node', '--version'])}, "
        f"npm {_version(['npm', '--version'])}; Kiln workers {args.workers}; "
        f"median of {args.reps}; load average at the end {os.getloadavg()[0]:.1f}"
    )
    for i, line in enumerate(table):
        print("| " + " | ".join(cell.ljust(widths[j]) for j, cell in enumerate(line)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def _version(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "?"


def _memory_gib() -> float:
    with open("/proc/meminfo") as meminfo:
        return int(meminfo.readline().split()[1]) / 1024 / 1024


if __name__ == "__main__":
    main()
