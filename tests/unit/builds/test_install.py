"""The install decisions on their own (pure): route, retries, leaving a layer, npm's steps."""

from __future__ import annotations

import json

import pytest

from orchestrator.builds import install
from orchestrator.builds.install import NPM, InstallFacts, Route
from orchestrator.builds.plan import plan_install
from orchestrator.records.models import Phase
from orchestrator.sandbox.step import Step
from tests.unit.builds.conftest import VITE, lockfile

WITH_DEPS = {"name": "app", "devDependencies": VITE}
EROFS = "Error: EROFS: read-only file system, open '/workspace/node_modules/.prisma/x'"


@pytest.mark.parametrize(
    ("manifest", "cache_layers", "route"),
    [
        (WITH_DEPS, True, Route.LAYER),
        (WITH_DEPS, False, Route.PRIVATE),
        ({"name": "app"}, True, Route.NONE),
        ({"name": "app", "dependencies": {}}, True, Route.NONE),
        ({"name": "app"}, False, Route.PRIVATE),  # layers off: npm runs as it always did
    ],
)
def test_route(manifest: dict[str, object], cache_layers: bool, route: Route) -> None:
    assert install.route(InstallFacts.of(manifest), cache_layers=cache_layers) is route


def test_root_scripts_are_the_projects_own_install_scripts_in_npms_order() -> None:
    scripts = {"build": "b", "postinstall": "p", "preinstall": "q", "prepare": "r"}
    facts = InstallFacts.of({"scripts": scripts})
    assert facts.root_scripts == ("preinstall", "postinstall")
    step = install.root_scripts(facts)
    assert step is not None and step.argv == [
        "sh",
        "-c",
        "npm run preinstall && npm run postinstall",
    ]
    assert not step.network
    assert install.root_scripts(InstallFacts.of({"scripts": {"build": "b"}})) is None


def test_npm_ci_refused_is_retried_with_npm_install() -> None:
    ci = plan_install(WITH_DEPS, {"package-lock.json": lockfile(VITE)}).step
    assert ci.argv[:2] == ["npm", "ci"]
    retry = install.retry_install(ci, "install_failed", ["npm error code EUSAGE"])
    assert retry is not None
    assert retry.step.argv[:2] == ["npm", "install"]
    assert retry.warning.startswith("warning: npm ci refused the lockfile")


def test_only_the_steps_own_failure_is_retried() -> None:
    ci = plan_install(WITH_DEPS, {"package-lock.json": lockfile(VITE)}).step
    for code in ("timeout", "out_of_memory", "disk_full", "sandbox_error"):
        assert install.retry_install(ci, code, ["npm error code EUSAGE"]) is None
    assert install.retry_install(ci, "install_failed", ["npm error code E404"]) is None


def test_a_write_into_the_layer_leaves_it_only_on_a_layer() -> None:
    assert install.leave_layer("build_failed", ["x", EROFS], on_layer=True)
    assert install.leave_layer("install_failed", [EROFS.replace("EROFS", "erofs")], on_layer=True)
    assert not install.leave_layer("build_failed", [EROFS], on_layer=False)
    assert not install.leave_layer("timeout", [EROFS], on_layer=True)
    assert not install.leave_layer(
        "build_failed", ["EROFS: read-only file system, /tmp/x"], on_layer=True
    )


def test_npm_rebuilds_after_a_private_install_only_when_something_has_install_scripts() -> None:
    quiet = lockfile(VITE)
    noisy = json.loads(quiet)
    noisy["packages"]["node_modules/vite"]["hasInstallScript"] = True
    assert NPM.steps_after_install(WITH_DEPS, quiet) == []
    assert [s.name for s in NPM.steps_after_install(WITH_DEPS, json.dumps(noisy).encode())] == [
        "scripts"
    ]
    assert [s.name for s in NPM.steps_after_install(WITH_DEPS, None)] == ["scripts"]  # unknown


class Pnpm:
    """A package manager the strategy does not know: the protocol is all it needs."""

    name = "pnpm"
    lockfiles = ("pnpm-lock.yaml",)

    def install_plan(self, manifest: object, lockfiles: object) -> object:
        # The routes these tests take never plan a private install: being asked is a failure.
        raise AssertionError("the strategy asked an unknown manager for an install plan")

    def retry(self, step: Step, output: str) -> tuple[Step, str] | None:
        if "ERR_PNPM_OUTDATED_LOCKFILE" in output:
            return Step(
                step.name, step.phase, [*step.argv, "--no-frozen-lockfile"], True, step.failure_code
            ), "outdated"
        return None

    def steps_after_install(self, manifest: object, lock_after: bytes | None) -> list[Step]:
        return []


def test_retries_come_from_the_package_manager() -> None:
    step = Step("install", Phase.INSTALLING, ["pnpm", "install"], True, "install_failed")
    retry = install.retry_install(step, "install_failed", ["ERR_PNPM_OUTDATED_LOCKFILE"], Pnpm())  # type: ignore[arg-type]
    assert retry is not None and retry.step.argv[-1] == "--no-frozen-lockfile"
    assert retry.warning == "warning: outdated"
