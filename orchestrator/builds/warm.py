"""Warm start: make the bundled templates' dependency layers before anyone asks for them.

A starting worker runs this in a separate process (``kiln cache warm``), so it takes builds
at once; a build that needs a layer being made here waits for it (the layer's lock) rather
than making it twice.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
from pathlib import Path

from orchestrator.builds.provision import LayerProvider
from orchestrator.cache.layers import layer_store
from orchestrator.cache.resolutions import ResolutionStore
from orchestrator.context import Context
from orchestrator.errors import BuildError
from orchestrator.project.input import parse_package_json
from orchestrator.project.npm import NPM_LOCKFILES
from orchestrator.project.templates import list_templates, load_template
from orchestrator.sandbox.step import Limits, Step
from orchestrator.settings import Settings

log = logging.getLogger("kiln.cache.warm")
PR_SET_PDEATHSIG = 1
WARM_LABEL = "warm"  # the kiln.build label of warm-up containers


def warm_templates(settings: Settings) -> dict[str, str]:
    """Make every bundled template's layer that is missing; template → hit/miss/private/error."""
    ctx = Context(settings)
    limits = Limits(settings.timeout_s, settings.memory_mb, settings.cpus)

    def run(step: Step, workspace: Path) -> None:
        result = ctx.sandbox.run_step(
            step,
            build_id=WARM_LABEL,
            limits=limits,
            workspace=workspace,
            on_output=lambda _stream, lines: None,
            should_cancel=lambda: False,
        )
        if not result.ok:
            raise BuildError(f"{step.name} exited {result.exit_code}", code=step.failure_code)

    provider = LayerProvider(
        layers=layer_store(settings),
        resolutions=ResolutionStore(settings.resolutions_dir, settings.resolution_ttl_s),
        toolchain=ctx.sandbox.toolchain(),
        registry=settings.npm_registry,
        run=run,
        note=lambda text: log.info("%s", text),
        wait=lambda: None,
        prepare_dir=ctx.sandbox.prepare_dir,
    )
    outcomes = {}
    for template in list_templates(settings.templates_dir):
        name = template["name"]
        files = load_template(settings.templates_dir, name)
        lockfiles = {n: files[n] for n in NPM_LOCKFILES if n in files}
        top_level = sorted({path.split("/", 1)[0] for path in files})
        try:
            use = provider.provide(parse_package_json(files), lockfiles, top_level)
        except BuildError as exc:
            log.warning("warm start: template %s failed: %s", name, exc.message)
            outcomes[name] = "error"
            continue
        if use is None:
            outcomes[name] = "private"
            continue
        use.release()
        outcomes[name] = use.outcome
        log.info("warm start: template %s layer %s (%s)", name, use.key[:12], use.outcome)
    return outcomes


def _die_with_parent() -> None:
    # A warm-up must not outlive the worker that started it (SIGTERM when the parent dies).
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_in_background() -> subprocess.Popen[bytes]:
    """Run ``warm_templates`` in a child process (never in the worker: RQ forks it per job)."""
    code = "from orchestrator.builds.warm import main; main()"
    return subprocess.Popen([sys.executable, "-c", code], preexec_fn=_die_with_parent)


def main() -> None:
    """Entry point of the background warm-up process."""
    from orchestrator.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    warm_templates(get_settings())
