"""What Kiln takes from a berry project's .yarnrc.yml (project/yarnrc.py)."""

from __future__ import annotations

import json

import pytest

from orchestrator.project.yarnrc import BerryRc, read_berry_rc


@pytest.mark.parametrize(
    ("text", "env"),
    [
        ("compressionLevel: mixed\n", (("YARN_COMPRESSION_LEVEL", "mixed"),)),
        ("compressionLevel: 0\nnodeLinker: pnp\n", (("YARN_COMPRESSION_LEVEL", "0"),)),
        ("compressionLevel: 9\n", (("YARN_COMPRESSION_LEVEL", "9"),)),
        ("compressionLevel: 10\n", ()),  # not a level yarn takes
        ("compressionLevel: true\n", ()),
        ('compressionLevel: "mixed\\nYARN_X: 1"\n', ()),  # one plain value, nothing else
        ("compressionLevel: [1]\n", ()),
        ("yarnPath: .yarn/releases/evil.cjs\nplugins: [x.cjs]\n", ()),  # never passed on
    ],
)
def test_only_a_compression_level_is_passed_on(text: str, env: tuple[tuple[str, str]]) -> None:
    assert read_berry_rc(text.encode()).env == env


EXTENDED = (
    b'packageExtensions:\n  "ms@*":\n    dependencies:\n      x: "1"\n'
    b'    peerDependencies:\n      y: "npm:z@^2"\n'
    b"    peerDependenciesMeta:\n      y:\n        optional: true\n"
)


def test_package_extensions_become_an_rc_file_of_their_own() -> None:
    rc = read_berry_rc(EXTENDED + b"yarnPath: evil.cjs\nplugins: [x.cjs]\n")
    assert rc.env == () and rc.warnings == ()
    assert json.loads(rc.rc) == {  # only the extensions: never the path or the plugins
        "packageExtensions": {
            "ms@*": {
                "dependencies": {"x": "1"},
                "peerDependencies": {"y": "npm:z@^2"},
                "peerDependenciesMeta": {"y": {"optional": True}},
            }
        }
    }


@pytest.mark.parametrize(
    ("extensions", "named"),
    [
        ({"ms@*": {"dependencies": {"x": "exec:./gen.js"}}}, "ms@*.dependencies.x"),
        ({"ms@*": {"dependencies": {"x": "git+https://h/x.git"}}}, "ms@*.dependencies.x"),
        ({"ms@*": {"dependencies": {"x": "file:../../etc"}}}, "ms@*.dependencies.x"),
        ({"ms@*": {"dependencies": {"x": "portal:/etc"}}}, "ms@*.dependencies.x"),
        ({"ms@*": {"dependencies": {"x": "npm:y@patch:z"}}}, "ms@*.dependencies.x"),
        ({"ms@*": {"dependencies": {"x": "https://h/x.tgz"}}}, "ms@*.dependencies.x"),
        ({"ms@*": {"dependencies": {"x": 1}}}, "ms@*.dependencies.x"),
        ({"ms@*": {"scripts": {"postinstall": "x"}}}, "ms@*.scripts"),
        ({"ms@*": {"peerDependenciesMeta": {"y": {"optional": "yes"}}}}, "peerDependenciesMeta"),
        ({"ms@*": ["x"]}, "'ms@*'"),
        (["ms@*"], "not a map"),
    ],
)
def test_extensions_that_are_not_registry_ranges_are_not_applied(
    extensions: object, named: str
) -> None:
    rc = read_berry_rc(json.dumps({"packageExtensions": extensions}).encode())
    assert rc.rc == ""
    assert len(rc.warnings) == 1 and named in rc.warnings[0], rc.warnings
    assert rc.warnings[0].startswith(".yarnrc.yml: packageExtensions not applied")


@pytest.mark.parametrize("raw", [None, b"", b"- a list\n", b"{unclosed", b"\xff\xfe"])
def test_no_file_or_no_mapping_takes_nothing(raw: bytes | None) -> None:
    assert read_berry_rc(raw) == BerryRc()
