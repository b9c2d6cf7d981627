"""Unit tests for orchestrator.sandbox.output: a step's output as lines, read to its end."""

from __future__ import annotations

import pytest

from orchestrator.sandbox.output import LineSplitter, pump


@pytest.mark.parametrize(
    ("chunks", "lines", "rest"),
    [
        ([b"one\ntwo\n"], ["one", "two"], []),
        ([b"par", b"tial\nli", b"ne\n"], ["partial", "line"], []),
        ([b"a\r\nb\r\n"], ["a", "b"], []),
        ([b"a\r", b"\nb"], ["a"], ["b"]),
        ([b"no newline"], [], ["no newline"]),
        ([b"last\r"], [], ["last"]),
        ([b"\n\n"], ["", ""], []),
        ([b"caf\xc3", b"\xa9\n"], ["café"], []),
        ([b"\xe2", b"\x82", b"\xac", b" euro"], [], ["€ euro"]),
        ([b"\xf0\x9f", b"\x94\xa5\n"], ["🔥"], []),
        ([b"bad \xff byte\n"], ["bad \ufffd byte"], []),
        ([b"cut \xc3"], [], ["cut \ufffd"]),
        ([], [], []),
    ],
)
def test_line_splitter(chunks: list[bytes], lines: list[str], rest: list[str]) -> None:
    splitter = LineSplitter()
    got = [line for chunk in chunks for line in splitter.feed(chunk)]
    assert got == lines
    assert splitter.close() == rest


def test_line_splitter_returns_nothing_until_a_line_completes() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"abc") == []
    assert splitter.feed(b"\xc3") == []
    assert splitter.feed(b"\xa9\nx") == ["abcé"]
    assert splitter.close() == ["x"]
    assert splitter.close() == []


class _Frames(list[tuple[bytes | None, bytes | None]]):
    """Docker's demultiplexed frames, as a closable stream."""

    closed = False

    def close(self) -> None:
        self.closed = True


def test_pump_sends_each_streams_lines_and_its_unfinished_last_line() -> None:
    got: list[tuple[str, list[str]]] = []
    frames = _Frames([(b"one\ntw", None), (b"o\n", b"warn\n"), (None, b"tail")])
    pumped = pump(frames, lambda stream, lines: got.append((stream, lines)), budget=None)
    assert got == [
        ("stdout", ["one"]),
        ("stdout", ["two"]),
        ("stderr", ["warn"]),
        ("stderr", ["tail"]),
    ]
    assert pumped.bytes == 17 and not pumped.overflow and not frames.closed


def test_pump_stops_reading_past_its_budget() -> None:
    frames = _Frames([(b"x" * 10 + b"\n", None)] * 5)
    pumped = pump(frames, lambda _stream, _lines: None, budget=25)
    assert pumped.overflow and frames.closed
    assert pumped.bytes == 33  # the frame that crossed the budget is the last one read
