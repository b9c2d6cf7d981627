"""Giving a build its dependency layer: look it up, or make it once, then hold it while in use.

Making a layer runs the same two sandbox steps a private install runs, in a staging folder
that holds only a package.json made from the lockfile's root entry and the lockfile:

1. ``npm ci --ignore-scripts`` with network (the only step with the shared npm cache);
2. ``npm rebuild`` with no network, when a locked package has install scripts.

No file of the project but its lockfile is there, so none of its code runs into the layer.
The project's own install scripts run later, in its own container, against the read-only
layer (see ``pipeline``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.builds import plan
from orchestrator.cache.keys import (
    Toolchain,
    layer_key,
    layer_manifest,
    lockfile_refusal,
    project_refusal,
    resolution_key,
    resolution_manifest,
)
from orchestrator.cache.layers import KeyLock, LayerStore
from orchestrator.cache.resolutions import ResolutionStore
from orchestrator.project.lockfiles import load_json
from orchestrator.project.npm import NPM_LOCKFILES
from orchestrator.records.models import ErrorCode, Phase
from orchestrator.sandbox.step import Step

LAYER_INSTALL_ARGV = ["npm", "ci", *plan.NPM_FLAGS]
RESOLVE_ARGV = ["npm", "install", "--package-lock-only", *plan.NPM_FLAGS]

RunInFolder = Callable[[Step, Path], object]  # runs a step in a folder; raises BuildError


def layer_install_step() -> Step:
    """Install a lockfile into a layer's staging folder, scripts off, network on."""
    return Step(
        "layer-install",
        Phase.INSTALLING,
        list(LAYER_INSTALL_ARGV),
        network=True,
        failure_code=ErrorCode.INSTALL_FAILED,
    )


def resolve_step() -> Step:
    """Resolve dependency ranges to a lockfile, installing nothing and running nothing."""
    return Step("resolve", Phase.INSTALLING, list(RESOLVE_ARGV), True, ErrorCode.INSTALL_FAILED)


def root_scripts_step(names: Sequence[str]) -> Step:
    """The project's own install scripts, offline, in the build's workspace."""
    allowed = [n for n in names if n in ("preinstall", "install", "postinstall")]
    command = " && ".join(f"npm run {name}" for name in allowed)
    return Step(
        "root-scripts", Phase.INSTALLING, ["sh", "-c", command], False, ErrorCode.INSTALL_FAILED
    )


@dataclass(frozen=True)
class LayerRecipe:
    """How a pnpm, yarn or bun layer is made (``environment_layers.layer_recipe``).

    Its staging folder holds only ``manifest`` as package.json and the lockfile
    (``staged_lock``: yarn 1's with registry URLs pointed at Kiln's); the key hashes
    ``lock_bytes``, ``manifest``, the install and scripts commands, the toolchain and the
    manager's settings from the project's files.
    """

    lockfile: str
    lock_bytes: bytes
    staged_lock: bytes
    manifest: dict[str, Any]
    install: Step  # network on, scripts off
    scripts: Step | None  # the dependencies' allowed install scripts, offline
    settings: dict[str, str] = field(default_factory=dict)  # managers.layer_settings


@dataclass
class LayerUse:
    """A layer a build holds (shared lock) until ``release``."""

    key: str
    node_modules: Path
    outcome: str  # "hit" or "miss"
    resolution: str | None  # None: the project's lockfile; else "hit" or "miss"
    lock: KeyLock = field(repr=False)

    def release(self) -> None:
        """Let the layer go (it may be evicted once no build holds it)."""
        self.lock.release()


@dataclass
class LayerProvider:
    """Finds or makes layers for one build; the pipeline hands in how to run steps."""

    layers: LayerStore
    resolutions: ResolutionStore
    toolchain: Toolchain
    registry: str
    run: RunInFolder  # with the package manager's retries (see pipeline)
    note: Callable[[str], None]  # a [kiln] line in the build's log
    wait: Callable[[], None]  # called while waiting for a lock; raises when cancelled
    prepare_dir: Callable[[Path], None]  # hand a folder to the sandbox user
    # The offline install-scripts step for a lockfile (default: plain `npm rebuild`).
    lifecycle: Callable[[bytes], Step] | None = None

    def provide(
        self,
        manifest: Mapping[str, Any],
        lockfiles: Mapping[str, bytes],
        project_files: Sequence[str],
    ) -> LayerUse | None:
        """The layer for this project (made if missing), or None to install privately."""
        refusal = project_refusal(manifest, project_files)
        if refusal:
            self.note(f"dependency layer: not shared because {refusal}; installing privately")
            return None
        lock_bytes, resolution = self._lockfile(manifest, lockfiles)
        lock = load_json(lock_bytes)
        refusal = lockfile_refusal(lock) if lock is not None else "the lockfile is not JSON"
        if lock is None or refusal:
            self.note(f"dependency layer: not shared because {refusal}; installing privately")
            return None
        key = layer_key(lock_bytes, install_argv=LAYER_INSTALL_ARGV, toolchain=self.toolchain)
        return self._hold(key, resolution, lambda: self._make(key, lock, lock_bytes))

    def provide_recipe(self, recipe: LayerRecipe) -> LayerUse:
        """The layer a pnpm, yarn or bun project's recipe makes (made now if missing)."""
        key = layer_key(
            recipe.lock_bytes,
            install_argv=recipe.install.argv,
            toolchain=self.toolchain,
            manifest=recipe.manifest,
            scripts_argv=recipe.scripts.argv if recipe.scripts is not None else None,
            settings=recipe.settings,
        )
        return self._hold(key, None, lambda: self._make_recipe(key, recipe))

    def _hold(self, key: str, resolution: str | None, make: Callable[[], Path]) -> LayerUse:
        """Hold ``key``'s layer (shared lock), making it first, once, when it is missing."""
        handle = self.layers.lock(key)
        try:
            handle.acquire(exclusive=False, wait=self.wait)
            path, outcome = self.layers.lookup(key), "hit"
            if path is None:
                handle.acquire(exclusive=True, wait=self.wait)  # one maker per key
                path = self.layers.lookup(key)  # a concurrent build may have made it
                if path is None:
                    self.note(f"dependency layer miss {key[:12]}: installing it once for all")
                    path, outcome = make(), "miss"
                handle.acquire(exclusive=False, wait=self.wait)
        except BaseException:
            handle.release()
            raise
        if outcome == "hit":
            self.note(f"dependency layer hit {key[:12]}: node_modules ready, no install")
        return LayerUse(key, path, outcome, resolution, handle)

    def _lockfile(
        self, manifest: Mapping[str, Any], lockfiles: Mapping[str, bytes]
    ) -> tuple[bytes, str | None]:
        """The project's in-sync npm lockfile, else a (possibly remembered) resolution."""
        npm_lock = next((lockfiles[n] for n in NPM_LOCKFILES if n in lockfiles), None)
        parsed = load_json(npm_lock)
        if npm_lock is not None and parsed is not None and plan.lockfile_in_sync(manifest, parsed):
            return npm_lock, None
        key = resolution_key(
            manifest,
            npm_lock,
            resolve_argv=RESOLVE_ARGV,
            toolchain=self.toolchain,
            registry=self.registry,
        )
        remembered = self.resolutions.get(key)
        if remembered is not None:
            self.note(f"dependency resolution hit {key[:12]}: same package.json as before")
            return remembered, "hit"
        others = [name for name in plan.OTHER_LOCKFILES if name in lockfiles]
        if others:
            self.note(
                f"warning: {', '.join(others)} found but Kiln installs with npm; "
                "resolving package.json's ranges with npm"
            )
        why = "out of sync with package.json" if npm_lock is not None else "missing"
        self.note(f"package-lock.json {why}: resolving the dependency ranges (cached)")
        staging = self.layers.new_staging(key)
        try:
            (staging / "package.json").write_text(json.dumps(resolution_manifest(manifest)))
            if npm_lock is not None and parsed is not None:
                (staging / "package-lock.json").write_bytes(npm_lock)  # keeps what it can
            self.prepare_dir(staging)
            self.run(resolve_step(), staging)
            resolved = (staging / "package-lock.json").read_bytes()
        finally:
            self.layers.discard(staging)
        self.resolutions.put(key, resolved)
        return resolved, "miss"

    def _make(self, key: str, lock: dict[str, Any], lock_bytes: bytes) -> Path:
        staging = self.layers.new_staging(key)
        try:
            manifest = layer_manifest(lock)
            (staging / "package.json").write_text(json.dumps(manifest))
            (staging / "package-lock.json").write_bytes(lock_bytes)
            self.prepare_dir(staging)
            self.run(layer_install_step(), staging)
            if plan.needs_lifecycle_scripts(manifest, lock_bytes):
                scripts = self.lifecycle(lock_bytes) if self.lifecycle else plan.lifecycle_step()
                self.run(scripts, staging)  # offline, no npm cache
            details = {"argv": LAYER_INSTALL_ARGV, "toolchain": self.toolchain.__dict__}
            return self.layers.commit(key, staging, details)
        except BaseException:
            self.layers.discard(staging)
            raise

    def _make_recipe(self, key: str, recipe: LayerRecipe) -> Path:
        staging = self.layers.new_staging(key)
        try:
            (staging / "package.json").write_text(json.dumps(recipe.manifest))
            (staging / recipe.lockfile).write_bytes(recipe.staged_lock)
            self.prepare_dir(staging)
            self.run(recipe.install, staging)  # network through the proxy, scripts off
            if recipe.scripts is not None:
                self.run(recipe.scripts, staging)  # offline, no cache or store
            details = {"argv": recipe.install.argv, "toolchain": self.toolchain.__dict__}
            return self.layers.commit(key, staging, details)
        except BaseException:
            self.layers.discard(staging)
            raise
