"""Install, lifecycle-script and build steps for each package manager. Pure functions only.

Every manager gets the same isolation as npm: the install runs with scripts off and the
egress proxy as its only way out; the dependencies' install scripts run in the next
container, offline, under the manager's own rule for which may run (pnpm's
``onlyBuiltDependencies``, bun's ``trustedDependencies``; never widened); its cache or store
is mounted into install containers only (``CACHE_DIRS``).

Project files that could run code or redirect the install are neutralised through the
environment: yarn's ``yarnPath`` and plugins (``YARN_RC_FILENAME`` is a fresh name for every
step, ``berry_rc_name``), pnpm's ``.pnpmfile.cjs`` (``--ignore-pnpmfile``); registry settings in
``.npmrc``/``.yarnrc.yml``/``bunfig.toml`` may name another host, but the proxy admits only
its allowlist.
"""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import semantic_version

from orchestrator.builds import scripts_probe
from orchestrator.builds.plan import NPM_FLAGS
from orchestrator.errors import ErrorCode
from orchestrator.project.environment import Environment, Manager
from orchestrator.project.lockfiles import load_json, load_jsonc, load_yaml
from orchestrator.project.npm import ROOT_INSTALL_SCRIPTS
from orchestrator.records.models import Phase
from orchestrator.sandbox.caches import CACHE_DIRS
from orchestrator.sandbox.image.toolchains import step_path
from orchestrator.sandbox.step import Step

CA_PATH = "/etc/kiln/ca.crt"
_PACKAGE_NAME = re.compile(r"^(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$")


def install_argv(env: Environment) -> list[str]:
    """The install command: the lockfile frozen when it matches, scripts off."""
    manager, frozen = env.manager.manager, env.frozen
    if manager == Manager.NPM:
        return ["npm", "ci" if frozen else "install", *NPM_FLAGS]
    if manager == Manager.PNPM:
        return [
            "pnpm",
            "install",
            "--frozen-lockfile" if frozen else "--no-frozen-lockfile",
            "--ignore-scripts",
            "--ignore-pnpmfile",
            "--prefer-offline",
            f"--store-dir={CACHE_DIRS[manager]}",
            "--package-import-method=copy",  # the store is another mount: no hard links
            "--config.confirmModulesPurge=false",
            "--reporter=append-only",
        ]
    if manager == Manager.YARN_CLASSIC:
        return [
            "yarn",
            "install",
            *(["--frozen-lockfile"] if frozen else []),
            "--ignore-scripts",
            "--non-interactive",
            "--no-progress",
            f"--cache-folder={CACHE_DIRS[manager]}",
        ]
    if manager == Manager.YARN_BERRY:
        return [
            "yarn",
            "install",
            "--immutable" if frozen else "--no-immutable",
            "--mode=skip-build",
        ]
    return [
        "bun",
        "install",
        *(["--frozen-lockfile"] if frozen else []),
        "--ignore-scripts",
        "--no-progress",
        "--backend=copyfile",
    ]


def install_fallback(env: Environment, step: Step, output: str) -> tuple[Step, str] | None:
    """After a failed frozen install that the manager blamed on the lockfile: a normal one."""
    manager = env.manager.manager
    if manager == Manager.NPM:
        return None  # plan.install_fallback knows npm's own messages
    markers = {
        Manager.PNPM: ("ERR_PNPM_OUTDATED_LOCKFILE", "ERR_PNPM_LOCKFILE_CONFIG_MISMATCH"),
        Manager.YARN_CLASSIC: ("lockfile needs to be updated",),
        Manager.YARN_BERRY: ("YN0028", "lockfile would have been modified"),
        Manager.BUN: ("lockfile had changes", "frozen lockfile"),
    }[manager]
    frozen_flags = ("--frozen-lockfile", "--immutable")
    if not any(flag in step.argv for flag in frozen_flags):
        return None
    if not any(marker in output for marker in markers):
        return None
    relaxed = replace(env, frozen=False)
    reason = (
        f"{manager.command} refused the lockfile as out of date; "
        f"retrying with a normal {manager.command} install"
    )
    return replace(step, argv=install_argv(relaxed)), reason


def step_env(
    env: Environment,
    *,
    network: bool,
    registry: str,
    proxy: str,
    fetched: bool = False,
    rc_name: str | None = None,
) -> dict[str, str]:
    """What a container of this build adds to the sandbox's fixed environment.

    ``PATH`` picks the build's Node and manager; the manager's own settings point its
    cache at the install-only mount, its registry at Kiln's, and its proxy and CA at
    Kiln's egress proxy (install containers only). ``rc_name``: the step's yarn 2+ rc file
    in the container's ``/tmp`` (``berry_rc_name``; a fresh one when not given).
    """
    manager = env.manager.manager
    values = {"PATH": step_path(env.node.major, manager, f"{FETCHED_DIR}/bin" if fetched else None)}
    if manager == Manager.YARN_BERRY:
        values |= {
            **dict(env.settings),  # the project's own (project/yarnrc.py); Kiln's win below
            "YARN_RC_FILENAME": berry_rc_setting(rc_name or berry_rc_name()),
            "YARN_IGNORE_PATH": "1",
            "YARN_NODE_LINKER": "node-modules",  # the layers and the build need node_modules
            # The packages' zips stay in the workspace for the offline `yarn rebuild`; the
            # shared mirror in the global folder (install containers only) saves downloads.
            "YARN_ENABLE_GLOBAL_CACHE": "false",
            "YARN_CACHE_FOLDER": "/workspace/.yarn/cache",
            "YARN_ENABLE_MIRROR": "true",
            "YARN_GLOBAL_FOLDER": CACHE_DIRS[manager] if network else "/tmp/.yarn-berry",
            "YARN_NPM_REGISTRY_SERVER": registry.rstrip("/"),
            "YARN_ENABLE_TELEMETRY": "0",
            "YARN_ENABLE_PROGRESS_BARS": "0",
            "YARN_ENABLE_HYPERLINKS": "0",
            "YARN_HTTPS_CA_FILE_PATH": CA_PATH,
        }
        if network:
            # Scripts off in the install, as for every manager (yarn < 4.14 has them on by
            # default). That does not stop `exec:` dependencies, which run a file while
            # fetching (yarn 4.13 runs them anyway, 4.18 when dependenciesMeta marks them
            # built; both tried by hand): dependency_sources refuses them at submit.
            values["YARN_ENABLE_SCRIPTS"] = "false"
        if network and proxy:
            values |= {"YARN_HTTPS_PROXY": proxy, "YARN_HTTP_PROXY": proxy}
    elif manager == Manager.YARN_CLASSIC:
        values |= {
            "YARN_IGNORE_PATH": "1",
            "YARN_CACHE_FOLDER": "/tmp/.yarn-cache",
            # yarn 1 resolves through its own alias of npm's registry unless told otherwise
            "YARN_REGISTRY": registry,
        }
        if network:
            values["YARN_CACHE_FOLDER"] = CACHE_DIRS[manager]
    elif manager == Manager.BUN:
        values |= {
            "BUN_INSTALL_CACHE_DIR": CACHE_DIRS[manager] if network else "/tmp/.bun-cache",
            "NPM_CONFIG_REGISTRY": registry,
            "DO_NOT_TRACK": "1",
        }
    elif manager == Manager.PNPM:
        values |= {"npm_config_store_dir": CACHE_DIRS[manager] if network else "/tmp/.pnpm-store"}
    return values


def berry_rc_name() -> str:
    """A yarn 2+ rc file name no project can carry, so neither its ``.yarnrc.yml`` nor any
    file it brings or its code writes (a dev session's server, before a reinstall) is read.

    A fixed name could be planted: each step gets its own, unguessable one."""
    return f".kiln-yarnrc-{secrets.token_hex(16)}.yml"


# `..`s in YARN_RC_FILENAME: more than any step folder's depth. yarn walks every folder up
# to `/`, so even from a deeper one its joins from the folders near `/` reach /tmp.
RC_CLIMB = 64


def berry_rc_setting(name: str) -> str:
    """``YARN_RC_FILENAME`` for the rc file ``name`` in the container's ``/tmp``.

    yarn reads that name joined to the step's folder and to every folder above it, and
    loads the ``plugins`` such a file names: code, in the install container. Enough ``..``
    that every join ends at ``/tmp/<name>`` (a ``..`` above ``/`` stays at ``/``), so the
    one file yarn can read is in the container's own ``/tmp``: the one Kiln writes there
    (``Step.tmp_file``), or none. Tried by hand with yarn 4.18.1."""
    return "../" * RC_CLIMB + f"tmp/{name}"


YARN_ALIAS_URL = "https://registry.yarnpkg.com/"


def yarn_lock_for_registry(raw: bytes, registry: str) -> bytes:
    """A yarn 1 lockfile whose ``resolved`` URLs on yarn's alias of npm's registry point at
    Kiln's registry instead (the integrity hashes, which pin the bytes, stay)."""
    target = registry.rstrip("/") + "/"
    if target == YARN_ALIAS_URL:
        return raw
    return raw.replace(YARN_ALIAS_URL.encode(), target.encode())


# -- a packageManager version the image lacks ------------------------------------------------

FETCHED_DIR = "/opt/kiln/fetched"  # where a fetched manager is mounted, read-only
FETCH_STEP = "fetch-manager"
_FETCH_SCRIPT = r"""set -e
cd /workspace
spec=$1 algo=$2 hex=$3; shift 3
file=$(npm pack --silent --pack-destination /tmp "$spec" | tail -n 1)
if [ -n "$algo" ]; then
  echo "$hex  /tmp/$file" | "${algo}sum" -c - \
    || { echo "$spec: not the packageManager hash"; exit 1; }
fi
npm install --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
  --prefix . "/tmp/$file"
mkdir -p bin
for link in "$@"; do ln -sf "../node_modules/${link#*=}" "bin/${link%%=*}"; done
"""
_HASHES = ("sha1", "sha224", "sha256", "sha512")


def fetch_step(manager: Manager, version: str, integrity: str | None) -> Step:
    """Fetch ``manager@version`` (packageManager's exact version) into an empty folder: npm
    checks the registry's integrity, and corepack's ``+sha512.<hex>`` is checked too."""
    package = manager.package if manager != Manager.BUN else "@oven/bun-linux-x64"
    algo, _, digest = (integrity or "").partition(".")
    if algo not in _HASHES or not re.fullmatch(r"[0-9a-f]+", digest):
        algo, digest = "", ""
    bins = FETCHED_BINS[manager]
    links = [f"{name}={package}/{target}" for name, target in bins.items()]
    argv = ["sh", "-c", _FETCH_SCRIPT, "sh", f"{package}@{version}", algo, digest, *links]
    return Step(FETCH_STEP, Phase.INSTALLING, argv, True, ErrorCode.INSTALL_FAILED)


#: The programs of a fetched manager (npm's own too: packageManager may pin npm).
FETCHED_BINS: dict[Manager, dict[str, str]] = {
    Manager.NPM: {"npm": "bin/npm-cli.js", "npx": "bin/npx-cli.js"},
    Manager.PNPM: {"pnpm": "bin/pnpm.cjs", "pnpx": "bin/pnpx.cjs"},
    Manager.YARN_CLASSIC: {"yarn": "bin/yarn.js"},
    Manager.YARN_BERRY: {"yarn": "bin/yarn.js"},
    Manager.BUN: {"bun": "bin/bun", "bunx": "bin/bun"},
}


# -- lifecycle scripts ----------------------------------------------------------------------


def _names(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return sorted({str(v) for v in value if isinstance(v, str) and _PACKAGE_NAME.match(v)})


def pnpm_allowed_builds(manifest: Mapping[str, Any], workspace_yaml: bytes | None) -> list[str]:
    """pnpm's ``onlyBuiltDependencies`` (package.json ``pnpm`` field or pnpm-workspace.yaml)."""
    names: list[str] = []
    pnpm = manifest.get("pnpm")
    if isinstance(pnpm, dict):
        names += _names(pnpm.get("onlyBuiltDependencies"))
    settings = load_yaml(workspace_yaml) if workspace_yaml else None
    if settings:
        names += _names(settings.get("onlyBuiltDependencies"))
    return sorted(set(names))


def bun_trusted(
    manifest: Mapping[str, Any], lock_raw: bytes | None, defaults: frozenset[str]
) -> list[str] | None:
    """The dependencies whose install scripts bun runs (its ``hasTrustedDependency``).

    A ``trustedDependencies`` field, even an empty one, names exactly those trusted; with
    none, bun's default list (``defaults``: the image's bun's) is, as far as the project's
    ``bun.lock`` really installs them from a registry. None: the lockfile does not say what
    is installed (``bun.lockb`` is binary), so the step picks them from ``node_modules``.
    """
    if "trustedDependencies" in manifest:  # not a list: trust none (never widened)
        return _names(manifest["trustedDependencies"])
    locked = bun_lock_names(lock_raw)
    return None if locked is None else sorted(locked & defaults)


def bun_lock_names(raw: bytes | None) -> frozenset[str] | None:
    """The names of the registry packages a ``bun.lock`` installs; None unless it is one."""
    lock = load_jsonc(raw) if raw else None
    packages = lock.get("packages") if lock else None
    if not isinstance(packages, dict):
        return None
    names = set()
    for entry in packages.values():
        # a registry package: [name@version, registry, metadata, integrity]
        if isinstance(entry, list) and len(entry) == 4 and isinstance(entry[0], str):
            name, _, version = entry[0].rpartition("@")
            if version and ":" not in version and "/" not in version and _PACKAGE_NAME.match(name):
                names.add(name)
    return frozenset(names)


#: npm runs bun's trusted dependencies' install scripts (bun has no rebuild).
_REBUILD = "npm rebuild --foreground-scripts --no-audit --no-fund"
#: With ``bun.lockb``: only the listed names that are installed (bun hoists every package
#: name to the top level once), so none installed means nothing to run.
_INSTALLED_ONLY = f"""for name do
  shift
  if [ -f "node_modules/$name/package.json" ]; then set -- "$@" "$name"; fi
done
if [ $# -gt 0 ]; then exec {_REBUILD} "$@"; fi
"""


def bun_scripts_argv(
    manifest: Mapping[str, Any], lock_raw: bytes | None, defaults: frozenset[str]
) -> list[str] | None:
    """The command that runs bun's trusted dependencies' install scripts (None: none)."""
    trusted = bun_trusted(manifest, lock_raw, defaults)
    if trusted is None:
        return ["sh", "-c", _INSTALLED_ONLY, "sh", *sorted(defaults)] if defaults else None
    if not trusted:
        return None
    return ["sh", "-c", f"{_REBUILD} " + " ".join(shlex.quote(n) for n in trusted)]


#: yarn 4.14 made ``enableScripts`` false by default: from it on, only the dependencies the
#: manifest's ``dependenciesMeta`` marks ``built: true`` run their install scripts.
BERRY_SCRIPTS_OFF = semantic_version.Version("4.14.0")


def berry_scripts_argv(version: str, manifest: Mapping[str, Any]) -> list[str] | None:
    """yarn 2+'s dependency rebuild (None: none would run). The project's .yarnrc.yml is never
    read, so its ``enableScripts`` is the version's default."""
    try:
        scripts_off = semantic_version.Version.coerce(version) >= BERRY_SCRIPTS_OFF
    except ValueError:
        scripts_off = False  # an odd version string: let the probe decide, as before 4.14
    if not scripts_off:  # every dependency's scripts run: only when some has one
        return scripts_probe.when_scripted(["yarn", "rebuild"])
    return ["yarn", "rebuild"] if berry_built(manifest) else None


def berry_built(manifest: Mapping[str, Any]) -> list[str]:
    """The ``dependenciesMeta`` keys (``name`` or ``name@range``) marked ``built: true``."""
    meta = manifest.get("dependenciesMeta")
    if not isinstance(meta, dict):
        return []
    return sorted(k for k, v in meta.items() if isinstance(v, dict) and v.get("built") is True)


def npm_scripted_packages(lock_raw: bytes | None) -> tuple[list[str], list[str]] | None:
    """(required, optional) lockfile paths of packages with install scripts; None: unknown."""
    lock = load_json(lock_raw)
    packages = lock.get("packages") if lock else None
    if not isinstance(packages, dict):
        return None
    required: list[str] = []
    optional: list[str] = []
    for path, entry in packages.items():
        if not path or not isinstance(entry, dict) or not entry.get("hasInstallScript"):
            continue
        if not isinstance(path, str) or not _is_plain_path(path):
            return None
        (optional if entry.get("optional") else required).append(path)
    return sorted(required), sorted(optional)


def _is_plain_path(path: str) -> bool:
    parts = path.split("/")
    return parts[0] == "node_modules" and ".." not in parts and "" not in parts and "\\" not in path


def _package_of(path: str) -> str:
    tail = path.rsplit("node_modules/", 1)[1]
    return tail


def npm_scripts_command(required: list[str], optional: list[str]) -> list[str]:
    """``npm rebuild`` of the required packages, then each optional one on its own: an
    optional dependency whose script fails is dropped with a warning, as npm itself does."""
    flags = "--foreground-scripts --no-audit --no-fund"
    lines = ["set -e"]
    names = sorted({_package_of(p) for p in required} - {_package_of(p) for p in optional})
    if names:
        lines.append(f"npm rebuild {flags} {' '.join(shlex.quote(n) for n in names)}")
    for path in optional:
        name = _package_of(path)
        if not _PACKAGE_NAME.match(name):
            continue
        warning = (
            f"[kiln] warning: optional dependency {name} failed its install script; "
            "dropped, as npm does"
        )
        lines.append(
            f"npm rebuild {flags} {shlex.quote(name)} || "
            f"{{ echo {shlex.quote(warning)}; rm -rf -- {shlex.quote(path)}; }}"
        )
    return ["sh", "-c", "\n".join(lines)]


def npm_lifecycle_step(lock_raw: bytes | None) -> Step:
    """``npm rebuild``, offline; split per optional package when the lockfile has optional
    packages with install scripts, so that one failing is dropped rather than fatal."""
    scripted = npm_scripted_packages(lock_raw)
    if scripted is not None and scripted[1]:
        argv = npm_scripts_command(*scripted)
    else:
        argv = ["npm", "rebuild", "--foreground-scripts", "--no-audit", "--no-fund"]
    return Step(
        "scripts", Phase.INSTALLING, argv, network=False, failure_code=ErrorCode.INSTALL_FAILED
    )


def splits_optional(step: Step) -> bool:
    """True when ``step`` rebuilds named packages only (the project's own scripts then run
    apart)."""
    return step.argv[:2] == ["sh", "-c"] and "npm rebuild" in step.argv[2]


def scripts_step(
    env: Environment,
    manifest: Mapping[str, Any],
    lock_raw: bytes | None,
    workspace_yaml: bytes | None = None,
    bun_defaults: frozenset[str] = frozenset(),
) -> Step | None:
    """The dependencies' install scripts, offline, by the manager's rules (None: none to run).

    ``bun_defaults``: the image's bun's default trusted list (``sandbox.image.bun_defaults``).
    The project's own preinstall/install/postinstall run apart (``root_scripts_step``).
    """
    manager = env.manager.manager
    argv: list[str] | None
    if manager == Manager.NPM:
        scripted = npm_scripted_packages(lock_raw)
        if scripted is not None and not any(scripted):
            return None
        return npm_lifecycle_step(lock_raw)
    if manager == Manager.PNPM:
        allowed = pnpm_allowed_builds(manifest, workspace_yaml)
        argv = ["pnpm", "rebuild", "--reporter=append-only", *allowed] if allowed else None
    elif manager == Manager.BUN:
        argv = bun_scripts_argv(manifest, lock_raw, bun_defaults)
    elif manager == Manager.YARN_BERRY:
        argv = berry_scripts_argv(env.manager.version, manifest)
    else:  # yarn 1 runs every dependency's scripts, as npm 10 does
        argv = scripts_probe.when_scripted(
            ["npm", "rebuild", "--foreground-scripts", "--no-audit", "--no-fund"]
        )
    if argv is None:
        return None
    return Step(
        "scripts", Phase.INSTALLING, argv, network=False, failure_code=ErrorCode.INSTALL_FAILED
    )


def root_scripts_step(env: Environment, names: list[str]) -> Step:
    """The project's own install scripts, offline, run by its manager."""
    runner = env.manager.manager.command
    allowed = [n for n in names if n in ROOT_INSTALL_SCRIPTS]
    command = " && ".join(f"{runner} run {name}" for name in allowed)
    return Step(
        "root-scripts", Phase.INSTALLING, ["sh", "-c", command], False, ErrorCode.INSTALL_FAILED
    )


def build_step(env: Environment, manifest: Mapping[str, Any]) -> Step:
    """The project's ``build`` script run by its manager, or ``vite build`` when it has none."""
    scripts = manifest.get("scripts")
    if isinstance(scripts, dict) and scripts.get("build"):
        argv = [env.manager.manager.command, "run", "build"]
    else:
        argv = ["npx", "--no-install", "vite", "build"]
    return Step("build", Phase.BUILDING, argv, network=False, failure_code=ErrorCode.BUILD_FAILED)


def layer_settings(env: Environment) -> dict[str, str]:
    """What a dependency layer's key must add for the manager's settings from the project's
    own files (project/yarnrc.py: an extension changes what is installed). Empty without
    them, so those layers keep their keys."""
    return ({"settings": repr(env.settings)} if env.settings else {}) | (
        {"rc": env.rc} if env.rc else {}
    )
