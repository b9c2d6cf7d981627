"""What Kiln's sandbox policy costs, measured side by side in one run.

For a template and a ~60-dependency project, each row times the same build three ways:
- plain: one `docker run` of `npm ci && npm run build` on Docker's default bridge, same
  image, same npm cache, no proxy, no limits, one container (what a naive backend does);
- kiln runc: submit → succeeded through Kiln (install via the egress proxy, scripts and
  build in fresh containers without network, workspace filesystem, limits);
- kiln gVisor: the same with KILN_BUILD_RUNTIME=runsc.
Kiln submits with `fresh`, so no artifact is reused; after the first repetition the
dependency layer is cached, so the Kiln columns measure warm-layer builds (the first
repetition, a layer miss, shows in the max).
A last pair of rows times `npm ci` with an empty npm cache, directly on the bridge and
through the egress proxy, to show what the proxy adds to downloads.

Run as root on a machine where `./scripts/up` (or `./scripts/test`) has run:
    .venv/bin/python -m benchmarks.sandbox_policy [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.build_cache import Kiln
from orchestrator.sandbox.egress.service import proxy_url
from orchestrator.sandbox.runner import hand_over
from orchestrator.settings import REPO_ROOT, get_settings

PROJECTS = {
    "react-ts template": REPO_ROOT / "templates" / "react-ts",
    "lovable-style (66 deps)": REPO_ROOT / "benchmarks" / "projects" / "lovable-style",
}
NPM_CACHE = REPO_ROOT / "var" / "cache" / "npm"


@contextmanager
def kiln(extra_env: dict[str, str]) -> Iterator[Kiln]:
    """A private Kiln (API + one worker) for the benchmark."""
    with tempfile.TemporaryDirectory(prefix="kiln-bench-") as work:
        stack = Kiln(Path(work), 1, get_settings().redis_url, NPM_CACHE, extra_env)
        try:
            yield stack
        finally:
            stack.stop()


def kiln_build(stack: Kiln, project: Path) -> float:
    """Seconds from submit to succeeded (a fresh build, not a reused artifact)."""
    return stack.submit_dir(project)[0]


def plain_build(
    project: Path,
    *,
    network: str = "bridge",
    proxy: str = "",
    cache: Path = NPM_CACHE,
    command: str = "npm ci && npm run build",
) -> float:
    """Seconds for one plain container running ``command`` on a copy of ``project``."""
    settings = get_settings()
    with tempfile.TemporaryDirectory(prefix="kiln-plain-") as work:
        shutil.copytree(
            project, work, dirs_exist_ok=True, ignore=shutil.ignore_patterns("node_modules", "dist")
        )
        hand_over(Path(work), settings.sandbox_uid)
        hand_over(cache, settings.sandbox_uid)
        ca = str(settings.ca_bundle)
        argv = [
            "docker",
            "run",
            "--rm",
            "--network",
            network,
            "-v",
            f"{work}:/w",
            "-w",
            "/w",
            "--user",
            f"{settings.sandbox_uid}",
            "-e",
            "HOME=/tmp",
            "-v",
            f"{cache}:/cache/npm",
            "-v",
            f"{ca}:/etc/kiln/ca.crt:ro",
            "-e",
            "npm_config_cache=/cache/npm",
            "-e",
            "NODE_EXTRA_CA_CERTS=/etc/kiln/ca.crt",
            "-e",
            "npm_config_cafile=/etc/kiln/ca.crt",
            "-e",
            "npm_config_audit=false",
            "-e",
            "npm_config_fund=false",
        ]
        if proxy:
            argv += ["-e", f"npm_config_https_proxy={proxy}", "-e", f"npm_config_proxy={proxy}"]
        argv += [settings.sandbox_image, "sh", "-c", command]
        started = time.monotonic()
        subprocess.run(argv, check=True, capture_output=True)
        return time.monotonic() - started


def median(values: list[float]) -> str:
    return f"{statistics.median(values):6.1f} s" + (
        f" ({min(values):.1f}-{max(values):.1f})" if len(values) > 1 else ""
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    for name, project in PROJECTS.items():
        plain_build(project)  # warm the shared npm cache for every column
        plain = [plain_build(project) for _ in range(args.repeat)]
        rows.append((name, "plain docker run, bridge, no limits", median(plain)))
        for label, env in (("kiln, runc", {}), ("kiln, gVisor", {"KILN_BUILD_RUNTIME": "runsc"})):
            with kiln(env) as stack:
                times = [kiln_build(stack, project) for _ in range(args.repeat)]
            rows.append((name, label, median(times)))
    lovable = PROJECTS["lovable-style (66 deps)"]
    settings = get_settings()
    proxy = proxy_url(settings)
    with kiln({}):  # its worker runs the egress proxy
        for label, network, via in (
            ("npm ci, empty cache, bridge", "bridge", ""),
            ("npm ci, empty cache, egress proxy", settings.sandbox_network, proxy),
        ):
            times = []
            for _ in range(args.repeat):
                with tempfile.TemporaryDirectory(prefix="kiln-cache-") as cache:
                    times.append(
                        plain_build(
                            lovable,
                            network=network,
                            proxy=via,
                            cache=Path(cache),
                            command="npm ci --ignore-scripts",
                        )
                    )
            rows.append(("lovable-style (66 deps)", label, median(times)))
    width = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    print(f"{'project':<{width[0]}}  {'how':<{width[1]}}  median (min-max) of {args.repeat}")
    for row_project, how, value in rows:
        print(f"{row_project:<{width[0]}}  {how:<{width[1]}}  {value}")


if __name__ == "__main__":
    main()
