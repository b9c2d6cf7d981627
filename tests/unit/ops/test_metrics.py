"""Unit tests for the pure parts of orchestrator.ops.metrics and orchestrator.logs."""

from __future__ import annotations

import json
import logging

from orchestrator.logs import BuildIdFilter, JsonFormatter, build_context
from orchestrator.records.counters import BUCKETS, bucket_fields, parse_histogram


def test_an_observation_counts_in_its_bucket_and_every_larger_one() -> None:
    fields = bucket_fields(3.0, {"step": "build"})
    assert "step=build|le=2" not in fields
    assert "step=build|le=5" in fields and "step=build|le=900" in fields
    assert fields[-2:] == ["step=build|le=+Inf", "step=build|count"]
    assert len(fields) == len([b for b in BUCKETS if b >= 3.0]) + 2


def test_a_value_on_a_bucket_edge_counts_in_that_bucket() -> None:
    assert "|le=5" in bucket_fields(5.0, {})[0]


def test_parse_histogram_groups_by_labels() -> None:
    raw = {b"step=build|le=5": b"2", b"step=build|sum": b"7.5", b"|count": b"1"}
    assert parse_histogram(raw) == {"step=build": {"le=5": 2.0, "sum": 7.5}, "": {"count": 1.0}}


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("kiln.test", logging.INFO, __file__, 1, message, None, None)


def test_log_lines_are_json_with_the_current_build_id() -> None:
    fmt, add_id = JsonFormatter(), BuildIdFilter()
    with build_context("0123456789abcdef"):
        inside = _record("step done")
        add_id.filter(inside)
    outside = _record("idle")
    add_id.filter(outside)
    line = json.loads(fmt.format(inside))
    assert line["build_id"] == "0123456789abcdef" and line["msg"] == "step done"
    assert line["level"] == "info" and line["logger"] == "kiln.test"
    assert json.loads(fmt.format(outside))["build_id"] is None
