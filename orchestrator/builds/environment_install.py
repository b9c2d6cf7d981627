"""The install strategy of a build's chosen environment: its Node and its package manager.

``ChosenManager`` is the ``install.PackageManager`` a build gets once its environment is
chosen (``project/environment.py``): npm on the chosen Node keeps npm's plan (``npm ci``
or ``npm install``, then ``npm rebuild`` split per optional package), while pnpm, yarn 1,
yarn 2+ and bun install from their own lockfile with scripts off, then run the
dependencies' scripts offline by their own rules (``managers.scripts_step``) and the
project's own install scripts with its manager. Every step it hands the pipeline is
``equip``-ped with the environment's ``PATH`` and manager settings (``Step.toolenv``) and
a fetched manager's read-only folder (``Step.tools``). Pure: the pipeline reads the files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from orchestrator.builds import managers, plan
from orchestrator.builds.install import NPM, Manifest
from orchestrator.errors import BuildError, ErrorCode
from orchestrator.project.environment import Environment, Manager
from orchestrator.project.npm import root_install_scripts
from orchestrator.records.models import Phase
from orchestrator.sandbox.step import Step

#: The lockfile each manager writes when the project came without one.
OWN_LOCKFILE = {
    Manager.NPM: "package-lock.json",
    Manager.PNPM: "pnpm-lock.yaml",
    Manager.YARN_CLASSIC: "yarn.lock",
    Manager.YARN_BERRY: "yarn.lock",
    Manager.BUN: "bun.lock",
}


@dataclass(frozen=True)
class ChosenManager:
    """The install strategy of one build's environment (an ``install.PackageManager``).

    ``registry``/``proxy``: Kiln's registry and egress proxy, which the manager's own
    settings point at; ``tools``: packageManager's exact version fetched into a host folder
    when the image lacks it (None: the image's pin); ``workspace_yaml``: the project's
    ``pnpm-workspace.yaml`` (pnpm's ``onlyBuiltDependencies`` may live there);
    ``bun_defaults``: the image's bun's default trusted list (bun builds only).
    """

    env: Environment
    registry: str
    proxy: str
    tools: Path | None = None
    workspace_yaml: bytes | None = None
    bun_defaults: frozenset[str] = frozenset()

    @property
    def kind(self) -> Manager:
        """Which package manager this is."""
        return self.env.manager.manager

    @property
    def name(self) -> str:
        """The manager's program name (``yarn`` for both yarn lines)."""
        return self.kind.command

    @property
    def lockfiles(self) -> Sequence[str]:
        """npm reads every lockfile name (a layer's key); the others only their own."""
        if self.kind == Manager.NPM:
            return NPM.lockfiles
        return (self.lockfile,)

    @property
    def lockfile(self) -> str:
        """The lockfile the install reads and leaves."""
        return self.env.manager.lockfile or OWN_LOCKFILE[self.kind]

    def install_plan(self, manifest: Manifest, lockfiles: Mapping[str, bytes]) -> plan.InstallPlan:
        """npm's own plan (with its lockfile warnings), or the manager's install, frozen when
        its lockfile matches (a stale one's warning was said with the environment's choice)."""
        if self.kind == Manager.NPM:
            return plan.plan_install(manifest, lockfiles)
        argv = managers.install_argv(self.env)
        return plan.InstallPlan(
            Step("install", Phase.INSTALLING, argv, True, ErrorCode.INSTALL_FAILED)
        )

    def retry(self, step: Step, output: str) -> tuple[Step, str] | None:
        """npm's advice for npm; for the others a normal install after a refused frozen one."""
        if self.kind == Manager.NPM:
            return plan.install_fallback(step, output)
        return managers.install_fallback(self.env, step, output)

    def steps_after_install(self, manifest: Manifest, lock_after: bytes | None) -> list[Step]:
        """The dependencies' install scripts (offline, by the manager's rules), then the
        project's own, run by its manager when the dependencies' step does not run them."""
        own = root_install_scripts(manifest)
        if self.kind == Manager.NPM:
            if not plan.needs_lifecycle_scripts(manifest, lock_after):
                return []
            scripts = managers.npm_lifecycle_step(lock_after)
            if own and managers.splits_optional(scripts):  # named packages only: not the root
                return [scripts, managers.root_scripts_step(self.env, own)]
            return [scripts]
        steps = []
        deps = managers.scripts_step(
            self.env, manifest, lock_after, self.workspace_yaml, self.bun_defaults
        )
        if deps is not None:
            steps.append(deps)
        if own:
            steps.append(managers.root_scripts_step(self.env, own))
        return steps

    def build_step(self, manifest: Manifest, env: Mapping[str, str]) -> Step:
        """The build script run by the manager, with the submit's build settings."""
        return replace(
            managers.build_step(self.env, manifest), env=plan.build_step(manifest, env).env
        )

    def equip(self, step: Step) -> Step:
        """``step`` with the environment's PATH and manager settings, and a fetched manager."""
        rc_name = managers.berry_rc_name()
        toolenv = managers.step_env(
            self.env,
            network=step.network,
            registry=self.registry,
            proxy=self.proxy,
            fetched=self.tools is not None,
            rc_name=rc_name,
        )
        rc = (rc_name, self.env.rc) if self.env.rc else None
        return replace(step, toolenv=tuple(toolenv.items()), tools=self.tools, tmp_file=rc)

    def explain(self, step: Step, error: BuildError) -> BuildError:
        """Name the manager whose install failed (plan's messages name npm)."""
        if step.argv[:1] == ["npm"]:
            return error
        message = error.message.replace("npm install", f"{self.name} install")
        if step.name == managers.FETCH_STEP and error.code == step.failure_code:
            wanted = f"{self.name}@{self.env.manager.version}"
            message = f"fetching {wanted} (packageManager) failed with exit code {error.exit_code}"
        return BuildError(message, code=ErrorCode(error.code), exit_code=error.exit_code)
