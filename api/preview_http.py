"""The HTTP rules of serving one preview file, pure: conditional requests, ranges, headers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.storage.manifest import Entry, cache_control

RANGE = re.compile(r"bytes=(\d*)-(\d*)")
Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Prepared:
    """A file's fixed response headers, made once per file and process."""

    entry: Entry
    headers: Headers  # everything but Content-Length and Content-Range
    not_modified: Headers  # what a 304 carries


def prepare(entry: Entry) -> Prepared:
    """The headers a file is always served with (the same cache policy as before)."""
    common = [
        (b"etag", entry.etag.encode()),
        (b"cache-control", cache_control(entry.path).encode()),
    ]
    headers = [
        (b"content-type", entry.content_type.encode()),
        *common,
        (b"accept-ranges", b"bytes"),
        (b"x-content-type-options", b"nosniff"),
    ]
    return Prepared(entry, headers, [*common, (b"x-content-type-options", b"nosniff")])


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """True when an ``If-None-Match`` header lists ``etag`` (or is ``*``); weak tags count."""
    if not if_none_match:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


class Unsatisfiable(Exception):
    """The Range asks for bytes the file does not have (answer 416)."""


def byte_range(header: str | None, size: int, if_range: str | None, etag: str) -> range | None:
    """The one byte range a ``Range`` header asks for, or None for the whole file.

    Several ranges, a malformed header or an ``If-Range`` that no longer matches all mean
    the whole file (RFC 9110 lets a server ignore Range); a range past the end raises
    Unsatisfiable.
    """
    if not header or (if_range is not None and if_range.strip() != etag):
        return None
    found = RANGE.fullmatch(header.strip())
    if found is None:
        return None
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = int(last)
        if length == 0:
            raise Unsatisfiable
        return range(max(0, size - length), size)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None  # not a valid range: ignored
    if start >= size:
        raise Unsatisfiable
    return range(start, end + 1)


def length_headers(size: int, part: range | None, total: int) -> Headers:
    """Content-Length, and Content-Range for a partial answer."""
    headers = [(b"content-length", str(size).encode())]
    if part is not None:
        value = f"bytes {part.start}-{part.stop - 1}/{total}"
        headers.append((b"content-range", value.encode()))
    return headers
