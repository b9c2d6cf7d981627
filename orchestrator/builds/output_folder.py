"""Which folder of the workspace a build publishes: ``dist/``, else what the build says.

The fast path is unchanged: a ``dist/index.html`` means ``dist/``. When there is none,
the project's own Vite is asked for its resolved ``build.outDir`` (``probe_step``: a node
script in a container like the build's, offline, with the build's limits; it loads the
project's vite.config, which the build step already ran, so it runs nothing new), and
then the folder a detected framework writes static files to. The first candidate with an
``index.html`` is published; none means a message that names the folders looked at and,
for a known framework, what to change. Pure: the pipeline runs the probe and looks at
the folders (``storage.artifacts.output_folder``).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.errors import BuildError, ErrorCode
from orchestrator.project.frameworks import Framework
from orchestrator.records.models import Phase
from orchestrator.sandbox.step import Limits, Step
from orchestrator.storage.layout import DIST

PROBE_STEP = "output-dir"
PROBE_MARKER = "kiln-output-dir: "
PROBE_TIMEOUT_S = 120  # loading a config takes seconds; never the whole build's time again
# Said in every "no output" message; the diagnosis recognises the message by it.
MISSING_OUTPUT = "wrote no index.html"
MAX_FOLDER_CHARS = 200  # the probe's answer goes into messages: bounded

# Run with cwd /workspace: a bare import resolves from the project's node_modules. The
# client environment's outDir first (Vite 6+ environments, e.g. TanStack Start writes
# dist/client), else build.outDir; relative to the workspace, as the build wrote it.
PROBE_SCRIPT = """
const path = await import("node:path");
let vite;
try { vite = await import("vite"); } catch { process.exit(0); }
const config = await vite.resolveConfig({}, "build", "production", "production");
const outDir = config.environments?.client?.build?.outDir ?? config.build.outDir;
const folder = path.relative(process.cwd(), path.resolve(config.root, outDir));
console.log("kiln-output-dir: " + JSON.stringify({ outDir: folder }));
process.exit(0);
"""


def probe_step() -> Step:
    """The step that asks the project's Vite for its resolved ``build.outDir``."""
    return Step(
        PROBE_STEP,
        Phase.PUBLISHING,
        # One line: the log shows the command, and a script is no reading there.
        ["node", "--input-type=module", "-e", " ".join(PROBE_SCRIPT.split())],
        network=False,
        failure_code=ErrorCode.BUILD_FAILED,
    )


def probe_limits(limits: Limits) -> Limits:
    """The build's limits, with a shorter time: the probe only loads a config."""
    return Limits(min(limits.timeout_s, PROBE_TIMEOUT_S), limits.memory_mb, limits.cpus)


def reported_out_dir(lines: Iterable[str]) -> str | None:
    """The ``outDir`` the probe printed (its last report), or None when it printed none."""
    found = None
    for line in lines:
        text = line.strip()
        if not text.startswith(PROBE_MARKER):
            continue
        try:
            value = json.loads(text[len(PROBE_MARKER) :]).get("outDir")
        except (ValueError, AttributeError):
            continue
        if isinstance(value, str):
            found = value
    return found


def inside_workspace(reported: str) -> str:
    """``reported`` as a clean relative folder of the workspace; ``unsafe_output`` if it
    points outside it (absolute, ``..``) or is the workspace itself."""
    normal = posixpath.normpath(reported.replace("\\", "/")) if reported else "."
    if posixpath.isabs(normal) or normal == ".." or normal.startswith("../"):
        raise BuildError(
            f"build.outDir is {reported[:MAX_FOLDER_CHARS]!r}, outside the project: Kiln "
            "publishes only a folder inside the project (e.g. dist)",
            code=ErrorCode.UNSAFE_OUTPUT,
        )
    if len(normal) > MAX_FOLDER_CHARS:
        raise BuildError(
            f"build.outDir is longer than {MAX_FOLDER_CHARS} characters",
            code=ErrorCode.UNSAFE_OUTPUT,
        )
    if normal == ".":
        raise BuildError(
            "build.outDir is the project folder itself: Kiln publishes a folder inside it "
            "(e.g. dist), never the sources and node_modules",
            code=ErrorCode.UNSAFE_OUTPUT,
        )
    return normal


@dataclass(frozen=True)
class Candidate:
    """A folder that may hold the build's output, and why Kiln looks there."""

    folder: str  # relative to the workspace, POSIX
    why: str  # "build.outDir", "adapter-static's folder", …


def candidates(out_dir: str | None, framework: Framework | None) -> list[Candidate]:
    """Where to look when ``dist/index.html`` is missing, in order, without repeats.

    ``out_dir``: the probe's (already checked by ``inside_workspace``), None when the project
    has no Vite or the probe said nothing.
    """
    found = [Candidate(DIST, "Kiln's default")]
    if out_dir is not None:
        found.insert(0, Candidate(out_dir, "build.outDir of the Vite config"))
    if framework is not None and framework.static_folder is not None:
        found.append(Candidate(framework.static_folder, "the framework's static folder"))
    unique: dict[str, Candidate] = {}
    for candidate in found:
        unique.setdefault(candidate.folder, candidate)
    return list(unique.values())


def missing_output_message(looked: list[Candidate], framework: Framework | None) -> str:
    """The failure when no candidate has an index.html: where Kiln looked, what to change."""
    where = ", ".join(f"{c.folder}/ ({c.why})" for c in looked)
    if len(looked) > 1:
        where = f"any of the folders Kiln looked in: {where}"
    message = f"the build finished but {MISSING_OUTPUT} in {where}"
    if framework is None:
        return (
            f"{message}; Kiln publishes a static build, the folder of build.outDir in the "
            "Vite config (dist/ by default), with an index.html"
        )
    return f"{message}. This is a {framework.name} app: {framework.advice}"
