"""pnpm and bun dependency layers: a cold layer build against a miss with a warm store.

    .venv/bin/python benchmarks/manager_layers.py [--reps 2] [--redis-url URL]

Starts its own API and one worker (``build_cache.Kiln``: private var/ folder and queue,
real Docker, Redis and egress proxy) and builds the 66-dependency lovable-style project
with pnpm and with bun, from lockfiles those managers wrote for it
(``projects/lockfiles/lovable-style``). Per manager and repetition, three builds:

- cold: the manager's store (or cache) emptied and the layer evicted: the layer's install
  downloads every package through the proxy;
- warm-store miss: the layer evicted, the store kept: the layer is made again from it;
- hit: the layer mounted, nothing installed.

Each row gives the whole build (client side: submit until the ``end`` event) and the
layer's own install step (its ``layer-install finished in`` line), medians.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.build_cache import Kiln, copy_project  # noqa: E402

PROJECT = ROOT / "benchmarks" / "projects" / "lovable-style"
LOCKFILES = ROOT / "benchmarks" / "projects" / "lockfiles" / "lovable-style"
MANAGERS = {"pnpm": "pnpm-lock.yaml", "bun": "bun.lock"}
INSTALL_LINE = re.compile(r"layer-install finished in ([0-9.]+) s")


def project_for(manager: str, target: Path) -> Path:
    """lovable-style with ``manager``'s lockfile instead of npm's."""
    folder = copy_project(PROJECT, target)
    (folder / "package-lock.json").unlink()
    shutil.copy(LOCKFILES / MANAGERS[manager], folder / MANAGERS[manager])
    return folder


def build(kiln: Kiln, folder: Path, expect: str) -> tuple[float, float | None]:
    """(whole build seconds, layer-install seconds or None) of one fresh build."""
    app = folder / "src" / "App.tsx"
    app.write_text(app.read_text() + f"\n// {uuid.uuid4().hex}\n")  # not identical input
    seconds, end = kiln.submit_dir(folder)
    layer = end.get("cache", {}).get("layer")
    if layer != expect:
        raise SystemExit(f"expected a layer {expect}, got {end.get('cache')}")
    text = "\n".join(
        str(data.get("text", ""))
        for _id, event, data in kiln.client.events(end["id"])
        if event == "log"
    )
    found = INSTALL_LINE.search(text)
    return seconds, float(found.group(1)) if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2, help="repetitions per row (median)")
    parser.add_argument(
        "--redis-url", default=os.environ.get("KILN_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kiln-bench-managers-"))
    npm_cache = work / "npm-cache"
    npm_cache.mkdir()
    os.chown(npm_cache, 10001, 10001)
    kiln = Kiln(work, 1, args.redis_url, npm_cache)
    rows: dict[str, list[tuple[float, float | None]]] = {}
    loads = [Path("/proc/loadavg").read_text().split()[:3]]
    try:
        for manager in MANAGERS:
            folder = project_for(manager, work / "projects" / manager)
            store = npm_cache.parent / manager  # context.manager_cache_dirs
            for _rep in range(args.reps):
                kiln.drop_layers()
                shutil.rmtree(store, ignore_errors=True)
                store.mkdir()
                os.chown(store, 10001, 10001)
                rows.setdefault(f"{manager} cold (empty store, no layer)", []).append(
                    build(kiln, folder, "miss")
                )
                kiln.drop_layers()
                rows.setdefault(f"{manager} miss, warm store", []).append(
                    build(kiln, folder, "miss")
                )
                rows.setdefault(f"{manager} layer hit", []).append(build(kiln, folder, "hit"))
                loads.append(Path("/proc/loadavg").read_text().split()[:3])
    finally:
        kiln.stop()
    print("| row | build (median) | layer-install (median) | every run (build / install) |")
    print("| --- | --- | --- | --- |")
    for name, runs in rows.items():
        total = statistics.median(r[0] for r in runs)
        installs = [r[1] for r in runs if r[1] is not None]
        install = f"{statistics.median(installs):.2f} s" if installs else "—"
        every = ", ".join(f"{r[0]:.1f}/{r[1] if r[1] is not None else '-'}" for r in runs)
        print(f"| {name} | {total:.2f} s | {install} | {every} |")
    print(f"load averages (1/5/15 min) at the start and after each repetition: {loads}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
