"""Choosing Node and the package manager, from tables, with lockfiles the real tools wrote.

The samples under ``samples/`` were made by ``samples/make_samples.sh`` (npm 11, pnpm
10.34.9, yarn 1.22.22, yarn 4.18.1, bun 1.4.5 on the host); each pins ``ms`` to 2.1.1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import InputError, UnsupportedEnvironment
from orchestrator.project.environment import (
    Manager,
    Offer,
    check_request,
    choose_environment,
    choose_manager,
    choose_node,
    parse_package_manager,
)
from orchestrator.project.lockfiles import is_berry_lockfile, lockfile_matches

SAMPLES = Path(__file__).parent / "samples"
OFFER = Offer(
    node={20: "20.20.2", 22: "22.23.5", 24: "24.22.3", 26: "26.12.1"},
    managers={
        Manager.NPM: "10.9.4",
        Manager.PNPM: "10.34.9",
        Manager.YARN_CLASSIC: "1.22.22",
        Manager.YARN_BERRY: "4.18.1",
        Manager.BUN: "1.4.5",
    },
)


def sample(name: str) -> tuple[dict[str, object], dict[str, bytes]]:
    folder = SAMPLES / name
    manifest = json.loads((folder / "package.json").read_text())
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "package.json"}
    return manifest, files


@pytest.mark.parametrize(
    ("requested", "files", "engines", "major", "source", "warns"),
    [
        (None, {}, None, 22, "default", False),
        (24, {}, None, 24, "request", False),
        ("20", {}, None, 20, "request", False),
        ("v26.1.0", {}, None, 26, "request", False),
        (None, {".nvmrc": b"20\n"}, None, 20, ".nvmrc", False),
        (None, {".nvmrc": b"v24.3.0"}, None, 24, ".nvmrc", False),
        (None, {".nvmrc": b"lts/iron"}, None, 20, ".nvmrc", False),
        (None, {".nvmrc": b"lts/*"}, None, 24, ".nvmrc", False),
        (None, {".nvmrc": b"node"}, None, 26, ".nvmrc", False),
        (None, {".nvmrc": b"18"}, None, 20, ".nvmrc", True),  # nearest offered
        (None, {".nvmrc": b"23"}, None, 24, ".nvmrc", True),  # tie: the newer
        (None, {".nvmrc": b"16.20.0"}, ">=20", 20, ".nvmrc", True),  # .nvmrc before engines
        (None, {".node-version": b"24"}, None, 24, ".node-version", False),
        (None, {".nvmrc": b"22", ".node-version": b"24"}, None, 22, ".nvmrc", False),
        (None, {}, ">=18", 26, "engines.node", False),  # the newest that satisfies
        (None, {}, "^20.19.0 || ^22.12.0", 22, "engines.node", False),
        (None, {}, ">=18 <21", 20, "engines.node", False),
        (None, {}, "20.x", 20, "engines.node", False),
        (None, {}, "^18", 20, "engines.node", True),  # nothing satisfies: nearest
        (None, {}, "<=16", 20, "engines.node", True),
        (None, {}, "not a range", 22, "default", True),
        (None, {".nvmrc": b"hello"}, None, 22, "default", True),
        (22, {".nvmrc": b"18"}, None, 22, "request", True),  # asked for 18, got 22: say so
        (22, {".nvmrc": b"22"}, None, 22, "request", False),
    ],
)
def test_node_choice(
    requested: object,
    files: dict[str, bytes],
    engines: str | None,
    major: int,
    source: str,
    warns: bool,
) -> None:
    manifest = {"engines": {"node": engines}} if engines else {}
    choice = choose_node(OFFER, manifest, files, requested)
    assert (choice.major, choice.version, choice.source) == (major, OFFER.node[major], source)
    assert bool(choice.warnings) is warns, choice.warnings


def test_nearest_warning_names_what_was_asked_and_what_is_used() -> None:
    choice = choose_node(OFFER, {}, {".nvmrc": b"18"})
    assert "Node 18" in choice.warnings[0] and "20.20.2" in choice.warnings[0]


@pytest.mark.parametrize("requested", [18, "19", 27, "lts", True, "abc"])
def test_unoffered_request_is_refused_naming_the_offer(requested: object) -> None:
    with pytest.raises(UnsupportedEnvironment) as caught:
        check_request(OFFER, requested)
    assert caught.value.code == "unsupported_environment"
    assert caught.value.http_status == 400
    assert isinstance(caught.value, InputError)
    if isinstance(requested, int) and not isinstance(requested, bool):
        assert "20, 22 (default), 24, 26" in caught.value.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("pnpm@9.15.0", (Manager.PNPM, "9.15.0", None)),
        ("yarn@1.22.19", (Manager.YARN_CLASSIC, "1.22.19", None)),
        ("yarn@4.5.0+sha512.abc123", (Manager.YARN_BERRY, "4.5.0", "sha512.abc123")),
        ("yarn@3.6.4", (Manager.YARN_BERRY, "3.6.4", None)),
        ("npm@10.8.2", (Manager.NPM, "10.8.2", None)),
        ("bun@1.1.38", (Manager.BUN, "1.1.38", None)),
        ("pnpm@^9", None),  # corepack wants an exact version
        ("pnpm", None),
        ("cnpm@1.0.0", None),
        (42, None),
    ],
)
def test_package_manager_field(value: object, expected: object) -> None:
    assert parse_package_manager(value) == expected


@pytest.mark.parametrize(
    ("folder", "manager", "lockfile"),
    [
        ("npm", Manager.NPM, "package-lock.json"),
        ("pnpm", Manager.PNPM, "pnpm-lock.yaml"),
        ("yarn1", Manager.YARN_CLASSIC, "yarn.lock"),
        ("berry", Manager.YARN_BERRY, "yarn.lock"),
        ("bun", Manager.BUN, "bun.lock"),
    ],
)
def test_real_lockfiles_choose_their_manager_frozen(
    folder: str, manager: Manager, lockfile: str
) -> None:
    manifest, files = sample(folder)
    env = choose_environment(OFFER, manifest, files)
    assert env.manager.manager == manager
    assert env.manager.lockfile == lockfile
    assert env.manager.version == OFFER.managers[manager]
    assert env.frozen, env.warnings
    assert env.warnings == ()


@pytest.mark.parametrize("folder", ["npm", "pnpm", "yarn1", "berry", "bun"])
def test_real_lockfiles_go_stale_when_a_dependency_is_added(folder: str) -> None:
    manifest, files = sample(folder)
    manifest["dependencies"] = {"ms": "2.1.1", "left-pad": "1.3.0"}
    env = choose_environment(OFFER, manifest, files)
    assert not env.frozen
    assert any("does not match package.json" in w for w in env.warnings)


@pytest.mark.parametrize("folder", ["pnpm", "yarn1", "berry"])
def test_a_changed_range_is_stale_where_the_manager_says_so(folder: str) -> None:
    # Checked with the real tools: pnpm, yarn 1 and yarn 4 refuse their frozen install
    # once "2.1.1" becomes "^2.1.1" in package.json.
    manifest, files = sample(folder)
    manifest["dependencies"] = {"ms": "^2.1.1"}
    lockfile = next(n for n in files if "lock" in n)
    assert lockfile_matches(lockfile, manifest, files[lockfile]) is False


def test_a_berry_rc_setting_reaches_the_environment_and_only_berry_reads_it() -> None:
    manifest, files = sample("berry")
    rc = {".yarnrc.yml": b"compressionLevel: mixed\npackageExtensions: {a@*: {}}\n"}
    env = choose_environment(OFFER, manifest, files | rc)
    assert env.settings == (("YARN_COMPRESSION_LEVEL", "mixed"),)
    assert env.rc == '{"packageExtensions": {"a@*": {}}}'
    manifest, files = sample("yarn1")
    classic = choose_environment(OFFER, manifest, files | rc)
    assert classic.settings == () and classic.rc == "" and classic.warnings == ()


def test_yarn_lockfile_format() -> None:
    assert not is_berry_lockfile((SAMPLES / "yarn1" / "yarn.lock").read_bytes())
    assert is_berry_lockfile((SAMPLES / "berry" / "yarn.lock").read_bytes())


def test_bun_lockb_cannot_be_read_so_bun_decides() -> None:
    env = choose_environment(OFFER, {"dependencies": {"ms": "2.1.1"}}, {"bun.lockb": b"\x00bin"})
    assert env.manager.manager == Manager.BUN and env.frozen


@pytest.mark.parametrize(
    ("manifest", "lockfiles", "manager", "lockfile", "warns"),
    [
        ({}, {}, Manager.NPM, None, False),
        ({}, {"bun.lockb": b"x", "package-lock.json": b"{}"}, Manager.BUN, "bun.lockb", True),
        ({}, {"pnpm-lock.yaml": b"", "yarn.lock": b""}, Manager.PNPM, "pnpm-lock.yaml", True),
        ({"packageManager": "pnpm@9.15.0"}, {"package-lock.json": b"{}"}, Manager.PNPM, None, True),
        (
            {"packageManager": "yarn@1.22.19"},
            {"yarn.lock": b"# yarn lockfile v1\n"},
            Manager.YARN_CLASSIC,
            "yarn.lock",
            False,
        ),
        (
            {"packageManager": "yarn@4.1.0"},
            {"yarn.lock": b"# yarn lockfile v1\n"},
            Manager.YARN_BERRY,
            "yarn.lock",
            True,
        ),  # berry migrates a v1 lockfile
        (
            {"packageManager": "pnpm@latest"},
            {"yarn.lock": b"__metadata:\n  version: 8\n"},
            Manager.YARN_BERRY,
            "yarn.lock",
            True,
        ),
    ],
)
def test_manager_choice(
    manifest: dict[str, object],
    lockfiles: dict[str, bytes],
    manager: Manager,
    lockfile: str | None,
    warns: bool,
) -> None:
    choice = choose_manager(OFFER, manifest, lockfiles)
    assert (choice.manager, choice.lockfile) == (manager, lockfile)
    assert bool(choice.warnings) is warns, choice.warnings


def test_package_manager_version_wins_over_the_image_pin() -> None:
    choice = choose_manager(OFFER, {"packageManager": "pnpm@9.15.0"}, {})
    assert choice.version == "9.15.0"
    assert not choice.pinned_by_image(OFFER)
    assert choose_manager(OFFER, {}, {"pnpm-lock.yaml": b""}).pinned_by_image(OFFER)


def test_public_view_has_full_versions() -> None:
    manifest, files = sample("berry")
    env = choose_environment(OFFER, manifest, files, requested_node=24)
    assert env.public() == {"node": "24.22.3", "package_manager": "yarn@4.18.1"}


def test_no_lockfile_installs_normally_with_a_warning() -> None:
    env = choose_environment(OFFER, {"dependencies": {"ms": "2.1.1"}}, {})
    assert not env.frozen and "no lockfile" in env.warnings[0]
