"""What Kiln takes from a berry project's .yarnrc.yml (project/yarnrc.py)."""

from __future__ import annotations

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


def test_package_extensions_are_named_as_not_applied() -> None:
    rc = read_berry_rc(b'packageExtensions:\n  "ms@*":\n    dependencies:\n      x: "1"\n')
    assert rc.env == ()
    assert len(rc.warnings) == 1
    assert rc.warnings[0].startswith(".yarnrc.yml sets packageExtensions, which Kiln does not")


@pytest.mark.parametrize("raw", [None, b"", b"- a list\n", b"{unclosed", b"\xff\xfe"])
def test_no_file_or_no_mapping_takes_nothing(raw: bytes | None) -> None:
    assert read_berry_rc(raw) == BerryRc()
