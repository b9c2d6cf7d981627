"""Unit tests for orchestrator.dev.record and cli_dev's pure parts."""

from __future__ import annotations

import hashlib

from orchestrator.cli_dev import changes, describe
from orchestrator.dev.record import DevSession, DevStatus, public_body


def test_a_session_round_trips_through_redis_fields() -> None:
    session = DevSession(project="shop", revision=3, warnings=["w"], error={"code": "x"})
    raw = {k.encode(): v.encode() for k, v in session.to_redis().items()}
    assert DevSession.from_redis(raw) == session
    assert DevSession.from_redis({}) is None


def test_public_body_has_the_contract_fields() -> None:
    body = public_body(
        DevSession(project="shop", started_at=1.5), "http://dev--shop/", "http://api"
    )
    assert set(body) >= {
        "project", "status", "url", "revision", "started_at", "ready_at",
        "last_activity_at", "idle_timeout_s", "environment", "error", "links",
    }  # fmt: skip
    assert body["started_at"] == "1970-01-01T00:00:01.500Z" and body["ready_at"] is None
    assert body["links"]["files"] == "http://api/api/v1/projects/shop/dev/files"


def test_ended_statuses() -> None:
    assert {s for s in DevStatus if s.ended} == {DevStatus.FAILED, DevStatus.STOPPED}


def test_push_sends_only_what_changed_and_deletes_what_went() -> None:
    same = hashlib.sha256(b"same").hexdigest()
    batch = changes({"a.ts": b"same", "b.ts": b"new"}, {"a.ts": same, "gone.ts": "x"})
    assert batch == {"b.ts": {"base64": "bmV3"}, "gone.ts": None}


def test_watch_lines() -> None:
    hmr = {"revision": 2, "kind": "update", "latency_ms": 80, "paths": ["/src/A.tsx"]}
    assert describe("hmr", hmr) == "hmr r2 update 80 ms /src/A.tsx"
    error = {"revision": 3, "message": "Bad\nmore", "file": "src/A.tsx", "line": 4}
    assert describe("error", error) == "error r3 src/A.tsx:4 Bad"
    assert describe("log", {}) is None


def test_the_environment_is_both_fields_null_until_the_worker_chose() -> None:
    fresh = public_body(DevSession(project="shop"), "http://dev--shop", "http://api")
    assert fresh["environment"] == {"node": None, "package_manager": None}
    chosen = DevSession(
        project="shop", environment={"node": "20.20.2", "package_manager": "pnpm@10.34.9"}
    )
    body = public_body(chosen, "http://dev--shop", "http://api")
    assert body["environment"] == {"node": "20.20.2", "package_manager": "pnpm@10.34.9"}


def test_the_requested_node_survives_redis() -> None:
    session = DevSession(project="shop", requested_node=20)
    again = DevSession.from_redis(session.to_redis())
    assert again is not None and again.requested_node == 20


def test_the_root_survives_redis_and_is_in_the_body() -> None:
    back = DevSession.from_redis(DevSession(project="shop", root="front").to_redis())
    assert back is not None and back.root == "front"
    assert public_body(back, "http://dev--shop/", "http://api")["root"] == "front"
    assert public_body(DevSession(project="shop"), "u", "a")["root"] is None
