"""Unit tests for orchestrator.records.models: ids and enums (no database)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator.builds.public import duration_ms, public_view
from orchestrator.records.models import Build, Generation, Status, new_build_id

PREVIEW = "http://0123456789abcdef.preview.localhost:8000/"
CONTRACT_KEYS = {
    "environment",
    "root",
    "id",
    "project",
    "template",
    "status",
    "phase",
    "created_at",
    "started_at",
    "finished_at",
    "duration_ms",
    "limits",
    "attempts",
    "error",
    "preview_url",
    "reused_from",
    "cache",
    "urls",
    "env",
    "queued_ms",
    "queue",
}
T0 = datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


def build(**fields: Any) -> Build:
    base: dict[str, Any] = {"id": "0123456789abcdef", "project": "demo", "created_at": T0}
    return Build(**{**base, **fields})


# ----------------------------------------------------------------- new_build_id


def test_build_ids_are_16_lowercase_hex_and_unique() -> None:
    ids = [new_build_id() for _ in range(1000)]
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_new_build_gets_an_id_and_defaults() -> None:
    fresh = Build(project="p")
    assert re.fullmatch(r"[0-9a-f]{16}", fresh.id)
    assert Build(project="p").id != fresh.id
    assert (fresh.status, fresh.phase) == ("queued", "queued")
    assert fresh.created_at.tzinfo is not None
    assert fresh.limits == {} and fresh.cancel_requested is False


# ------------------------------------------------------------------ public_view


def test_public_view_has_exactly_the_contract_keys() -> None:
    assert set(public_view(build(), PREVIEW)) == CONTRACT_KEYS


def test_public_view_of_a_queued_build() -> None:
    limits = {"timeout_s": 600, "memory_mb": 2048, "cpus": 2.0}
    body = public_view(build(template="react", limits=limits), PREVIEW)
    waited = body.pop("queued_ms")  # it is still waiting: the time so far
    assert waited > 0 and body.pop("queue") == {"position": None, "waited_ms": waited}
    assert body == {
        "id": "0123456789abcdef",
        "project": "demo",
        "template": "react",
        "status": "queued",
        "phase": "queued",
        "created_at": "2025-03-04T05:06:07.890Z",
        "started_at": None,
        "finished_at": None,
        "duration_ms": None,
        "limits": limits,
        "attempts": 0,
        "error": None,
        "preview_url": None,
        "reused_from": None,
        "cache": {},
        "urls": {"preview": PREVIEW, "latest": "http://latest--demo.preview.localhost:8000/"},
        "env": [],
        "environment": {"node": None, "package_manager": None},
        "root": None,
    }


def test_public_view_shows_the_chosen_environment_not_the_request() -> None:
    chosen = {"requested_node": 24, "node": "24.22.3", "package_manager": "pnpm@10.34.9"}
    view = public_view(build(environment=chosen), PREVIEW)
    assert view["environment"] == {"node": "24.22.3", "package_manager": "pnpm@10.34.9"}


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        (Status.SUCCEEDED, PREVIEW),
        (Status.QUEUED, None),
        (Status.RUNNING, None),
        (Status.FAILED, None),
        (Status.CANCELLED, None),
    ],
)
def test_preview_url_only_when_succeeded(status: Status, shown: str | None) -> None:
    assert public_view(build(status=status.value), PREVIEW)["preview_url"] == shown


def test_error_object_of_a_failed_build() -> None:
    failed = build(
        status="failed",
        error_code="build_failed",
        error_message="the build failed with exit code 2",
        error_log_tail="src/App.tsx(3,1): error TS2304: Cannot find name 'x'.",
    )
    error = public_view(failed, PREVIEW)["error"]
    diagnostics = error.pop("diagnostics")
    assert error == {
        "code": "build_failed",
        "message": "the build failed with exit code 2",
        "log_tail": "src/App.tsx(3,1): error TS2304: Cannot find name 'x'.",
    }
    # Not recorded by a worker (e.g. an older record): derived from the log tail.
    assert diagnostics["category"] == "type_error"
    assert diagnostics["items"][0]["file"] == "src/App.tsx"
    assert diagnostics["items"][0]["line"] == 3


def test_recorded_diagnostics_are_shown_as_they_are() -> None:
    report = {"category": "syntax", "fingerprint": "f", "items": [], "omitted": 0}
    failed = build(status="failed", error_code="build_failed", error_diagnostics=report)
    assert public_view(failed, PREVIEW)["error"]["diagnostics"] == report


def test_cancelled_build_has_no_diagnostics() -> None:
    cancelled = build(status="cancelled", error_code="cancelled", error_message="cancelled")
    assert public_view(cancelled, PREVIEW)["error"]["diagnostics"] is None


def test_error_object_fills_missing_message_and_tail_with_empty_strings() -> None:
    error = public_view(build(status="failed", error_code="timeout"), PREVIEW)["error"]
    assert error["diagnostics"]["category"] == "timeout"
    del error["diagnostics"]
    assert error == {"code": "timeout", "message": "", "log_tail": ""}


def test_generated_build_shows_its_generation_summary() -> None:
    generation = Generation(
        build_id="0123456789abcdef",
        prompt="a timer",
        model="m",
        template="react-ts",
        rounds=[{"kind": "generate"}, {"kind": "fix"}],
        prompt_tokens=100,
        completion_tokens=20,
        files={"src/App.tsx": "x", "package.json": "{}"},
        deleted=["src/old.ts"],
    )
    view = public_view(build(), PREVIEW, generation)
    assert view["generation"] == {
        "prompt": "a timer",
        "model": "m",
        "template": "react-ts",
        "base_build": None,
        "model_calls": 2,
        "fix_rounds": 1,
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        "files": ["package.json", "src/App.tsx"],
        "deleted": ["src/old.ts"],
    }
    assert "generation" not in public_view(build(), PREVIEW)


def test_no_error_code_means_null_error() -> None:
    assert public_view(build(error_message="stray"), PREVIEW)["error"] is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2025, 1, 2, 3, 4, 5), "2025-01-02T03:04:05.000Z"),  # naive, as from SQLite
        (datetime(2025, 1, 2, 3, 4, 5, 123456), "2025-01-02T03:04:05.123Z"),
        (datetime(2025, 1, 2, 3, 4, 5, 999999, tzinfo=UTC), "2025-01-02T03:04:05.999Z"),
    ],
)
def test_timestamps_are_iso_utc_with_z(value: datetime, text: str) -> None:
    view = public_view(build(created_at=value, started_at=value, finished_at=value), PREVIEW)
    assert view["created_at"] == view["started_at"] == view["finished_at"] == text


# ------------------------------------------------------------------ duration_ms


@pytest.mark.parametrize(
    ("started", "finished", "ms"),
    [
        (None, None, None),
        (T0, None, None),
        (None, T0, None),
        (T0, T0, 0),
        (T0, T0 + timedelta(seconds=12, milliseconds=345), 12_345),
        (T0.replace(tzinfo=None), T0 + timedelta(seconds=1), 1000),  # naive and aware mixed
        (T0.replace(tzinfo=None), T0.replace(tzinfo=None) + timedelta(minutes=2), 120_000),
    ],
)
def test_duration_ms(started: datetime | None, finished: datetime | None, ms: int | None) -> None:
    finished_build = build(started_at=started, finished_at=finished)
    assert duration_ms(finished_build) == ms
    assert public_view(finished_build, PREVIEW)["duration_ms"] == ms
