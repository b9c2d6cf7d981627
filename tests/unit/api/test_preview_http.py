"""Unit tests for api.preview_http: conditional requests, byte ranges, fixed headers."""

from __future__ import annotations

import pytest

from api.preview_http import Unsatisfiable, byte_range, etag_matches, length_headers, prepare
from orchestrator.storage.manifest import Entry

TAG = '"abc"'


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ("*", True),
        ('"abd"', False),
    ],
)
def test_etag_matches(header: str | None, matches: bool) -> None:
    assert etag_matches(header, TAG) is matches


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", range(0, 10)),
        ("bytes=90-", range(90, 100)),
        ("bytes=95-200", range(95, 100)),
        ("bytes=-10", range(90, 100)),
        ("bytes=-500", range(0, 100)),
        ("bytes=0-9,20-29", None),  # several ranges: the whole file
        ("items=0-9", None),
        ("bytes=-", None),
        ("bytes=9-0", None),
    ],
)
def test_byte_range(header: str | None, expected: range | None) -> None:
    assert byte_range(header, 100, None, TAG) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=200-300", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        byte_range(header, 100, None, TAG)


def test_if_range_that_no_longer_matches_means_the_whole_file() -> None:
    assert byte_range("bytes=0-9", 100, '"old"', TAG) is None
    assert byte_range("bytes=0-9", 100, TAG, TAG) == range(0, 10)


def test_headers() -> None:
    prepared = prepare(Entry("assets/a-1.js", 5, "text/javascript; charset=utf-8", "f" * 64))
    headers = dict(prepared.headers)
    assert headers[b"content-type"] == b"text/javascript; charset=utf-8"
    assert headers[b"cache-control"] == b"public, max-age=31536000, immutable"
    assert headers[b"etag"] == b'"' + b"f" * 32 + b'"'
    assert headers[b"accept-ranges"] == b"bytes"
    assert b"content-type" not in dict(prepared.not_modified)
    assert dict(length_headers(10, range(5, 15), 100)) == {
        b"content-length": b"10",
        b"content-range": b"bytes 5-14/100",
    }
