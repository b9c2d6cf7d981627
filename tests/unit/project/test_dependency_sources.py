import json

import pytest

from orchestrator.errors import InputError, UnsupportedDependency
from orchestrator.project import dependency_sources
from orchestrator.project.dependency_sources import (
    check_lockfile,
    check_manifest,
    inside_project,
    spec_source,
)

HOSTS = ["registry.npmjs.org"]


@pytest.mark.parametrize(
    ("spec", "source"),
    [
        ("^18.2.0", "registry"),
        ("latest", "registry"),
        (">=1 <2 || 3.x", "registry"),
        ("npm:react@^18", "registry"),
        ("npm:@scope/pkg@1.0.0", "registry"),
        ("file:./packages/ui", "local"),
        ("link:../elsewhere", "local"),
        ("workspace:*", "local"),
        ("git+https://github.com/a/b.git", "git"),
        ("git://github.com/a/b", "git"),
        ("github:a/b#main", "git"),
        ("gitlab:a/b", "git"),
        ("someone/some-repo", "git"),
        ("someone/some-repo#v1.2", "git"),
        ("npm:x@github:a/b", "git"),
        ("https://example.com/x.tgz", "url"),
        ("http://10.0.0.1/x.tgz", "url"),
    ],
)
def test_spec_source(spec: str, source: str) -> None:
    assert spec_source(spec) == source


@pytest.mark.parametrize(
    ("path", "inside"),
    [
        ("./packages/ui", True),
        ("packages/../ui", True),
        ("../outside", False),
        ("packages/../../outside", False),
        ("/etc", False),
        ("~/x", False),
        ("..", False),
        ("a\\..\\..\\b", False),
    ],
)
def test_inside_project(path: str, inside: bool) -> None:
    assert inside_project(path) is inside


def test_registry_and_inner_folders_pass() -> None:
    check_manifest(
        {
            "dependencies": {"react": "^18", "ui": "file:./packages/ui"},
            "devDependencies": {"vite": "latest"},
            "overrides": {"foo": {"bar": "1.0.0"}},
        }
    )


@pytest.mark.parametrize(
    ("manifest", "words"),
    [
        ({"dependencies": {"x": "git+ssh://git@github.com/a/b.git"}}, "dependencies.x"),
        ({"devDependencies": {"x": "github:a/b"}}, "git repository"),
        ({"optionalDependencies": {"x": "https://evil.example/x.tgz"}}, "tarball URL"),
        ({"dependencies": {"x": "file:../../etc"}}, "outside the project"),
        ({"overrides": {"y": {"x": "a/b"}}}, "overrides.y.x"),
    ],
)
def test_other_sources_are_refused_with_the_dependency_named(
    manifest: dict[str, object], words: str
) -> None:
    with pytest.raises(UnsupportedDependency, match=words) as caught:
        check_manifest(manifest)
    assert caught.value.code == "unsupported_dependency" and caught.value.http_status == 400


def lock(**packages: object) -> bytes:
    return json.dumps({"lockfileVersion": 3, "packages": {"": {}, **packages}}).encode()


def test_a_registry_lockfile_passes() -> None:
    check_lockfile(
        lock(
            **{
                "node_modules/react": {"resolved": "https://registry.npmjs.org/react/-/r.tgz"},
                "node_modules/ui": {"resolved": "packages/ui", "link": True},
                "node_modules/nores": {"version": "1.0.0"},
            }
        ),
        HOSTS,
    )


@pytest.mark.parametrize(
    "entry",
    [
        {"resolved": "git+ssh://git@github.com/a/b.git#abc"},
        {"resolved": "https://evil.example/x.tgz"},
        {"resolved": "http://registry.npmjs.org/x.tgz"},
        {"resolved": "../../outside", "link": True},
        {"resolved": "file:../outside"},
    ],
)
def test_lockfile_entries_from_elsewhere_are_refused(entry: dict[str, object]) -> None:
    with pytest.raises(UnsupportedDependency, match="node_modules/x"):
        check_lockfile(lock(**{"node_modules/x": entry}), HOSTS)


def test_a_mirror_registry_is_allowed_when_configured() -> None:
    check_lockfile(
        lock(**{"node_modules/x": {"resolved": "https://npm.corp.example/x.tgz"}}),
        ["npm.corp.example"],
    )


@pytest.mark.parametrize("raw", [b"{", b"[" * 100_000, b"\xff\xfe"])
def test_a_broken_lockfile_is_a_clear_input_error(raw: bytes) -> None:
    with pytest.raises(InputError, match=r"package-lock\.json"):
        check_lockfile(raw, HOSTS)


def test_no_lockfile_or_v1_lockfile_is_left_to_the_manifest_check() -> None:
    check_lockfile(None, HOSTS)
    check_lockfile(json.dumps({"lockfileVersion": 1, "dependencies": {}}).encode(), HOSTS)


def test_an_app_in_a_subfolder_may_use_a_folder_beside_it_but_not_leave_the_project() -> None:
    check_manifest({"dependencies": {"shared": "file:../shared"}}, "front")
    for spec in ("file:../../outside", "file:/etc", "file:~/x"):
        with pytest.raises(UnsupportedDependency):
            check_manifest({"dependencies": {"x": spec}}, "front")
    with pytest.raises(UnsupportedDependency):
        check_manifest({"dependencies": {"shared": "file:../shared"}})  # at the top: outside


def test_a_subfolder_lockfile_links_are_read_from_its_folder() -> None:
    lock = {"packages": {"node_modules/ui": {"resolved": "../ui", "link": True}}}
    check_lockfile(json.dumps(lock).encode(), HOSTS, "apps/web")
    with pytest.raises(UnsupportedDependency):
        check_lockfile(json.dumps(lock).encode(), HOSTS)


def manifest_bytes(**fields: object) -> bytes:
    return json.dumps({"name": "app", **fields}).encode()


@pytest.mark.parametrize(
    ("path", "fields", "named"),
    [
        ("package.json", {"dependencies": {"gen": "exec:./gen.js"}}, "dependencies.gen"),
        ("package.json", {"devDependencies": {"gen": "EXEC:./gen.js"}}, "devDependencies.gen"),
        ("package.json", {"resolutions": {"ms": "exec:./ms.js"}}, "resolutions.ms"),
        (
            "package.json",
            {"dependencies": {"gen": "patch:gen@exec%3A./gen.js#./gen.patch"}},
            "dependencies.gen",
        ),
        ("packages/lib/package.json", {"dependencies": {"g": "exec:g.js"}}, "dependencies.g"),
        ("package.json", {"overrides": {"ms": {"x": "exec:./x.js"}}}, "overrides.ms.x"),
    ],
)
def test_yarns_exec_protocol_is_refused_in_every_manifest(
    path: str, fields: dict[str, object], named: str
) -> None:
    files = {"package.json": manifest_bytes(), path: manifest_bytes(**fields)}
    with pytest.raises(UnsupportedDependency, match="exec: protocol") as caught:
        dependency_sources.check_no_exec(files)
    assert f"{path} {named}" in caught.value.message


def test_yarns_exec_protocol_is_refused_in_a_lockfile_with_its_line() -> None:
    lock = b'__metadata:\n  version: 8\n\n"gen@exec:./gen.js":\n  version: 0.0.0\n'
    with pytest.raises(UnsupportedDependency, match=r"yarn.lock line 4 uses yarn's exec:"):
        dependency_sources.check_no_exec({"package.json": manifest_bytes(), "yarn.lock": lock})


def test_names_and_scripts_that_only_look_like_exec_pass() -> None:
    manifest = manifest_bytes(
        scripts={"exec:all": "run-p exec:*"},  # scripts are not dependency specs
        dependencies={"exec": "^1.0.0", "node-exec": "npm:exec@1.0.0", "execa": "^9.0.0"},
    )
    lock = (
        b'"node-exec@npm:exec@1.0.0":\n  resolution: "exec@npm:1.0.0"\n'
        b'"app@workspace:.":\n  dependencies:\n    exec: "npm:^0.2.1"\n    exec:\n'
    )
    files = {"package.json": manifest, "yarn.lock": lock, "broken/package.json": b"{"}
    dependency_sources.check_no_exec(files)  # no exception
