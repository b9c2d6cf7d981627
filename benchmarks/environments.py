"""Build environments: one project per package manager, Kiln against the same work by hand.

    .venv/bin/python -m benchmarks.environments [--reps 3] [--only pnpm,bun] [--json FILE]

For each manager Kiln offers (npm, pnpm, yarn classic, yarn berry, bun) the react-ts
template gets that manager's own lockfile, made on the host with the manager version the
sandbox image pins; the 66-dependency project gets npm's, pnpm's and bun's. Each project
carries ``.nvmrc`` 20, so Kiln builds on Node 20, the host's Node. Rows, as in
``benchmarks.build_cache``:

- cold: no dependency layer, the manager's package cache or store already filled once on
  each side (Kiln by one unmeasured build, the host by making the lockfile), then install
  from the lockfile, frozen, and build; on the host ``rm -rf node_modules dist`` and the
  same frozen install and ``<manager> run build``;
- warm: one source file changed; Kiln reuses the layer when the manager has one, the host
  keeps its ``node_modules`` and runs only the build.

Kiln's side is timed client side, submit until the ``end`` event. Medians of ``--reps``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker

from benchmarks.build_cache import Kiln, Row, copy_project, hand_to_sandbox, print_table
from benchmarks.build_cache import touch_source as touch
from orchestrator.project.environment import Manager
from orchestrator.sandbox.image.toolchains import image_offer
from orchestrator.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "templates" / "react-ts"
LOVABLE = ROOT / "benchmarks" / "projects" / "lovable-style"
CHANGED = "src/App.tsx"
IGNORED = "node_modules\ndist\n.yarn\n.pnp.*\n"


@dataclass(frozen=True)
class HostManager:
    """One manager on the host: how to install from a lockfile, frozen, and build."""

    name: str
    package: str
    entry: str  # the manager's executable inside its npm package
    lockfile: str
    frozen: tuple[str, ...]
    lock: tuple[str, ...]  # makes the lockfile (and fills the host's cache)

    def argv(self, tools: Path, *args: str) -> list[str]:
        executable = tools / self.name / "node_modules" / self.package / self.entry
        return [str(executable), *args] if self.name == "bun" else ["node", str(executable), *args]


def image_versions() -> dict[str, str]:
    """Each manager's version in the sandbox image, read from the image's own labels."""
    offer = image_offer(docker.from_env(), Settings(_env_file=None).sandbox_image)  # type: ignore[call-arg]
    return {m.value: v for m, v in offer.managers.items() if m in set(Manager)}


VERSIONS: dict[str, str] = {}


def _version(kiln_name: str) -> str:
    return VERSIONS[kiln_name]


MANAGERS = {
    "npm": HostManager(
        "npm",
        "npm",
        "bin/npm-cli.js",
        "package-lock.json",
        ("ci", "--prefer-offline", "--no-audit", "--no-fund"),  # as Kiln's layer install
        ("install",),
    ),
    "pnpm": HostManager(
        "pnpm",
        "pnpm",
        "bin/pnpm.cjs",
        "pnpm-lock.yaml",
        ("install", "--frozen-lockfile", "--prefer-offline"),
        ("install",),
    ),
    "yarn-classic": HostManager(
        "yarn-classic",
        "yarn",
        "bin/yarn.js",
        "yarn.lock",
        ("install", "--frozen-lockfile", "--prefer-offline"),
        ("install",),
    ),
    "yarn-berry": HostManager(
        "yarn-berry",
        "@yarnpkg/cli-dist",
        "bin/yarn.js",
        "yarn.lock",
        ("install", "--immutable"),
        ("install",),
    ),
    "bun": HostManager(
        "bun",
        "@oven/bun-linux-x64",
        "bin/bun",
        "bun.lock",
        ("install", "--frozen-lockfile"),
        ("install",),
    ),
}
PAIRS = [("react-ts", TEMPLATE, m) for m in MANAGERS] + [
    ("66 deps", LOVABLE, m) for m in ("npm", "pnpm", "bun")
]


def host_env(work: Path) -> dict[str, str]:
    """The host's managers: their caches in the benchmark's folder; berry with node_modules."""
    return {
        **os.environ,
        "npm_config_cache": str(work / "host-cache" / "npm"),
        "npm_config_store_dir": str(work / "host-cache" / "pnpm"),
        "npm_config_update_notifier": "false",
        "YARN_CACHE_FOLDER": str(work / "host-cache" / "yarn"),
        "YARN_GLOBAL_FOLDER": str(work / "host-cache" / "yarn-berry"),
        "YARN_NODE_LINKER": "node-modules",
        "YARN_ENABLE_TELEMETRY": "0",
        "BUN_INSTALL_CACHE_DIR": str(work / "host-cache" / "bun"),
    }


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Run a host command; its wall time in seconds (fails loudly)."""
    started = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed in {cwd}:\n{done.stdout}\n{done.stderr}")
    return time.monotonic() - started


def install_tools(tools: Path, env: dict[str, str]) -> None:
    """Each manager at the version the sandbox image pins, in its own folder."""
    for manager in MANAGERS.values():
        spec = f"{manager.package}@{_version(manager.name)}"
        run(
            [
                "npm",
                "install",
                "--prefix",
                str(tools / manager.name),
                "--no-save",
                "--no-audit",
                "--no-fund",
                spec,
            ],
            tools,
            env,
        )


def project_for(
    source: Path, manager: HostManager, folder: Path, tools: Path, env: dict[str, str]
) -> Path:
    """A copy of ``source`` with only ``manager``'s lockfile, made on the host."""
    copy_project(source, folder)
    for name in ("package-lock.json", "pnpm-lock.yaml", "yarn.lock", "bun.lock", "bun.lockb"):
        (folder / name).unlink(missing_ok=True)
    (folder / ".nvmrc").write_text("20\n")
    (folder / ".gitignore").write_text(IGNORED)
    run(manager.argv(tools, *manager.lock), folder, env)
    if not (folder / manager.lockfile).is_file():
        raise SystemExit(f"{manager.name} wrote no {manager.lockfile} in {folder}")
    return folder


@dataclass(frozen=True)
class Bench:
    """What every row shares: the Kiln under test, the host's managers, the work folder."""

    kiln: Kiln
    tools: Path
    env: dict[str, str]
    work: Path
    reps: int


def measure(bench: Bench, name: str, host: Path, manager: HostManager) -> list[Row]:
    """The cold and warm rows of one project under one manager."""
    kiln, tools, env, work, reps = bench.kiln, bench.tools, bench.env, bench.work, bench.reps
    label = f"{name}, {manager.name} {_version(manager.name)}"
    cold = Row(
        f"cold build: {label}",
        target="<= 1.15x host",
        check=lambda k, h: h is not None and k <= 1.15 * h,
    )
    warm = Row(
        f"warm rebuild, one file changed: {label}",
        target="<= 1.10x host",
        check=lambda k, h: h is not None and k <= 1.10 * h,
    )
    folder = copy_project(host, work / "kiln" / f"{name.split()[0]}-{manager.name}")
    touch(folder, CHANGED, uuid.uuid4().hex)
    kiln.submit_dir(folder)  # fills Kiln's cache or store for this manager; not counted
    outcomes: set[str] = set()
    for rep in range(reps):
        print(f"{label}: cold {rep + 1}/{reps}", file=sys.stderr)
        shutil.rmtree(host / "node_modules", ignore_errors=True)
        shutil.rmtree(host / "dist", ignore_errors=True)
        cold.host.append(
            run(manager.argv(tools, *manager.frozen), host, env)
            + run(manager.argv(tools, "run", "build"), host, env)
        )
        kiln.drop_layers()
        touch(folder, CHANGED, uuid.uuid4().hex)
        seconds, end = kiln.submit_dir(folder)
        check_environment(end, manager)
        cold.kiln.append(seconds)
    for rep in range(reps):
        print(f"{label}: warm {rep + 1}/{reps}", file=sys.stderr)
        marker = uuid.uuid4().hex
        touch(host, CHANGED, marker)
        warm.host.append(run(manager.argv(tools, "run", "build"), host, env))
        touch(folder, CHANGED, marker)
        seconds, end = kiln.submit_dir(folder)
        outcomes.add(str(end["cache"].get("layer")))
        warm.kiln.append(seconds)
    warm.note = "layer " + "/".join(sorted(outcomes))
    return [cold, warm]


def check_environment(end: dict[str, object], manager: HostManager) -> None:
    """The build really ran on Node 20 with this manager (else the row means nothing)."""
    environment = end.get("environment") or {}
    assert isinstance(environment, dict), end
    node, used = str(environment.get("node", "")), str(environment.get("package_manager", ""))
    command = manager.name.split("-")[0]
    if not node.startswith("20.") or not used.startswith(f"{command}@"):
        raise SystemExit(f"the build used node {node!r} and {used!r}, not 20 and {command}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions per row (median)")
    parser.add_argument("--workers", type=int, default=1, help="Kiln workers")
    parser.add_argument("--only", default="", help="managers to run, comma-separated")
    parser.add_argument(
        "--redis-url", default=os.environ.get("KILN_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    )
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args()
    wanted = set(filter(None, args.only.split(","))) or set(MANAGERS)
    VERSIONS.update(image_versions())

    work = Path(tempfile.mkdtemp(prefix="kiln-bench-env-"))
    tools, env = work / "tools", host_env(work)
    tools.mkdir()
    print(f"work folder {work}; installing the managers and making lockfiles ...", file=sys.stderr)
    install_tools(tools, env)
    hosts = {
        (name, manager): project_for(
            source, MANAGERS[manager], work / "host" / f"{name.split()[0]}-{manager}", tools, env
        )
        for name, source, manager in PAIRS
        if manager in wanted
    }
    npm_cache = work / "kiln-npm-cache"
    npm_cache.mkdir()
    hand_to_sandbox(npm_cache)
    kiln = Kiln(work, args.workers, args.redis_url, npm_cache)
    bench = Bench(kiln, tools, env, work, args.reps)
    rows: list[Row] = []
    try:
        for (name, manager), host in hosts.items():
            rows += measure(bench, name, host, MANAGERS[manager])
    finally:
        kiln.stop()
    print_table(rows, args)
    if args.json:
        args.json.write_text(
            json.dumps({r.name: {"kiln": r.kiln, "host": r.host} for r in rows}, indent=1)
        )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
