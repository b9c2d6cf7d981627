"""Unit tests for the pure parts of orchestrator.live.logbus (no Redis)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import InputError, StorageUnavailable
from orchestrator.live.events import Event, decode_archive, decode_entries, encode_archive
from orchestrator.live.logbus import (
    MAX_LINE_CHARS,
    LogBus,
    check_event_id,
    clean_line,
    id_after,
    stream_key,
)
from orchestrator.storage.build_storage import BuildStorage
from orchestrator.storage.layout import events_archive
from orchestrator.storage.objects import LocalObjects

MARKER = " …[line truncated]"

# ------------------------------------------------------------------- clean_line


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("plain text", "plain text"),
        ("✓ built in 1.2s — ok", "✓ built in 1.2s — ok"),
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b[1;32mbold green\x1b[39;49m done", "bold green done"),
        ("\x1b[38;5;208morange\x1b[m", "orange"),
        ("\x1b[2K\x1b[1Gprogress", "progress"),
        ("\x1b[?25lhidden cursor\x1b[?25h", "hidden cursor"),
        ("\x1b]0;window title\x07text", "text"),
        ("\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("ding\x07", "ding"),
        ("a\x00b\x08c\x7fd\x9be\x85f", "abcdef"),
        ("50%\r100%", "50%100%"),
        ("col1\tcol2", "col1\tcol2"),
        ("", ""),
    ],
)
def test_clean_line_strips_escapes_and_controls(raw: str, clean: str) -> None:
    assert clean_line(raw) == clean


def test_clean_line_leaves_no_control_character_but_tab() -> None:
    # Newline is left out: lines reach clean_line already split on it (LineSplitter).
    c0 = "".join(chr(c) for c in range(0x20) if c != 0x0A)
    c1 = "".join(chr(c) for c in range(0x7F, 0xA0))
    assert clean_line(f"{c0}\x1b[0mx{c1}y\x1bcz") == "\txyz"


def test_long_lines_are_truncated_with_a_marker() -> None:
    got = clean_line("x" * (MAX_LINE_CHARS * 3))
    assert got == "x" * MAX_LINE_CHARS + MARKER


@pytest.mark.parametrize(
    "raw",
    ["y" * MAX_LINE_CHARS, "\x1b[31m" + "y" * MAX_LINE_CHARS + "\x1b[0m"],
)
def test_lines_at_the_bound_after_cleaning_are_kept_whole(raw: str) -> None:
    assert clean_line(raw) == "y" * MAX_LINE_CHARS


# -------------------------------------------------------------- check_event_id


@pytest.mark.parametrize("value", ["0-0", "1-99", "1700000000000-0", "12345678901234567890-1"])
def test_valid_event_ids_pass_through(value: str) -> None:
    assert check_event_id(value) == value


@pytest.mark.parametrize("value", [None, ""])
def test_no_event_id_means_from_the_start(value: str | None) -> None:
    assert check_event_id(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "1",
        "1-",
        "-1",
        "1-2-3",
        "1.5-0",
        " 1-0",
        "1-0 ",
        "$",
        "+",
        "0-0; FLUSHALL",
        "1" * 21 + "-0",
        "0x1-0",
    ],
)
def test_invalid_event_ids_are_refused(value: str) -> None:
    with pytest.raises(InputError, match="Last-Event-ID"):
        check_event_id(value)


@pytest.mark.parametrize("value", ["1-2\n", "\u0661-\u0660"])
def test_event_ids_redis_would_reject_are_refused(value: str) -> None:
    with pytest.raises(InputError):
        check_event_id(value)


def test_refusal_message_is_bounded() -> None:
    with pytest.raises(InputError) as caught:
        check_event_id("z" * 10_000)
    assert len(caught.value.message) < 100


# ---------------------------------------------------------------------- id_after


@pytest.mark.parametrize(
    ("a", "b", "after"),
    [
        ("1-1", "1-0", True),
        ("2-0", "1-99", True),
        ("10-0", "9-0", True),  # numeric, not lexicographic
        ("1-10", "1-9", True),
        ("1-0", "1-0", False),
        ("1-0", "2-0", False),
        ("1-9", "1-10", False),
    ],
)
def test_id_after(a: str, b: str, after: bool) -> None:
    assert id_after(a, b) is after


# ---------------------------------------------------------------- decode_entries


def test_decode_entries_with_bytes_fields() -> None:
    entries = [(b"1-0", {b"event": b"log", b"data": b'{"text": "h\\u00e9"}'})]
    assert decode_entries(entries) == [Event("1-0", "log", {"text": "hé"})]


def test_decode_entries_with_str_fields() -> None:
    entries = [("2-1", {"event": "status", "data": '{"status": "running", "phase": "x"}'})]
    assert decode_entries(entries) == [Event("2-1", "status", {"status": "running", "phase": "x"})]


@pytest.mark.parametrize("fields", [{}, {b"other": b"1"}, {"other": "1"}])
def test_decode_entries_defaults(fields: dict[Any, Any]) -> None:
    assert decode_entries([(b"3-0", fields)]) == [Event("3-0", "message", {})]


def test_decode_entries_keeps_order() -> None:
    entries = [(f"{i}-0", {"event": "log", "data": json.dumps({"n": i})}) for i in range(5)]
    assert [e.data["n"] for e in decode_entries(entries)] == [0, 1, 2, 3, 4]
    assert decode_entries([]) == []


# ------------------------------------------------------------------ read_archive

EVENTS = [
    Event("1-0", "status", {"status": "running", "phase": "installing"}),
    Event("1-1", "log", {"phase": "installing", "stream": "stdout", "text": "héllo\tworld"}),
    Event("2-0", "end", {"id": "b", "error": None, "limits": {"cpus": 2.0}}),
]


def test_archive_round_trips() -> None:
    assert decode_archive(encode_archive(EVENTS)) == EVENTS


def test_an_empty_archive_is_no_events() -> None:
    assert encode_archive([]) == b""
    assert decode_archive(b"") == []


def test_to_json_is_one_line() -> None:
    line = Event("1-0", "log", {"text": "a\nb"}).to_json()
    assert "\n" not in line
    assert json.loads(line) == {"id": "1-0", "event": "log", "data": {"text": "a\nb"}}


def test_logbus_reads_the_archive_of_a_build(tmp_path: Path) -> None:
    bus = LogBus(client=None, storage=BuildStorage(LocalObjects(tmp_path)), ttl_s=60)  # type: ignore[arg-type]
    assert bus.read_archive("b1") is None
    path = tmp_path / events_archive("b1")
    path.parent.mkdir(parents=True)
    path.write_text(EVENTS[0].to_json() + "\n", encoding="utf-8")
    assert bus.read_archive("b1") == EVENTS[:1]


# -------------------------------------------------------------------- stream_key


def test_stream_key() -> None:
    assert stream_key("0123456789abcdef") == "kiln:build:0123456789abcdef:events"
    assert stream_key("a") != stream_key("b")


def test_sse_encoding_matches_sse_starlette() -> None:
    from sse_starlette import ServerSentEvent

    event = Event("12-3", "log", {"text": "a\nb", "stream": "stdout"})
    expected = ServerSentEvent(data=json.dumps(event.data), event="log", id="12-3").encode()
    assert event.sse == expected
    bare = Event("", "error", {"code": "x"})
    assert bare.sse == ServerSentEvent(data=json.dumps(bare.data), event="error").encode()


def test_an_unreadable_store_reads_as_no_archive(tmp_path: Path) -> None:
    class Down(LocalObjects):
        def get_bytes(self, key: str) -> bytes | None:
            raise StorageUnavailable("down")

    bus = LogBus(client=None, storage=BuildStorage(Down(tmp_path)), ttl_s=60)  # type: ignore[arg-type]
    assert bus.read_archive("b1") is None
