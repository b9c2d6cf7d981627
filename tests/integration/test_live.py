"""The live channel against a real uvicorn and Redis: many followers on one hub, resume,
slow followers, the WebSocket, the project feed, and Redis or the API restarting.

Most tests use a stack with no worker: a submitted build stays queued, and the test writes
its events to Redis itself (as a worker would), so it controls every event and its timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h11
import pytest
import redis
from websockets.asyncio.client import connect as ws_connect

from tests.integration.conftest import (
    WRITE_DIST,
    Stack,
    _free_port,
    launch_stack,
    node_project,
    require_services,
    wait_healthy,
)
from tests.integration.live_clients import (
    follow,
    hub_connections,
    many_client,
    timed_lines,
    wait_started,
    writer,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack without workers: builds stay queued until a test writes their events."""
    require_services()
    running = launch_stack(tmp_path_factory.mktemp("kiln-live"), workers=0)
    try:
        yield running
    finally:
        running.stop()


def queued_build(stack: Stack, project: str = "live") -> str:
    files = node_project(WRITE_DIST)
    return str(stack.client.submit_files(files, project=project, fresh=True)["id"])


def end(stack: Stack, build_id: str, project: str = "live") -> None:
    bus = writer(stack.env["KILN_REDIS_URL"], stack.var_dir)
    bus.publish(build_id, "end", {"id": build_id, "project": project, "status": "succeeded"})


def test_more_followers_than_the_old_pool_cap_all_get_every_event(quiet: Stack) -> None:
    build_id = queued_build(quiet)
    bus = writer(quiet.env["KILN_REDIS_URL"], quiet.var_dir)
    path = f"/api/v1/builds/{build_id}/events"

    async def scenario() -> None:
        started = asyncio.Semaphore(0)
        async with many_client(quiet.url) as client:
            first = asyncio.create_task(follow(client, path, started=started))
            await wait_started(started, 1)
            before = hub_connections(quiet.env["KILN_REDIS_URL"])
            tasks = [asyncio.create_task(follow(client, path, started=started)) for _ in range(149)]
            await wait_started(started, 149)
            # At most the hub's fixed pool (1 reader + 8) joins, not one per follower.
            assert hub_connections(quiet.env["KILN_REDIS_URL"]) - before <= 8
            tasks.append(first)
            for batch in range(10):
                bus.logs(build_id, "building", "stdout", [f"b{batch} l{n}" for n in range(10)])
                await asyncio.sleep(0.02)
            end(quiet, build_id)
            results = await asyncio.wait_for(asyncio.gather(*tasks), 60)
        expected = [e.id for e in bus.history(build_id)]
        assert len(expected) == 102  # queued status, 100 lines, end
        assert all(r.status == 200 for r in results)
        assert all(r.ids == expected for r in results), {len(r.ids) for r in results}
        assert all(r.names[-1] == "end" for r in results)

    asyncio.run(scenario())


def test_resume_from_every_position_under_load(quiet: Stack) -> None:
    build_id = queued_build(quiet)
    bus = writer(quiet.env["KILN_REDIS_URL"], quiet.var_dir)
    bus.logs(build_id, "building", "stdout", [f"before {n}" for n in range(30)])
    before = [e.id for e in bus.history(build_id)]
    path = f"/api/v1/builds/{build_id}/events"

    async def scenario() -> None:
        started = asyncio.Semaphore(0)
        async with many_client(quiet.url) as client:
            load = [asyncio.create_task(follow(client, path, started=started)) for _ in range(100)]
            await wait_started(started, 100)
            resumed = [
                asyncio.create_task(follow(client, path, last_event_id=i)) for i in before[:-1]
            ]
            for n in range(20):  # written while the resumed followers replay and join
                bus.logs(build_id, "building", "stdout", [f"after {n}"])
                await asyncio.sleep(0.01)
            end(quiet, build_id)
            results = await asyncio.wait_for(asyncio.gather(*resumed), 60)
            everyone = await asyncio.wait_for(asyncio.gather(*load), 60)
        full = [e.id for e in bus.history(build_id)]
        for k, result in enumerate(results):
            assert result.ids == full[k + 1 :], k
        assert all(r.ids == full for r in everyone)

    asyncio.run(scenario())


def test_websocket_ids_equal_sse_ids_and_bad_requests_keep_the_socket(quiet: Stack) -> None:
    project = f"ws-{os.urandom(3).hex()}"
    build_id = queued_build(quiet, project=project)
    bus = writer(quiet.env["KILN_REDIS_URL"], quiet.var_dir)
    ws_url = quiet.url.replace("http://", "ws://") + "/api/v1/ws"

    async def scenario() -> None:
        async with ws_connect(ws_url) as ws, many_client(quiet.url) as client:
            await ws.send("not json")
            assert json.loads(await ws.recv())["error"]["code"] == "invalid_input"
            await ws.send(b"\x00binary")
            assert json.loads(await ws.recv())["error"]["code"] == "invalid_input"
            await ws.send(json.dumps({"subscribe": {"build": "0000000000000000"}}))
            missing = json.loads(await ws.recv())
            assert missing["error"]["code"] == "not_found"
            assert missing["channel"] == "build:0000000000000000"
            await ws.send(json.dumps({"ping": "p1"}))
            assert json.loads(await ws.recv()) == {"pong": "p1"}
            await ws.send(json.dumps({"subscribe": {"build": build_id}}))
            await ws.send(json.dumps({"subscribe": {"project": project}}))
            await ws.send(json.dumps({"subscribe": {"build": build_id}}))
            sse = asyncio.create_task(follow(client, f"/api/v1/builds/{build_id}/events"))
            frames: list[dict[str, Any]] = []
            errors: list[dict[str, Any]] = []

            async def receive_until_end() -> None:
                wanted = {"end", "build_end"}  # the build's end and the project's
                while not wanted <= {f.get("event") for f in frames}:
                    frame = json.loads(await ws.recv())
                    (errors if "error" in frame else frames).append(frame)

            receiving = asyncio.create_task(receive_until_end())
            await asyncio.sleep(0.5)
            bus.logs(build_id, "building", "stdout", ["one", "two"])
            end(quiet, build_id, project=project)
            await asyncio.wait_for(receiving, 30)
            from_sse = await asyncio.wait_for(sse, 30)
            assert [e["error"]["code"] for e in errors] == ["already_subscribed"]
            build_frames = [f for f in frames if f["channel"] == f"build:{build_id}"]
            assert [f["id"] for f in build_frames] == from_sse.ids
            assert [f["event"] for f in build_frames] == from_sse.names
            # The socket is still open: the project channel keeps going.
            await ws.send(json.dumps({"unsubscribe": {"project": project}}))
            await ws.send(json.dumps({"unsubscribe": {"project": project}}))
            rest = [json.loads(await asyncio.wait_for(ws.recv(), 10))]
            while "error" not in rest[-1]:
                rest.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            feed = [f for f in frames + rest if f.get("channel") == f"project:{project}"]
            assert any(f.get("event") == "build_end" for f in feed)
            assert any(f.get("error", {}).get("code") == "not_subscribed" for f in rest)

    asyncio.run(scenario())


def test_websocket_resumes_with_after(quiet: Stack) -> None:
    build_id = queued_build(quiet)
    bus = writer(quiet.env["KILN_REDIS_URL"], quiet.var_dir)
    bus.logs(build_id, "building", "stdout", ["a", "b", "c"])
    end(quiet, build_id)
    ids = [e.id for e in bus.history(build_id)]
    ws_url = quiet.url.replace("http://", "ws://") + "/api/v1/ws"

    async def scenario() -> list[str]:
        async with ws_connect(ws_url) as ws:
            await ws.send(json.dumps({"subscribe": {"build": build_id, "after": ids[1]}}))
            got: list[str] = []
            while not got or got[-1] != ids[-1]:
                got.append(json.loads(await ws.recv())["id"])
            return got

    assert asyncio.run(scenario()) == ids[2:]


def test_a_slow_follower_is_cut_with_a_resumable_error_and_the_others_are_not_delayed(
    tmp_path: Path,
) -> None:
    require_services()
    env = {"KILN_LIVE_QUEUE_LIMIT": "100", "KILN_LIVE_SEND_TIMEOUT_S": "120"}
    stack = launch_stack(tmp_path, workers=0, env=env)
    try:
        build_id = queued_build(stack)
        bus = writer(stack.env["KILN_REDIS_URL"], stack.var_dir)
        slow = socket.create_connection(("127.0.0.1", stack.port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(
            f"GET /api/v1/builds/{build_id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        )
        path = f"/api/v1/builds/{build_id}/events"

        async def scenario() -> list[Any]:
            started = asyncio.Semaphore(0)
            async with many_client(stack.url) as client:
                fast = [
                    asyncio.create_task(follow(client, path, started=started)) for _ in range(5)
                ]
                await wait_started(started, 5)
                for _ in range(150):  # ~6 MB, past what the kernel buffers for the slow one
                    stamp = f"{time.time():.6f}"
                    bus.logs(build_id, "building", "stdout", [stamp + " " + "y" * 3900] * 10)
                    await asyncio.sleep(0.02)
                end(stack, build_id)
                return await asyncio.wait_for(asyncio.gather(*fast), 60)

        results = asyncio.run(scenario())
        total = len(bus.history(build_id))
        assert all(len(r.ids) == total and r.names[-1] == "end" for r in results), [
            (len(r.ids), r.names[-1]) for r in results
        ]
        delays = sorted(
            at - float(data["text"].split(" ", 1)[0])
            for r in results
            for (_, name, data), at in zip(r.events, r.arrived, strict=True)
            if name == "log"
        )
        p95 = delays[int(len(delays) * 0.95)]
        assert p95 < 1.0, f"the others were delayed: p95 {p95 * 1000:.0f} ms"
        # Now the slow one reads: a prefix of the events, then an error naming its last id.
        blocks = read_raw_sse(slow)
        assert blocks[-1]["event"] == "error", "the slow follower's stream closed without one"
        data = json.loads(blocks[-1]["data"])
        assert data["code"] == "slow_consumer"
        assert data["last_id"] and blocks[-1]["id"] == data["last_id"]
        assert blocks[-2]["id"] == data["last_id"]  # the last event it was given
        rest = stack.events(build_id, last_event_id=data["last_id"])
        everything = [e.id for e in bus.history(build_id)]
        assert [e.id for e in rest] == everything[everything.index(data["last_id"]) + 1 :]
    finally:
        stack.stop()


def read_raw_sse(sock: socket.socket) -> list[dict[str, str]]:
    """Read an SSE response off a raw socket until the server closes it (h11 undoes the
    chunked encoding); returns each event's fields."""
    conn = h11.Connection(our_role=h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))  # mirror state
    conn.send(h11.EndOfMessage())
    body = b""
    sock.settimeout(30)
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(sock.recv(65536))
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    sock.close()
    blocks = []
    for raw in body.decode().replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in raw.split("\n") if ": " in line)
        if "data" in fields:
            blocks.append(fields)
    return blocks


def test_project_feed_shows_a_build_from_submit_to_end_and_replays(stack: Stack) -> None:
    project = f"feed-{os.urandom(3).hex()}"
    path = f"/api/v1/projects/{project}/events"

    async def scenario() -> list[Any]:
        async with many_client(stack.url) as client:
            started = asyncio.Semaphore(0)
            feed = asyncio.create_task(follow(client, path, stop_at="build_end", started=started))
            await asyncio.sleep(0.5)  # the feed is empty until the submit; give it time to join
            build = await asyncio.to_thread(
                stack.client.submit_files, node_project(WRITE_DIST), project=project, fresh=True
            )
            return [build["id"], await asyncio.wait_for(feed, 180)]

    build_id, live = asyncio.run(scenario())
    builds = [d for _, e, d in live.events if e == "build"]
    assert builds[0] == {"id": build_id, "status": "queued", "phase": "queued"}
    assert {"id": build_id, "status": "running", "phase": "building"} in builds
    assert builds[-1] == {"id": build_id, "status": "succeeded", "phase": "done"}
    assert live.names[-1] == "build_end"
    assert live.events[-1][2] == stack.build(build_id)
    assert all(d["id"] == build_id for d in builds)

    async def replay(after: str | None) -> list[str]:
        async with many_client(stack.url) as client:
            got = await follow(client, path, last_event_id=after, stop_at="build_end")
            return got.ids

    assert asyncio.run(replay(None)) == live.ids
    assert asyncio.run(replay(live.ids[1])) == live.ids[2:]


def test_project_feed_replays_across_its_archive(quiet: Stack) -> None:
    bus = writer(quiet.env["KILN_REDIS_URL"], quiet.var_dir)
    project = f"archived-{os.urandom(3).hex()}"
    ids = [bus.project_event(project, "status", {"n": n}) for n in range(3100)]
    stream = redis.Redis.from_url(quiet.env["KILN_REDIS_URL"]).xlen(
        f"kiln:project:{project}:events"
    )
    assert stream < 3100  # the oldest went to the archive

    async def replay(after: str | None) -> list[str]:
        count = len(ids) - (ids.index(after) + 1 if after else 0)
        async with many_client(quiet.url) as client:
            path = f"/api/v1/projects/{project}/events"
            return (await follow(client, path, last_event_id=after, stop_after=count)).ids

    assert asyncio.run(replay(None)) == ids
    assert asyncio.run(replay(ids[10])) == ids[11:]


def test_project_feed_refuses_a_bad_slug(quiet: Stack) -> None:
    with quiet.http() as http:
        answer = http.get("/api/v1/projects/Not_A_Slug/events")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_project"


@contextlib.contextmanager
def private_redis(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A redis-server of our own (append-only, so a restart keeps the streams)."""
    port = _free_port()
    tmp_path.mkdir(parents=True, exist_ok=True)
    args = [
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
        "--appendonly", "yes", "--appendfsync", "always", "--save", "",
    ]  # fmt: skip
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        processes.append(subprocess.Popen(args, stdout=subprocess.DEVNULL))
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=port).ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "private redis-server did not start"
                time.sleep(0.05)

    def restart() -> None:
        processes[-1].terminate()
        processes[-1].wait(10)
        time.sleep(1.0)
        start()

    start()
    try:
        yield f"redis://127.0.0.1:{port}/0", restart
    finally:
        for p in processes:
            if p.poll() is None:
                p.terminate()
                p.wait(10)


def test_redis_restarted_mid_stream_followers_resume_with_no_gap(tmp_path: Path) -> None:
    require_services()
    with private_redis(tmp_path / "redis") as (url, restart):
        stack = launch_stack(tmp_path / "var", workers=0, redis_url=url)
        try:
            build_id = queued_build(stack)
            bus = writer(url, stack.var_dir)
            path = f"/api/v1/builds/{build_id}/events"

            async def scenario() -> list[Any]:
                started = asyncio.Semaphore(0)
                async with many_client(stack.url) as client:
                    tasks = [
                        asyncio.create_task(resuming(client, path, started)) for _ in range(20)
                    ]
                    await wait_started(started, 20)
                    bus.logs(build_id, "building", "stdout", [f"before {n}" for n in range(10)])
                    await asyncio.sleep(0.5)
                    await asyncio.to_thread(restart)
                    bus.logs(build_id, "building", "stdout", [f"after {n}" for n in range(10)])
                    end(stack, build_id)
                    return await asyncio.wait_for(asyncio.gather(*tasks), 90)

            results = asyncio.run(scenario())
            expected = [e.id for e in bus.history(build_id)]
            assert len(expected) == 22
            assert all(ids == expected for ids in results)
        finally:
            stack.stop()


async def resuming(client: Any, path: str, started: asyncio.Semaphore | None = None) -> list[str]:
    """Follow to ``end`` as an EventSource would: reconnect with Last-Event-ID after an
    ``error`` event or a dropped connection; returns every id received."""
    ids: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            got = await follow(
                client, path, last_event_id=ids[-1] if ids else None, started=started
            )
        except Exception:
            await asyncio.sleep(0.3)
            continue
        started = None
        ids += [i for i, name, _ in got.events if name != "error"]
        if got.names and got.names[-1] == "end":
            return ids
        await asyncio.sleep(0.3)
    raise AssertionError(f"never reached end; got {len(ids)} events")


def test_api_restarted_clients_reconnect_and_resume(tmp_path: Path) -> None:
    require_services()
    stack = launch_stack(tmp_path, workers=0)
    try:
        build_id = queued_build(stack)
        bus = writer(stack.env["KILN_REDIS_URL"], stack.var_dir)
        path = f"/api/v1/builds/{build_id}/events"

        async def scenario() -> list[Any]:
            started = asyncio.Semaphore(0)
            async with many_client(stack.url) as client:
                tasks = [asyncio.create_task(resuming(client, path, started)) for _ in range(20)]
                await wait_started(started, 20)
                timed_lines(bus, build_id, 10)
                await asyncio.sleep(0.5)
                assert stack.api is not None
                stack.api.terminate()
                await asyncio.to_thread(stack.api.wait, 30)
                timed_lines(bus, build_id, 10)  # written while no API runs
                stack.start_api()
                await asyncio.to_thread(wait_healthy, stack)
                timed_lines(bus, build_id, 10)
                end(stack, build_id)
                return await asyncio.wait_for(asyncio.gather(*tasks), 90)

        results = asyncio.run(scenario())
        expected = [e.id for e in bus.history(build_id)]
        assert len(expected) == 32
        assert all(ids == expected for ids in results)
    finally:
        stack.stop()
