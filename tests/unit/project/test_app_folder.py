"""Finding the app's folder in a project, and the workspace root its install runs from."""

from __future__ import annotations

import json

import pytest

from orchestrator.errors import ErrorCode, InputError
from orchestrator.project.app_folder import (
    AppLayout,
    check_root,
    is_member,
    layout,
    layout_files,
    package_folders,
    require_app,
    workspace_patterns,
)


def manifest(**fields: object) -> bytes:
    return json.dumps({"name": "x", **fields}).encode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        (".", None),
        ("./", None),
        ("front", "front"),
        ("front/", "front"),
        ("./apps//web/", "apps/web"),
    ],
)
def test_check_root_cleans_a_folder_path(raw: object, expected: str | None) -> None:
    assert check_root(raw) == expected


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("/front", "absolute"),
        ("../front", "leaves the project"),
        ("front/../../x", "leaves the project"),
        ("front\\web", "no control"),
        ("fr\x00ont", "no control"),
        ("node_modules/x", "node_modules"),
        (3, "must be a folder path"),
    ],
)
def test_check_root_refuses_what_could_leave_the_project(raw: object, says: str) -> None:
    with pytest.raises(InputError) as caught:
        check_root(raw)
    assert caught.value.code == ErrorCode.INVALID_PROJECT
    assert says in caught.value.message


def test_package_folders_skips_node_modules_dot_folders_and_deep_ones() -> None:
    paths = [
        "front/package.json",
        "front/src/main.tsx",
        "a/b/c/package.json",
        "a/b/c/d/package.json",  # four folders deep
        "front/node_modules/react/package.json",
        ".github/actions/x/package.json",
        "package.json.bak",
    ]
    assert package_folders(paths) == ["front", "a/b/c"]


def test_require_app_accepts_a_top_level_app_and_a_named_folder() -> None:
    require_app(["package.json", "src/main.tsx"], None)
    require_app(["front/package.json"], "front")


def test_require_app_refuses_a_named_folder_without_package_json() -> None:
    with pytest.raises(InputError) as caught:
        require_app(["front/package.json"], "back")
    assert caught.value.code == ErrorCode.INVALID_PROJECT
    assert "back/package.json" in caught.value.message


def test_require_app_names_the_one_folder_and_how_to_submit_it() -> None:
    with pytest.raises(InputError) as caught:
        require_app(["README.md", "front/package.json", "front/index.html"], None)
    assert caught.value.code == ErrorCode.INVALID_PROJECT
    assert '"root": "front"' in caught.value.message
    assert "front/ has one" in caught.value.message


def test_require_app_names_a_few_of_many_candidates() -> None:
    paths = [f"app{i}/package.json" for i in range(8)]
    with pytest.raises(InputError) as caught:
        require_app(paths, None)
    message = caught.value.message
    assert "app0/, app1/, app2/, app3/, app4/ and 3 more" in message
    assert "app7/" not in message


def test_require_app_without_any_package_json_says_so() -> None:
    with pytest.raises(InputError, match=r"no package\.json at its root"):
        require_app(["README.md"], None)


def test_workspace_patterns_of_each_manager() -> None:
    assert workspace_patterns(manifest(workspaces=["apps/*"]), None) == ["apps/*"]
    yarn = manifest(workspaces={"packages": ["packages/*"], "nohoist": ["**/x"]})
    assert workspace_patterns(yarn, None) == ["packages/*"]
    pnpm = b"packages:\n  - 'apps/*'\n  - packages/**\n"
    assert workspace_patterns(manifest(), pnpm) == ["apps/*", "packages/**"]
    assert workspace_patterns(manifest(), None) is None
    # a pnpm-workspace.yaml of settings only is no list of members
    assert workspace_patterns(manifest(), b"onlyBuiltDependencies: [esbuild]\n") is None
    assert workspace_patterns(b"{not json", None) is None


@pytest.mark.parametrize(
    ("patterns", "folder", "member"),
    [
        (["apps/*"], "apps/web", True),
        (["apps/*"], "apps/web/inner", False),
        (["apps/**"], "apps/web/inner", True),
        (["./apps/web/"], "apps/web", True),
        (["packages/*"], "apps/web", False),
        (["apps/*", "!apps/legacy"], "apps/legacy", False),
        (["**"], "front", True),
    ],
)
def test_is_member_matches_like_minimatch(patterns: list[str], folder: str, member: bool) -> None:
    assert is_member(patterns, folder) is member


def test_layout_of_a_folder_outside_any_workspace_is_the_folder_itself() -> None:
    assert layout("front", {"front/package.json": manifest()}) == AppLayout("front", "front")
    assert layout(None, {}) == AppLayout()


def test_layout_of_an_npm_workspace_member_installs_at_the_workspace_root() -> None:
    files = {"package.json": manifest(workspaces=["apps/*", "packages/*"])}
    found = layout("apps/web", files)
    assert found == AppLayout("apps/web", "", "workspaces")
    assert found.in_workspace and found.app_within_install() == "apps/web"


def test_layout_of_a_pnpm_workspace_member() -> None:
    files = {"pnpm-workspace.yaml": b"packages: ['apps/*']\n", "package.json": manifest()}
    assert layout("apps/web", files) == AppLayout("apps/web", "", "pnpm-workspace.yaml")


def test_layout_of_a_folder_the_workspace_does_not_list_is_its_own_project() -> None:
    files = {"package.json": manifest(workspaces=["packages/*"])}
    assert layout("front", files) == AppLayout("front", "front")


def test_layout_takes_the_nearest_enclosing_workspace() -> None:
    files = {
        "package.json": manifest(workspaces=["repo/*"]),
        "repo/package.json": manifest(workspaces=["apps/*"]),
    }
    found = layout("repo/apps/web", files)
    assert found == AppLayout("repo/apps/web", "repo", "workspaces")
    assert found.app_within_install() == "apps/web"


def test_layout_files_are_each_enclosing_folders_manifests() -> None:
    assert layout_files("apps/web") == [
        "apps/package.json",
        "apps/pnpm-workspace.yaml",
        "package.json",
        "pnpm-workspace.yaml",
    ]
    assert layout_files(None) == []


def test_a_hostile_workspace_pattern_is_matched_in_linear_time() -> None:
    import time

    pattern = "/".join(["**"] * 120 + ["x"])  # within the 400 characters read
    folder = "/".join(["a"] * 32)  # as deep as a submitted path may be
    started = time.monotonic()
    assert is_member([pattern] * 50, folder) is False
    assert is_member([pattern], folder.replace("a", "x")) is True
    assert time.monotonic() - started < 1.0  # backtracking would take longer than a lifetime


def test_hostile_sizes_are_bounded() -> None:
    with pytest.raises(InputError, match="longer than 400"):
        check_root("a/" * 300)
    big = manifest(workspaces=["apps/*"], padding="x" * (1024 * 1024))
    assert workspace_patterns(big, None) is None  # not read: no workspace
