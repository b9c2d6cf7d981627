"""The OpenAPI document: a schema for every response, and exactly the errors each route
answers, checked against the document and by provoking each error on the real app."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import httpx
import pytest

from api.main import create_app
from orchestrator.context import Context
from orchestrator.dev.record import DevSession, DevStatus
from orchestrator.dev.service import registry
from orchestrator.dev.urls import session_source
from orchestrator.project.input import to_tar
from orchestrator.records.models import Build, Generation, Status
from orchestrator.records.public import BuildPublic
from tests.unit.api.conftest import OfflineAPI

DEV = "/api/v1/projects/{project}/dev"
# Every route, and the error statuses it answers (orchestrator/errors.py, api/errors.py).
ERRORS: dict[tuple[str, str], set[int]] = {
    ("post", "/api/v1/builds"): {400, 404, 413, 415, 429, 503, 507},
    ("get", "/api/v1/builds"): {400},
    ("get", "/api/v1/builds/{build_id}"): {404},
    ("post", "/api/v1/builds/{build_id}/cancel"): {404, 409},
    ("post", "/api/v1/builds/{build_id}/retry"): {404, 409, 429, 503, 507},
    ("get", "/api/v1/builds/{build_id}/logs"): {404},
    ("get", "/api/v1/builds/{build_id}/events"): {400, 404},
    ("post", "/api/v1/generate"): {400, 404, 409, 429, 503, 507},
    ("get", "/api/v1/builds/{build_id}/generation"): {404},
    ("get", "/api/v1/templates"): set(),
    ("get", "/api/v1/environments"): {503},
    ("get", "/metrics"): set(),
    ("get", "/healthz"): {503},
    ("get", "/api/v1/ops/queue"): {503},
    ("get", "/api/v1/ops"): {503},
    ("get", "/api/v1/projects"): set(),
    ("get", "/api/v1/projects/{project}/events"): {400},
    ("get", "/api/v1/ops/workers"): {503},
    ("get", "/api/v1/dev/sessions"): {503},
    ("post", DEV): {400, 404, 409, 413, 429, 503},
    ("get", DEV): {404, 503},
    ("delete", DEV): {404, 409, 503},
    ("patch", DEV + "/files"): {400, 404, 409, 413, 503},
    ("get", DEV + "/files"): {404, 503},
    ("post", DEV + "/build"): {404, 429, 503, 507},
    ("get", DEV + "/events"): {400, 404, 503},
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app().openapi()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def resolve(document: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/components/schemas/"), ref
    schemas: dict[str, Any] = document["components"]["schemas"]
    return schemas[ref.rsplit("/", 1)[1]]  # KeyError: a dangling $ref


def test_the_table_names_every_route(document: dict[str, Any]) -> None:
    assert {(m, p) for m, p, _ in operations(document)} == set(ERRORS)


def test_every_success_has_a_schema(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        ok = [s for s in operation["responses"] if s.startswith("2")]
        assert len(ok) == 1, (method, path, ok)
        content = operation["responses"][ok[0]].get("content")
        assert content, f"{method} {path}: no content"
        for media, body in content.items():
            schema = body.get("schema")
            assert schema, f"{method} {path} {media}: no schema"
            if media == "application/json":
                assert "$ref" in schema, f"{method} {path}: an untyped JSON body"
                assert resolve(document, schema["$ref"])["properties"]


def test_every_route_declares_exactly_its_errors(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        declared = {int(s) for s in operation["responses"] if int(s) >= 400}
        assert declared == ERRORS[(method, path)], (method, path)
        for status in declared:
            content = operation["responses"][str(status)]["content"]
            assert list(content) == ["application/json"], (method, path, status)
            expected = "Health" if path == "/healthz" else "ErrorBody"
            assert content["application/json"]["schema"] == {
                "$ref": f"#/components/schemas/{expected}"
            }


def test_validation_errors_are_not_documented_as_422(document: dict[str, Any]) -> None:
    assert all("422" not in op["responses"] for _, _, op in operations(document))
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    refs = {part.split('"')[0] for part in text.split('"$ref": "')[1:]}
    assert refs
    for ref in refs:
        resolve(document, ref)


def test_the_event_stream_is_declared_as_such(document: dict[str, Any]) -> None:
    ok = document["paths"]["/api/v1/builds/{build_id}/events"]["get"]["responses"]["200"]
    assert list(ok["content"]) == ["text/event-stream"]
    assert "event: end" in ok["description"] or "`end`" in ok["description"]


def test_states_are_documented_as_enums(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["Status"]["enum"] == [s.value for s in Status]
    build = schemas["BuildPublic"]["properties"]
    assert build["status"] == {"$ref": "#/components/schemas/Status"}
    assert "generation" not in schemas["BuildPublic"]["required"]
    queue_full = document["paths"]["/api/v1/builds"]["post"]["responses"]["429"]
    assert "Retry-After" in queue_full["headers"]


# ----------------------------------------------------------- provoking each error

PROJECT = {"package.json": json.dumps({"name": "demo", "scripts": {"build": "node b.js"}})}
Call = Callable[[httpx.Client], httpx.Response]


def ended(ctx: Context) -> str:
    """A failed build's id, with its source (for a retry) but no kept sources (to edit)."""
    build = Build(
        project="demo", status=Status.FAILED.value, phase="done", error_code="build_failed"
    )
    build.limits = {"timeout_s": 60, "memory_mb": 512, "cpus": 1.0}
    ctx.store.add(build)
    ctx.storage.write_source(build.id, b"")
    return build.id


def queued(ctx: Context) -> str:
    build = Build(project="demo")
    ctx.store.add(build)
    return build.id


def submit(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/api/v1/builds", json={"files": PROJECT, **body})


def generate(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/api/v1/generate", json={"prompt": "a todo app", **body})


def redis_up(ctx: Context) -> None:
    """A Redis that answers (fakeredis): dev sessions are recorded there, with no dev
    worker registered."""
    ctx.__dict__["redis"] = fakeredis.FakeRedis()


def dev_session(status: DevStatus, *, queued_build: bool = False) -> Callable[[Context], None]:
    """Setup: Redis up, and project demo's session recorded with ``status`` (no dev server:
    no run dir) and its files kept."""

    def setup(ctx: Context) -> None:
        redis_up(ctx)
        registry(ctx).create(DevSession(project="demo", status=status.value))
        source = session_source(ctx.settings, "demo")
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(to_tar({k: v.encode() for k, v in PROJECT.items()}))
        if queued_build:
            queued(ctx)

    return setup


def dev(path: str = "") -> str:
    return "/api/v1/projects/demo/dev" + path


EDIT = {"files": {"src/a.ts": "export {}"}}
MODEL = {"openai_api_key": "sk-test"}
UNKNOWN = "0000000000000000"
# (route, status, settings, setup(ctx) -> build id or None, request)
CASES: list[tuple[tuple[str, str], int, dict[str, Any], Any, Callable[..., httpx.Response]]] = [
    (
        ("post", "/api/v1/builds"),
        400,
        {},
        None,
        lambda c, _: c.post("/api/v1/builds", json={"files": {"../x": "y"}}),
    ),
    (
        ("post", "/api/v1/builds"),
        415,
        {},
        None,
        lambda c, _: c.post("/api/v1/builds", content=b"x", headers={"Content-Type": "text/x"}),
    ),
    (
        ("get", "/api/v1/projects/{project}/events"),
        400,
        {},
        None,
        lambda c, _: c.get("/api/v1/projects/Not_A_Slug/events"),
    ),
    (("get", "/api/v1/ops"), 503, {}, None, lambda c, _: c.get("/api/v1/ops")),
    (("get", "/api/v1/ops/queue"), 503, {}, None, lambda c, _: c.get("/api/v1/ops/queue")),
    (("get", "/api/v1/ops/workers"), 503, {}, None, lambda c, _: c.get("/api/v1/ops/workers")),
    (("post", "/api/v1/builds"), 404, {}, None, lambda c, _: submit(c, template="nope")),
    (("post", "/api/v1/builds"), 413, {"max_upload_mb": 0}, None, lambda c, _: submit(c)),
    (("post", "/api/v1/builds"), 429, {"max_queued": 1}, queued, lambda c, _: submit(c)),
    (("post", "/api/v1/builds"), 503, {}, None, lambda c, _: submit(c)),
    (("post", "/api/v1/builds"), 507, {"min_free_disk_mb": 10**9}, None, lambda c, _: submit(c)),
    (("get", "/api/v1/builds"), 400, {}, None, lambda c, _: c.get("/api/v1/builds?status=x")),
    (("get", "/api/v1/builds"), 400, {}, None, lambda c, _: c.get("/api/v1/builds?limit=0")),
    (
        ("get", "/api/v1/builds/{build_id}"),
        404,
        {},
        None,
        lambda c, _: c.get(f"/api/v1/builds/{UNKNOWN}"),
    ),
    (
        ("post", "/api/v1/builds/{build_id}/cancel"),
        404,
        {},
        None,
        lambda c, _: c.post(f"/api/v1/builds/{UNKNOWN}/cancel"),
    ),
    (
        ("post", "/api/v1/builds/{build_id}/cancel"),
        409,
        {},
        ended,
        lambda c, i: c.post(f"/api/v1/builds/{i}/cancel"),
    ),
    (
        ("post", "/api/v1/builds/{build_id}/retry"),
        404,
        {},
        None,
        lambda c, _: c.post(f"/api/v1/builds/{UNKNOWN}/retry"),
    ),
    (
        ("post", "/api/v1/builds/{build_id}/retry"),
        409,
        {},
        queued,
        lambda c, i: c.post(f"/api/v1/builds/{i}/retry"),
    ),
    (
        ("post", "/api/v1/builds/{build_id}/retry"),
        429,
        {"max_queued": 1},
        lambda ctx: (queued(ctx), ended(ctx))[1],
        lambda c, i: c.post(f"/api/v1/builds/{i}/retry"),
    ),
    (
        ("post", "/api/v1/builds/{build_id}/retry"),
        503,
        {},
        ended,
        lambda c, i: c.post(f"/api/v1/builds/{i}/retry"),
    ),
    (
        ("post", "/api/v1/builds/{build_id}/retry"),
        507,
        {"min_free_disk_mb": 10**9},
        ended,
        lambda c, i: c.post(f"/api/v1/builds/{i}/retry"),
    ),
    (
        ("get", "/api/v1/builds/{build_id}/logs"),
        404,
        {},
        None,
        lambda c, _: c.get(f"/api/v1/builds/{UNKNOWN}/logs"),
    ),
    (
        ("get", "/api/v1/builds/{build_id}/events"),
        400,
        {},
        queued,
        lambda c, i: c.get(f"/api/v1/builds/{i}/events", headers={"Last-Event-ID": "x"}),
    ),
    (
        ("get", "/api/v1/builds/{build_id}/events"),
        404,
        {},
        None,
        lambda c, _: c.get(f"/api/v1/builds/{UNKNOWN}/events"),
    ),
    (("post", "/api/v1/generate"), 400, MODEL, None, lambda c, _: generate(c, prompt="")),
    (("post", "/api/v1/generate"), 404, MODEL, None, lambda c, _: generate(c, template="no")),
    (
        ("post", "/api/v1/generate"),
        409,
        MODEL,
        ended,
        lambda c, i: generate(c, base_build=i),
    ),
    (
        ("post", "/api/v1/generate"),
        429,
        {**MODEL, "max_queued": 1},
        queued,
        lambda c, _: generate(c),
    ),
    (("post", "/api/v1/generate"), 503, {}, None, lambda c, _: generate(c)),
    (
        ("post", "/api/v1/generate"),
        507,
        {**MODEL, "min_free_disk_mb": 10**9},
        None,
        lambda c, _: generate(c),
    ),
    (
        ("get", "/api/v1/builds/{build_id}/generation"),
        404,
        {},
        ended,
        lambda c, i: c.get(f"/api/v1/builds/{i}/generation"),
    ),
    (("get", "/healthz"), 503, {}, None, lambda c, _: c.get("/healthz")),
    # Dev sessions: with no setup, Redis (their registry) does not answer.
    (("get", "/api/v1/dev/sessions"), 503, {}, None, lambda c, _: c.get("/api/v1/dev/sessions")),
    (("post", DEV), 400, {}, None, lambda c, _: c.post(dev(), json={"bogus": 1})),
    (("post", DEV), 404, {}, None, lambda c, _: c.post(dev(), json={"template": "nope"})),
    (("post", DEV), 409, {}, ended, lambda c, i: c.post(dev(), json={"from_build": i})),
    (("post", DEV), 413, {"max_upload_mb": 0}, None, lambda c, _: c.post(dev(), json={})),
    (("post", DEV), 429, {}, redis_up, lambda c, _: c.post(dev(), json={"files": PROJECT})),
    (("post", DEV), 503, {}, None, lambda c, _: c.post(dev(), json={"files": PROJECT})),
    (("get", DEV), 404, {}, redis_up, lambda c, _: c.get(dev())),
    (("get", DEV), 503, {}, None, lambda c, _: c.get(dev())),
    (("delete", DEV), 404, {}, redis_up, lambda c, _: c.delete(dev())),
    (("delete", DEV), 409, {}, dev_session(DevStatus.STOPPED), lambda c, _: c.delete(dev())),
    (("delete", DEV), 503, {}, None, lambda c, _: c.delete(dev())),
    (("patch", DEV + "/files"), 400, {}, None, lambda c, _: c.patch(dev("/files"), json={})),
    (("patch", DEV + "/files"), 404, {}, redis_up, lambda c, _: c.patch(dev("/files"), json=EDIT)),
    (
        ("patch", DEV + "/files"),
        409,
        {},
        dev_session(DevStatus.STARTING),
        lambda c, _: c.patch(dev("/files"), json=EDIT),
    ),
    (
        ("patch", DEV + "/files"),
        413,
        {"max_upload_mb": 0},
        None,
        lambda c, _: c.patch(dev("/files"), json=EDIT),
    ),
    (("patch", DEV + "/files"), 503, {}, None, lambda c, _: c.patch(dev("/files"), json=EDIT)),
    (("get", DEV + "/files"), 404, {}, redis_up, lambda c, _: c.get(dev("/files"))),
    (("get", DEV + "/files"), 503, {}, None, lambda c, _: c.get(dev("/files"))),
    (("post", DEV + "/build"), 404, {}, redis_up, lambda c, _: c.post(dev("/build"))),
    (
        ("post", DEV + "/build"),
        429,
        {"max_queued": 1},
        dev_session(DevStatus.READY, queued_build=True),
        lambda c, _: c.post(dev("/build")),
    ),
    (("post", DEV + "/build"), 503, {}, None, lambda c, _: c.post(dev("/build"))),
    (
        ("post", DEV + "/build"),
        507,
        {"min_free_disk_mb": 10**9},
        dev_session(DevStatus.READY),
        lambda c, _: c.post(dev("/build")),
    ),
    (
        ("get", DEV + "/events"),
        400,
        {},
        None,
        lambda c, _: c.get(dev("/events"), headers={"Last-Event-ID": "x"}),
    ),
    (("get", DEV + "/events"), 404, {}, redis_up, lambda c, _: c.get(dev("/events"))),
    (("get", DEV + "/events"), 503, {}, None, lambda c, _: c.get(dev("/events"))),
    (
        ("get", "/api/v1/environments"),
        503,
        {"sandbox_image": "kiln-sandbox:no-such-tag"},  # missing (or no engine): 503 either way
        None,
        lambda c, _: c.get("/api/v1/environments"),
    ),
]


@pytest.mark.parametrize(
    ("route", "status", "settings", "setup", "call"),
    CASES,
    ids=[f"{m} {p} {s}" for (m, p), s, *_ in CASES],
)
def test_each_declared_error_is_answered(
    offline_api: OfflineAPI,
    route: tuple[str, str],
    status: int,
    settings: dict[str, Any],
    setup: Callable[[Context], str] | None,
    call: Callable[[httpx.Client, str | None], httpx.Response],
) -> None:
    client, ctx = offline_api(**settings)
    build_id = setup(ctx) if setup else None
    response = call(client, build_id)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body["error"]) == {"code", "message"}, body
    assert status in ERRORS[route]


def test_every_declared_error_is_provoked_above() -> None:
    provoked: dict[tuple[str, str], set[int]] = {route: set() for route in ERRORS}
    for route, status, *_ in CASES:
        provoked[route].add(status)
    assert provoked == ERRORS


def test_a_generated_build_answers_its_generation(offline_api: OfflineAPI) -> None:
    client, ctx = offline_api()
    build_id = ended(ctx)
    ctx.store.add_generation(Generation(build_id=build_id, prompt="p", model="m"))
    body = client.get(f"/api/v1/builds/{build_id}").json()
    assert BuildPublic.model_validate(body).generation is not None
    assert client.get(f"/api/v1/builds/{build_id}/generation").status_code == 200
