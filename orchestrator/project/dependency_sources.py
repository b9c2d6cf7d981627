"""Where a project's dependencies may come from: the registry, or folders inside the project.

Git, tarball-URL and outside-the-project ``file:`` dependencies would need the install
step to reach other hosts (or run ``git``, which a project's ``.npmrc`` can replace), so
they are refused at submit with a message that names the dependency. So is yarn's ``exec:``
protocol anywhere the install reads it (``check_no_exec``): it runs a file while yarn
fetches, in the install container, which runs no project code. Pure functions.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from orchestrator.errors import InputError, UnsupportedDependency
from orchestrator.project.npm import SPEC_FIELDS

GIT_PREFIXES = ("git+", "git://", "github:", "gitlab:", "bitbucket:", "gist:")
LOCAL_PREFIXES = ("file:", "link:")
GITHUB_SHORTHAND = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(#.*)?")
# yarn 2+'s exec: protocol, also URL-encoded inside a patch: range: never part of a longer
# name, and followed by its path (a lockfile's `exec: "npm:^0.2.1"` is the package exec).
EXEC_PROTOCOL = re.compile(r"(?<![\w.-])exec(?::|%3a)(?![\s\"']|$)", re.IGNORECASE | re.MULTILINE)
EXEC_FIELDS = (*SPEC_FIELDS, "resolutions")
# npm rewrites this host to the configured registry, so lockfiles made against it work.
PUBLIC_REGISTRY = "registry.npmjs.org"


def spec_source(spec: str) -> str:
    """Classify a dependency spec: ``registry``, ``local``, ``git`` or ``url``."""
    text = spec.strip()
    if text.startswith("npm:"):  # an alias: npm:real-name@range
        _, _, inner = text[4:].rpartition("@")
        return spec_source(inner) if inner else "registry"
    if text.startswith(LOCAL_PREFIXES) or text.startswith("workspace:"):
        return "local"
    if text.startswith(GIT_PREFIXES) or GITHUB_SHORTHAND.fullmatch(text):
        return "git"
    if "://" in text:
        return "url"
    return "registry"


def inside_project(path: str) -> bool:
    """True when a relative ``file:``/``link:`` path stays inside the project."""
    if path.startswith(("/", "~")) or "\\" in path:
        return False
    normal = posixpath.normpath(path)
    return normal != ".." and not normal.startswith("../")


def inside_project_from(folder: str, path: str) -> bool:
    """True when ``path``, relative to the project's ``folder`` (``front``), stays inside the
    project: ``front`` may use ``file:../shared``, never ``file:../../x``, ``/`` or ``~``."""
    if path.startswith(("/", "~")) or "\\" in path:
        return False
    return inside_project(posixpath.join(folder, path))


def check_manifest(manifest: Mapping[str, object], folder: str = "") -> None:
    """Refuse package.json dependencies that do not come from the registry or the project
    (``folder``: where that package.json is, for its relative ``file:`` paths)."""
    for field in SPEC_FIELDS:
        for name, spec in _specs(manifest.get(field)):
            _check_spec(f"{field}.{name}", spec, folder)


def check_lockfile(raw: bytes | None, registry_hosts: Iterable[str], folder: str = "") -> None:
    """Refuse a package-lock whose packages resolve outside the registry or the project
    (``folder``: where the lockfile is, for its relative links)."""
    if raw is None:
        return
    try:
        lock = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"package-lock.json is not valid JSON: {exc}") from exc
    packages = lock.get("packages") if isinstance(lock, dict) else None
    if not isinstance(packages, dict):
        return  # lockfile v1: npm ci re-resolves from package.json, which was checked
    hosts = {h.lower() for h in registry_hosts} | {PUBLIC_REGISTRY}
    for location, entry in packages.items():
        if not isinstance(entry, dict):
            raise InputError(f"package-lock.json: entry {location!r} is not an object")
        resolved = entry.get("resolved")
        if not isinstance(resolved, str):
            continue
        where = f"package-lock.json {location or '(root)'}"
        if entry.get("link") is True or resolved.startswith(LOCAL_PREFIXES):
            path = resolved.split(":", 1)[1] if resolved.startswith(LOCAL_PREFIXES) else resolved
            if not inside_project_from(folder, path):
                raise UnsupportedDependency(f"{where} links to {resolved!r}, outside the project")
            continue
        url = urlsplit(resolved)
        if url.scheme != "https" or (url.hostname or "").lower() not in hosts:
            raise UnsupportedDependency(
                f"{where} resolves to {resolved[:200]!r}; Kiln installs only from "
                f"{', '.join(sorted(hosts))} over HTTPS"
            )


def check_no_exec(files: Mapping[str, bytes]) -> None:
    """Refuse yarn's ``exec:`` protocol in every package.json of the project (workspace
    members too) and in any ``yarn.lock`` (which lists each package's dependencies as yarn
    installs them)."""
    for path, raw in sorted(files.items()):
        name = posixpath.basename(path)
        if name == "yarn.lock":
            found = EXEC_PROTOCOL.search(raw.decode("utf-8", "replace"))
            if found:
                line = raw[: found.start()].count(b"\n") + 1
                raise UnsupportedDependency(f"{path} line {line} uses {_EXEC_REFUSAL}")
        elif name == "package.json":
            try:
                manifest = json.loads(raw.decode("utf-8-sig"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                continue  # the app's own is read, and refused when broken, on its own
            if not isinstance(manifest, dict):
                continue
            for field in EXEC_FIELDS:
                for dependency, spec in _specs(manifest.get(field)):
                    if EXEC_PROTOCOL.search(spec):
                        where = f"{path} {field}.{dependency}"
                        raise UnsupportedDependency(f"{where} is {spec[:200]!r}: {_EXEC_REFUSAL}")


_EXEC_REFUSAL = (
    "yarn's exec: protocol, which runs a project file while the dependencies install; Kiln's "
    "install step runs no project code (generate the files in the build script, or commit "
    "them and depend on them with file:)"
)


def _specs(value: object) -> Iterable[tuple[str, str]]:
    if not isinstance(value, dict):
        return
    for name, spec in value.items():
        if isinstance(spec, str):
            yield str(name), spec
        elif isinstance(spec, dict):  # overrides nest
            yield from ((f"{name}.{k}", v) for k, v in _specs(spec))


def _check_spec(where: str, spec: str, folder: str = "") -> None:
    source = spec_source(spec)
    if source == "local":
        path = spec.split(":", 1)[1]
        if not spec.startswith("workspace:") and not inside_project_from(folder, path):
            raise UnsupportedDependency(f"{where} is {spec!r}, a folder outside the project")
    elif source in ("git", "url"):
        kind = "a git repository" if source == "git" else "a tarball URL"
        raise UnsupportedDependency(
            f"{where} is {spec[:200]!r}, {kind}; Kiln installs dependencies only from the npm "
            "registry (publish the package, or vendor it into the project and use file:)"
        )
