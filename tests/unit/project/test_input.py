import io
import json
import tarfile

import pytest

from orchestrator.errors import InputError, PayloadTooLarge
from orchestrator.project.input import (
    InputLimits,
    files_from_mapping,
    files_from_tar,
    normalize_path,
    overlay,
    parse_package_json,
    strip_common_root,
    to_tar,
)

LIMITS = InputLimits(max_files=10, max_file_bytes=1000, max_total_bytes=3000)


def make_tar(entries: list[tarfile.TarInfo | tuple[str, bytes]], gz: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as archive:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                archive.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                archive.addfile(info, io.BytesIO(entry[1]))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("src/main.js", "src/main.js"), ("./index.html", "index.html"), ("a//b/./c", "a/b/c")],
)
def test_normalize_path_accepts_relative_paths(raw: str, clean: str) -> None:
    assert normalize_path(raw) == clean


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "/etc/passwd",
        "../x",
        "src/../../x",
        "a\x00b",
        "a\\b",
        ".",
        "node_modules/x/index.js",
        "packages/app/node_modules/y.js",
        "a/" * 40 + "f",
        "con\x01trol.js",
        "new\nline.js",
        "caf\udce9.js",  # a latin-1 byte in a tar member name, as Python decodes it
        "del\x7f.js",
    ],
)
def test_normalize_path_refuses_escapes_and_oddities(raw: str) -> None:
    with pytest.raises(InputError):
        normalize_path(raw)


def test_files_from_mapping_decodes_text_and_base64() -> None:
    files = files_from_mapping({"a.txt": "héllo", "b.bin": {"base64": "AAEC"}}, LIMITS)
    assert files == {"a.txt": "héllo".encode(), "b.bin": b"\x00\x01\x02"}


def test_files_from_mapping_refuses_bad_base64_and_types() -> None:
    with pytest.raises(InputError, match="base64"):
        files_from_mapping({"b.bin": {"base64": "***"}}, LIMITS)
    with pytest.raises(InputError, match="string"):
        files_from_mapping({"b.bin": 42}, LIMITS)


def test_bounds_on_file_size_count_and_total() -> None:
    with pytest.raises(PayloadTooLarge):
        files_from_mapping({"big": "x" * 1001}, LIMITS)
    with pytest.raises(PayloadTooLarge):
        files_from_mapping({f"f{i}": "x" for i in range(11)}, LIMITS)
    with pytest.raises(PayloadTooLarge):
        files_from_mapping({f"f{i}": "x" * 900 for i in range(4)}, LIMITS)


def test_tarball_regular_files_and_wrapping_folder_stripped() -> None:
    data = make_tar([("package/package.json", b"{}"), ("package/src/a.js", b"1")])
    assert files_from_tar(data, LIMITS) == {"package.json": b"{}", "src/a.js": b"1"}


def test_plain_tar_is_accepted_too() -> None:
    data = make_tar([("./package.json", b"{}")], gz=False)
    assert files_from_tar(data, LIMITS) == {"package.json": b"{}"}


@pytest.mark.parametrize(
    "kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE]
)
def test_tarball_links_and_devices_are_refused(kind: bytes) -> None:
    info = tarfile.TarInfo("evil")
    info.type = kind
    info.linkname = "/etc/passwd"
    with pytest.raises(InputError):
        files_from_tar(make_tar([("package.json", b"{}"), info]), LIMITS)


def test_tarball_path_traversal_is_refused() -> None:
    with pytest.raises(InputError, match="escapes"):
        files_from_tar(make_tar([("../../etc/cron.d/x", b"boom")]), LIMITS)


def test_garbage_is_not_a_tarball() -> None:
    with pytest.raises(InputError, match="tar"):
        files_from_tar(b"definitely not a tarball", LIMITS)


def test_strip_common_root_leaves_flat_projects_alone() -> None:
    files = {"package.json": b"{}", "src/a.js": b""}
    assert strip_common_root(files) is files
    two_roots = {"a/package.json": b"{}", "b/x": b""}
    assert strip_common_root(two_roots) == two_roots


def test_strip_common_root_keeps_the_folder_a_submit_names() -> None:
    github = {"repo-abc/front/package.json": b"{}", "repo-abc/README.md": b""}
    assert strip_common_root(github, "front") == {"front/package.json": b"{}", "README.md": b""}
    only_front = {"front/package.json": b"{}", "front/index.html": b""}
    assert strip_common_root(only_front, "front") is only_front  # root names it: kept
    assert strip_common_root(only_front) == {"package.json": b"{}", "index.html": b""}


def test_overlay_replaces_and_adds() -> None:
    assert overlay({"a": b"1", "b": b"2"}, {"b": b"3", "c": b"4"}) == {
        "a": b"1",
        "b": b"3",
        "c": b"4",
    }


def test_package_json_must_exist_and_be_an_object() -> None:
    with pytest.raises(InputError, match=r"no package\.json"):
        parse_package_json({})
    with pytest.raises(InputError, match="not valid JSON"):
        parse_package_json({"package.json": b"{nope"})
    with pytest.raises(InputError, match="object"):
        parse_package_json({"package.json": b"[]"})
    with pytest.raises(InputError, match="scripts"):
        parse_package_json({"package.json": json.dumps({"scripts": {"build": 1}}).encode()})
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    with pytest.raises(InputError):
        parse_package_json({"package.json": deep})


def test_to_tar_round_trips() -> None:
    files = {"package.json": b"{}", "src/a.js": b"x"}
    assert files_from_tar(to_tar(files), LIMITS) == files


# ------------------------------------------------------------- words of the refusals


def test_a_file_too_large_names_the_setting_and_the_limit_in_mb() -> None:
    from orchestrator.errors import PayloadTooLarge
    from orchestrator.project.input import files_from_mapping

    limits = InputLimits(max_file_bytes=10 * 1024 * 1024)
    big = "x" * int(11.4 * 1024 * 1024)
    with pytest.raises(PayloadTooLarge) as refused:
        files_from_mapping({"big.bin": big, "package.json": "{}"}, limits)
    assert refused.value.message == (
        "file big.bin is 11.4 MB; the limit is 10 MB (KILN_MAX_FILE_MB)"
    )


def test_json_sent_as_gzip_is_not_a_gzip_or_tar_archive() -> None:
    with pytest.raises(InputError) as refused:
        files_from_tar(b'{"files": {"package.json": "{}"}}', LIMITS)
    message = refused.value.message
    assert message.startswith("the body is not a gzip or tar archive")
    assert "Content-Type: application/json" in message
    assert "bz2" not in message and "method" not in message


def test_gzip_of_something_else_says_so() -> None:
    import gzip

    with pytest.raises(InputError, match="gzip data, but not a tar archive"):
        files_from_tar(gzip.compress(b"plain text"), LIMITS)
