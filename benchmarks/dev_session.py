"""Dev sessions: edit -> visible in a real browser, and start -> ready, against raw Vite.

    python -m benchmarks.dev_session [--edits 20] [--redis redis://127.0.0.1:6379/14]

Starts a private Kiln (API and one worker, own var/ folder and queue) and measures, on
the react-ts template with a small stateful component:

- start -> ready, cold (no dependency layer: the session makes it) and warm (layer there);
- edit -> visible: Playwright drives Debian's Chromium on the dev URL; each of N edits is a
  PATCH, and the time is from sending it to the new text in the page's DOM (the page's own
  ``hmr`` event latency, PATCH arrival -> applied update, is reported beside it);
- the same N edits made on disk to a Vite dev server run by hand on the host (``npm ci`` on
  the host, ``vite --port``), timed the same way in the same browser;
- a dependency added: one PATCH of package.json (a new dependency) and of the component
  that imports it, to its text in the page (install through the proxy, restart, reload);
- memory of an idle session (the container's own cgroup figure, ten seconds after
  ``ready``) and a build's time with ``--idle-sessions`` idle sessions beside it, against
  the same build with none.

``--project lovable`` runs the rows on the 66-dependency project (its files as a tarball,
``src/App.tsx`` and ``src/Counter.tsx`` replaced by the counter) instead of the template.
Prints a Markdown table (and JSON with --json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import docker
import httpx

from benchmarks.build_cache import ROOT, Kiln, _free_port
from orchestrator.client import tar_project

PROJECTS = {
    "react-ts": ROOT / "templates" / "react-ts",
    "lovable": ROOT / "benchmarks" / "projects" / "lovable-style",
}
TEMPLATE = PROJECTS["react-ts"]
WITH_DEPENDENCY = """import { useState } from 'react'
import ms from 'ms'
export default function Counter() {
  const [n, setN] = useState(0)
  return <button id="count" onClick={() => setN(n + 1)}>LABEL {ms(60000)} {n}</button>
}
"""
COUNTER = """import { useState } from 'react'
export default function Counter() {
  const [n, setN] = useState(0)
  return <button id="count" onClick={() => setN(n + 1)}>LABEL {n}</button>
}
"""
APP = "import Counter from './Counter'\nexport default function App() { return <Counter /> }\n"
ARGS = ["--no-sandbox", "--host-resolver-rules=MAP *.preview.localhost 127.0.0.1"]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def session_folder(work: Path, source: Path) -> Path:
    """The project a session starts from: ``source`` with the counter as its app."""
    folder = work / f"session-{source.name}"
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("node_modules", "dist"))
    (folder / "src" / "App.tsx").write_text(APP)
    (folder / "src" / "Counter.tsx").write_text(COUNTER.replace("LABEL", "v0"))
    return folder


def start_to_ready(http: httpx.Client, project: str, folder: Path) -> float:
    """Seconds from the start request (the folder as a tarball) to ``ready``."""
    began = time.monotonic()
    reply = http.post(
        f"/api/v1/projects/{project}/dev",
        content=tar_project(folder),
        headers={"Content-Type": "application/gzip"},
    )
    reply.raise_for_status()
    while True:
        status = http.get(f"/api/v1/projects/{project}/dev").json()["status"]
        if status == "ready":
            return time.monotonic() - began
        if status in ("failed", "stopped"):
            raise SystemExit(f"session {project} {status}")
        time.sleep(0.05)


def stop(http: httpx.Client, project: str) -> None:
    http.delete(f"/api/v1/projects/{project}/dev")
    while http.get(f"/api/v1/projects/{project}/dev").json()["status"] != "stopped":
        time.sleep(0.1)


def time_edits(page: Any, edits: int, apply: Any) -> list[float]:
    """Milliseconds from each edit to its text in the page."""
    times = []
    for i in range(1, edits + 1):
        label = f"e{i}"
        began = time.perf_counter()
        apply(COUNTER.replace("LABEL", label))
        page.wait_for_function(
            f"document.querySelector('#count')?.textContent.startsWith('{label} ')",
            polling="raf",
        )
        times.append((time.perf_counter() - began) * 1000)
        time.sleep(0.3)  # let the dev server settle between edits, as a person typing would
    return times


def follow_hmr(url: str, seen: list[int]) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the stack stops under it at the end
        _read_hmr(url, seen)


def _read_hmr(url: str, seen: list[int]) -> None:
    with httpx.stream("GET", url, timeout=httpx.Timeout(30, read=None)) as response:
        event = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "hmr":
                seen.append(int(json.loads(line[6:])["latency_ms"]))


def kiln_edits(kiln: Kiln, project: str, edits: int, browser: Any) -> tuple[list[float], list[int]]:
    port = kiln.url.rsplit(":", 1)[1]
    hmr: list[int] = []
    threading.Thread(
        target=follow_hmr,
        args=(f"{kiln.url}/api/v1/projects/{project}/dev/events", hmr),
        daemon=True,
    ).start()
    page = browser.new_page()
    page.goto(f"http://dev--{project}.preview.localhost:{port}/")
    page.wait_for_selector("#count", timeout=120_000)
    with httpx.Client(base_url=kiln.url, timeout=30) as http:

        def apply(text: str) -> None:
            http.patch(
                f"/api/v1/projects/{project}/dev/files", json={"files": {"src/Counter.tsx": text}}
            ).raise_for_status()

        times = time_edits(page, edits, apply)
    time.sleep(0.5)
    page.close()
    return times, hmr


def dependency_added(kiln: Kiln, project: str, folder: Path, browser: Any) -> float | None:
    """Seconds from the PATCH that adds a dependency (and uses it) to its text in the page."""
    port = kiln.url.rsplit(":", 1)[1]
    page = browser.new_page()
    page.goto(f"http://dev--{project}.preview.localhost:{port}/")
    page.wait_for_selector("#count", timeout=120_000)
    manifest = json.loads((folder / "package.json").read_text())
    manifest.setdefault("dependencies", {})["ms"] = "^2.1.3"
    began = time.monotonic()
    with httpx.Client(base_url=kiln.url, timeout=60) as http:
        http.patch(
            f"/api/v1/projects/{project}/dev/files",
            json={
                "files": {
                    "package.json": json.dumps(manifest, indent=2),
                    "src/Counter.tsx": WITH_DEPENDENCY.replace("LABEL", "dep"),
                }
            },
        ).raise_for_status()
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            "document.querySelector('#count')?.textContent.startsWith('dep 1m ')",
            polling=100,
            timeout=300_000,
        )
    except PlaywrightTimeout:
        with httpx.Client(base_url=kiln.url, timeout=60) as http:
            session = http.get(f"/api/v1/projects/{project}/dev").json()
        print(f"the added dependency never showed: session {session}", file=sys.stderr)
        return None
    finally:
        page.close()
    return time.monotonic() - began


def idle_memory_mb(project: str) -> float:
    """The session container's memory (its cgroup's usage less page cache), in MB."""
    client = docker.from_env()
    (container,) = client.containers.list(filters={"label": [f"kiln.project={project}"]})
    stats = container.stats(stream=False)["memory_stats"]
    cache = stats.get("stats", {}).get(
        "total_inactive_file", stats.get("stats", {}).get("cache", 0)
    )
    return float(stats["usage"] - cache) / 1e6


def build_beside_idle(
    kiln: Kiln, http: httpx.Client, folder: Path, idle: int
) -> tuple[float, float]:
    """A build's seconds with no session running, then with ``idle`` idle sessions beside."""
    marker = folder / "src" / "marker.ts"
    marker.write_text("export const m = 0\n")
    kiln.submit_dir(folder)  # the layer exists after this one; not counted
    marker.write_text(f"export const m = {time.time()}\n")
    alone, _end = kiln.submit_dir(folder)
    for i in range(idle):
        start_to_ready(http, f"idle-{i}", folder)
    time.sleep(5)
    marker.write_text(f"export const m = {time.time()}\n")
    crowded, _end = kiln.submit_dir(folder)
    for i in range(idle):
        stop(http, f"idle-{i}")
    return alone, crowded


def host_edits(work: Path, edits: int, browser: Any, source: Path = TEMPLATE) -> list[float]:
    """The same edits to a Vite dev server run by hand on the host."""
    app = work / "host-app"
    shutil.copytree(source, app, ignore=shutil.ignore_patterns("node_modules", "dist"))
    (app / "src" / "App.tsx").write_text(APP)
    (app / "src" / "Counter.tsx").write_text(COUNTER.replace("LABEL", "v0"))
    subprocess.run(
        ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=app,
        check=True,
        capture_output=True,
    )
    port = _free_port()
    vite = subprocess.Popen(
        [
            "node",
            "node_modules/vite/bin/vite.js",
            "--port",
            str(port),
            "--strictPort",
            "--host",
            "127.0.0.1",
        ],
        cwd=app,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        page = browser.new_page()
        deadline = time.monotonic() + 60
        while True:
            try:
                page.goto(f"http://127.0.0.1:{port}/")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        page.wait_for_selector("#count", timeout=120_000)

        def apply(text: str) -> None:
            target = app / "src" / "Counter.tsx"
            beside = target.with_suffix(".tmp")
            beside.write_text(text)
            os.replace(beside, target)

        return time_edits(page, edits, apply)
    finally:
        vite.terminate()
        vite.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--project", choices=sorted(PROJECTS), default="react-ts")
    parser.add_argument("--idle-sessions", type=int, default=6)
    parser.add_argument(
        "--redis", default=os.environ.get("KILN_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    source = PROJECTS[args.project]
    with tempfile.TemporaryDirectory(prefix="kiln-dev-bench-") as tmp:
        work = Path(tmp)
        folder = session_folder(work, source)
        kiln = Kiln(
            work,
            workers=1,
            redis_url=args.redis,
            npm_cache=work / "npm-cache",
            extra_env={"KILN_DEV_MAX_SESSIONS": str(args.idle_sessions + 2)},
        )
        results: dict[str, Any] = {"load_average": os.getloadavg(), "project": args.project}
        try:
            with httpx.Client(base_url=kiln.url, timeout=60) as http:
                time.sleep(3)  # the dev worker announces itself
                results["start_cold_s"] = start_to_ready(http, "bench-cold", folder)
                stop(http, "bench-cold")
                results["start_warm_s"] = start_to_ready(http, "bench", folder)
                time.sleep(10)
                results["idle_memory_mb"] = idle_memory_mb("bench")
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                kiln_times, hmr = kiln_edits(kiln, "bench", args.edits, browser)
                host_times = host_edits(work, args.edits, browser, source)
                results["dependency_added_s"] = dependency_added(kiln, "bench", folder, browser)
                browser.close()
            with httpx.Client(base_url=kiln.url, timeout=60) as http:
                stop(http, "bench")
                alone, crowded = build_beside_idle(kiln, http, folder, args.idle_sessions)
                results |= {"build_alone_s": alone, "build_beside_idle_s": crowded}
        finally:
            kiln.stop()
    results |= {
        "kiln_edit_ms": kiln_times,
        "kiln_hmr_latency_ms": hmr,
        "host_edit_ms": host_times,
    }
    if args.json:
        print(json.dumps(results, indent=2))
    print_table(results, args.idle_sessions)


def print_table(results: dict[str, Any], idle: int) -> None:
    """The Markdown table of one run."""
    rows = [
        ("edit -> visible, Kiln dev session", results["kiln_edit_ms"]),
        (
            "  its hmr event latency_ms (PATCH arrival -> applied)",
            [float(v) for v in results["kiln_hmr_latency_ms"]],
        ),
        ("edit -> visible, Vite by hand on the host", results["host_edit_ms"]),
    ]
    print(f"project {results['project']}; load average at start: {results['load_average']}")
    print("| measure | p50 | p95 | n |\n| --- | --- | --- | --- |")
    for name, values in rows:
        if values:
            p50, p95 = statistics.median(values), percentile(values, 95)
            print(f"| {name} | {p50:.0f} ms | {p95:.0f} ms | {len(values)} |")
    singles = [
        ("start -> ready, cold (layer made)", f"{results['start_cold_s']:.1f} s"),
        ("start -> ready, warm layer", f"{results['start_warm_s']:.1f} s"),
        (
            "a dependency added -> visible",
            "did not show (see stderr)"
            if results["dependency_added_s"] is None
            else f"{results['dependency_added_s']:.1f} s",
        ),
        ("memory of an idle session", f"{results['idle_memory_mb']:.0f} MB"),
        ("a warm build, no session running", f"{results['build_alone_s']:.1f} s"),
        (f"the same build beside {idle} idle sessions", f"{results['build_beside_idle_s']:.1f} s"),
    ]
    for name, value in singles:
        print(f"| {name} | {value} | | 1 |")


if __name__ == "__main__":
    main()
