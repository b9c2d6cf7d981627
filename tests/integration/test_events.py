"""The SSE stream: ids on every event, Last-Event-ID resume, full history for late clients."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from httpx_sse import connect_sse

from tests.integration.conftest import BOTH_BACKENDS, WRITE_DIST, Stack, node_project

pytestmark = [pytest.mark.integration, BOTH_BACKENDS]

CHATTY_BUILD = """
let i = 0;
const timer = setInterval(() => {
  console.log("line " + i);
  if (i % 3 === 0) console.error("err " + i);
  if (++i === 15) { clearInterval(timer); DONE }
}, 100);
""".replace("DONE", WRITE_DIST.replace("\n", " "))


def test_resume_mid_build_continues_without_gaps_or_repeats(stack: Stack) -> None:
    build_id = stack.client.submit_files(node_project(CHATTY_BUILD))["id"]
    first: list[tuple[str, str]] = []
    with (
        stack.http() as http,
        connect_sse(http, "GET", f"/api/v1/builds/{build_id}/events") as source,
    ):
        for sse in source.iter_sse():
            first.append((sse.id, sse.event))
            if sse.event == "log" and "line 3" in sse.data:
                break  # drop the connection mid-build
    rest = stack.events(build_id, last_event_id=first[-1][0])
    assert rest[-1].event == "end" and rest[-1].data["status"] == "succeeded"
    everything = stack.events(build_id)  # late client: the whole history
    assert [e.id for e in everything] == [i for i, _ in first] + [e.id for e in rest]
    logs = [e.data for e in everything if e.event == "log"]
    project_lines = [d["text"] for d in logs if d.get("source") != "kiln"]
    assert [t for t in project_lines if t.startswith("line ")] == [f"line {i}" for i in range(15)]
    assert {d["stream"] for d in logs if d["text"].startswith("err ")} == {"stderr"}
    assert {d["stream"] for d in logs if d["text"].startswith("line ")} == {"stdout"}


def test_resume_after_end_and_from_every_position(stack: Stack) -> None:
    build_id = stack.client.submit_files(node_project(WRITE_DIST))["id"]
    events = stack.events(build_id)
    for k in (0, 1, len(events) // 2, len(events) - 2):
        again = stack.events(build_id, last_event_id=events[k].id)
        assert [e.id for e in again] == [e.id for e in events[k + 1 :]]
    assert stack.events(build_id, last_event_id=events[-1].id) == []


def test_late_client_gets_archived_history_after_the_stream_is_gone(stack: Stack) -> None:
    import redis

    build_id = stack.client.submit_files(node_project(WRITE_DIST), fresh=True)["id"]
    live = stack.events(build_id)
    client = redis.Redis.from_url(stack.env["KILN_REDIS_URL"])
    key = f"kiln:build:{build_id}:events"
    # The archive is written just after the end event; the stream gets its expiry then.
    deadline = time.monotonic() + 30
    while client.ttl(key) == -1 and time.monotonic() < deadline:
        time.sleep(0.05)
    client.delete(key)
    archived = stack.events(build_id)
    assert [(e.id, e.event) for e in archived] == [(e.id, e.event) for e in live]
    logs = stack.client.logs(build_id)
    assert "[kiln] $ npm run build" in logs
    # The same events as NDJSON, from the archive too.
    lines = stack.client.log_events(build_id)
    assert [(e["id"], e["event"]) for e in lines] == [(e.id, e.event) for e in live]
    assert lines[-1]["data"]["status"] == "succeeded"


def test_unknown_build_and_bad_event_id(stack: Stack) -> None:
    with stack.http() as http:
        missing = http.get("/api/v1/builds/0000000000000000/events")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        build_id = stack.client.submit_files(node_project(WRITE_DIST))["id"]
        bad = http.get(f"/api/v1/builds/{build_id}/events", headers={"Last-Event-ID": "not-an-id"})
        assert bad.status_code == 400
        assert json.loads(bad.text)["error"]["code"] == "invalid_input"
    stack.wait(build_id)
    assert httpx.get(f"{stack.url}/api/v1/builds/{build_id}").json()["status"] == "succeeded"
