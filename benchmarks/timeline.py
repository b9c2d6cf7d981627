"""Where one build's time goes: each event's arrival, timed by the client from the submit.

    .venv/bin/python -m benchmarks.timeline [--manager bun] [--project DIR] [--reps 2]

Starts a private Kiln (as ``benchmarks.build_cache`` does), gives the project (default: the
react-ts template) ``--manager``'s own lockfile made on the host, as
``benchmarks.environments`` does, then prints the timeline of one unmeasured build, of
``--reps`` cold builds (no dependency layer) and of ``--reps`` warm ones (one file
changed), each ``--pause`` seconds after the one before ended (as a person's edits come,
and as ``benchmarks.environments`` runs the host's build in between): status changes, Kiln's own ``[kiln]`` lines, and output lines that came more
than 80 ms after the one before (what shows where a step waited).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks import environments as env
from benchmarks.build_cache import Kiln, copy_project, hand_to_sandbox
from benchmarks.build_cache import touch_source as touch

GAP_S = 0.08


def timeline(kiln: Kiln, folder: Path, label: str, pause_s: float = 0.0) -> None:
    """Submit ``folder`` fresh after ``pause_s`` and print its events as they arrive."""
    touch(folder, env.CHANGED, uuid.uuid4().hex)
    time.sleep(pause_s)
    started = time.monotonic()
    build_id = kiln.submit_only(folder)
    print(f"--- {label}: submit answered after {time.monotonic() - started:.3f} s")
    last = 0.0
    for _id, event, data in kiln.client.events(build_id):
        at = time.monotonic() - started
        if event == "log":
            text = str(data.get("text", ""))
            if text.startswith("[kiln]") or at - last > GAP_S:
                print(f"{at:7.3f} {text[:120]}")
            last = at
        else:
            print(f"{at:7.3f} {event} {json.dumps(data)[:100]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manager", default="npm", choices=sorted(env.MANAGERS))
    parser.add_argument("--project", type=Path, default=env.TEMPLATE)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--pause", type=float, default=1.5)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    env.VERSIONS.update(env.image_versions())
    work = Path(tempfile.mkdtemp(prefix="kiln-timeline-"))
    tools, host_env = work / "tools", env.host_env(work)
    tools.mkdir()
    manager = env.MANAGERS[args.manager]
    spec = f"{manager.package}@{env.VERSIONS[manager.name]}"
    env.run(
        ["npm", "install", "--prefix", str(tools / manager.name), "--no-save", spec],
        tools,
        host_env,
    )
    host = env.project_for(args.project, manager, work / "host", tools, host_env)
    npm_cache = work / "npm-cache"
    npm_cache.mkdir()
    hand_to_sandbox(npm_cache)
    kiln = Kiln(work, 1, args.redis_url, npm_cache)
    folder = copy_project(host, work / "kiln")
    try:
        timeline(kiln, folder, "first build (fills the caches)")
        for rep in range(args.reps):
            time.sleep(args.pause)  # the build before lets its layer go, then it is dropped
            kiln.drop_layers()
            timeline(kiln, folder, f"cold {rep + 1}")
        for rep in range(args.reps):
            timeline(kiln, folder, f"warm {rep + 1}", args.pause)
    finally:
        kiln.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
