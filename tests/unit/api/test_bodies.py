"""Old bodies against new: the pydantic models send byte for byte the JSON the plain dicts
sent before them (``legacy_*`` below are the dict builders as they were), through
``public_view`` (the SSE ``end`` event) and through the real app's routes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator import service
from orchestrator.builds.diagnostics import diagnose
from orchestrator.builds.public import public_view
from orchestrator.builds.queue_wait import queue_fields
from orchestrator.context import Context
from orchestrator.project.slugs import alias_url
from orchestrator.project.templates import list_templates
from orchestrator.records.models import Build, Generation, Status, aware
from orchestrator.records.public import GenerationPublic
from tests.unit.api.conftest import OfflineAPI

# ---------------------------------------------- the dict builders before the models


def legacy_iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return aware(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def legacy_duration_ms(build: Build) -> int | None:
    if build.started_at is None or build.finished_at is None:
        return None
    return int((aware(build.finished_at) - aware(build.started_at)).total_seconds() * 1000)


def legacy_generation_summary(generation: Generation) -> dict[str, Any]:
    return {
        "prompt": generation.prompt,
        "model": generation.model,
        "template": generation.template,
        "base_build": generation.base_build,
        "model_calls": len(generation.rounds),
        "fix_rounds": sum(1 for r in generation.rounds if r.get("kind") == "fix"),
        "usage": {
            "prompt_tokens": generation.prompt_tokens,
            "completion_tokens": generation.completion_tokens,
            "total_tokens": generation.prompt_tokens + generation.completion_tokens,
        },
        "files": sorted(generation.files),
        "deleted": sorted(generation.deleted),
    }


def legacy_public_view(
    build: Build,
    preview_url: str,
    generation: Generation | None = None,
    queue_position: int | None = None,
) -> dict[str, Any]:
    error = None
    if build.error_code:
        error = {
            "code": build.error_code,
            "message": build.error_message or "",
            "log_tail": build.error_log_tail or "",
            "diagnostics": build.error_diagnostics,
        }
        if build.status == Status.FAILED and build.error_diagnostics is None:
            error["diagnostics"] = diagnose(
                build.error_code, build.error_message or "", build.error_log_tail or ""
            )
    body = {
        "id": build.id,
        "project": build.project,
        "template": build.template,
        "status": build.status,
        "phase": build.phase,
        "created_at": legacy_iso(build.created_at),
        "started_at": legacy_iso(build.started_at),
        "finished_at": legacy_iso(build.finished_at),
        "duration_ms": legacy_duration_ms(build),
        "limits": build.limits,
        "attempts": build.attempts,
        "error": error,
        "preview_url": preview_url if build.status == Status.SUCCEEDED else None,
        "reused_from": build.reused_from,
        "cache": build.cache or {},
        # Issue 11's addition (the dev branch's dict builder had it): the build's URLs.
        "urls": {
            "preview": preview_url,
            "latest": alias_url(preview_url, build.id, "latest", build.project),
        },
    }
    # Issue 14's additions (the dict builder had them before the models): build settings by
    # name, and the time in the queue.
    body["env"] = sorted(build.env or {})
    environment = build.environment or {}  # the envs branch's field (issue 13)
    body["environment"] = {
        "node": environment.get("node"),
        "package_manager": environment.get("package_manager"),
    }
    body["root"] = build.root  # the app's folder (issue 13, projects in a subfolder)
    body |= queue_fields(build, queue_position)
    if generation is not None:
        body["generation"] = legacy_generation_summary(generation)
    return body


def wire(body: Any, *, sort_keys: bool = False) -> str:
    """JSON text that tells 1 from 1.0 and keeps key order (== on dicts would not)."""
    return json.dumps(body, ensure_ascii=False, sort_keys=sort_keys)


# ------------------------------------------------------------------ the builds

T0 = datetime(2026, 12, 1, 20, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A queued build's wait grows while a test compares two bodies: stop the clock."""
    monkeypatch.setattr("orchestrator.builds.queue_wait.utcnow", lambda: T0 + timedelta(hours=1))


LIMITS = {"timeout_s": 600, "memory_mb": 2048, "cpus": 2.0}
LOG = "src/App.tsx(3,7): error TS2322: Type 'number' is not assignable to type 'string'."
RECORDED = diagnose("build_failed", "vite build exited 1", LOG)


def builds() -> dict[str, Build]:
    started, finished = T0 + timedelta(seconds=1), T0 + timedelta(seconds=8, milliseconds=5)
    common: dict[str, Any] = {"project": "demo", "created_at": T0, "limits": dict(LIMITS)}
    ran: dict[str, Any] = {**common, "started_at": started, "finished_at": finished}
    return {
        "queued": Build(**common),
        "running": Build(
            **common, status="running", phase="installing", started_at=started, attempts=1
        ),
        "succeeded": Build(
            **ran,
            template="react-ts",
            status="succeeded",
            phase="done",
            attempts=1,
            cache={"layer": "hit", "layer_key": "ab" * 32, "resolution": "miss"},
        ),
        "reused": Build(
            **ran,
            status="succeeded",
            phase="done",
            reused_from="00000000000000aa",
            cache={"reuse": "hit", "reused_from": "00000000000000aa"},
        ),
        "failed, diagnosed by the worker": Build(
            **ran,
            status="failed",
            phase="done",
            attempts=2,
            error_code="build_failed",
            error_message="vite build exited 1",
            error_log_tail=LOG,
            error_diagnostics=RECORDED,
            cache={"layer": "private"},
        ),
        "failed before a worker ran it": Build(
            **common, status="failed", phase="done", error_code="queue_unavailable"
        ),
        "timed out without a message": Build(
            **ran, status="failed", phase="done", error_code="timeout"
        ),
        "cancelled": Build(
            **ran,
            status="cancelled",
            phase="done",
            error_code="cancelled",
            error_message="cancelled by request",
        ),
        "recorded without limits or cache": Build(project="old", created_at=T0, limits={}),
        "a cache key from a later Kiln": Build(**common, cache={"layer": "none", "later": 3}),
        "generated": Build(**ran, status="succeeded", phase="done", template="react-ts"),
    }


def generation(build_id: str) -> Generation:
    rounds = [
        {"round": 0, "kind": "generate", "model": "m", "seconds": 1.5, "finish_reason": "stop",
         "prompt_tokens": 10, "completion_tokens": 20, "summary": "wrote it",
         "files": ["src/App.tsx"], "deleted": []},
        {"round": 1, "kind": "fix", "model": "m", "seconds": 2.25, "finish_reason": "length",
         "prompt_tokens": 30, "completion_tokens": 40, "fixes": "f" * 16,
         "error": "the answer was cut off"},
    ]  # fmt: skip
    return Generation(
        build_id=build_id,
        prompt="a todo app",
        model="m",
        template="react-ts",
        created_at=T0,
        rounds=rounds,
        prompt_tokens=40,
        completion_tokens=60,
        files={"src/App.tsx": "export default 1", "src/main.tsx": "x"},
        deleted=["src/old.css"],
    )


PREVIEW = "http://0123456789abcdef.preview.localhost:8000/"


@pytest.mark.parametrize("name", list(builds()))
def test_public_view_sends_what_the_dict_sent(name: str) -> None:
    build = builds()[name]
    made = generation(build.id) if name == "generated" else None
    assert wire(public_view(build, PREVIEW, made)) == wire(legacy_public_view(build, PREVIEW, made))


def stored(ctx: Context) -> dict[str, str]:
    """Every build of the table recorded (and read back, naive datetimes and all)."""
    ids = {}
    for name, build in builds().items():
        ctx.store.add(build)
        if name == "generated":
            ctx.store.add_generation(generation(build.id))
        ids[name] = build.id
    return ids


def legacy_body(ctx: Context, build_id: str) -> dict[str, Any]:
    build = ctx.store.get(build_id)
    preview = ctx.settings.preview_url(build_id)
    position = service.queue_positions(ctx, [build]).get(build_id)
    return legacy_public_view(build, preview, ctx.store.generation(build_id), position)


def test_get_build_sends_what_it_sent(offline_api: OfflineAPI) -> None:
    client, ctx = offline_api()
    for name, build_id in stored(ctx).items():
        response = client.get(f"/api/v1/builds/{build_id}")
        assert response.status_code == 200, response.text
        assert wire(response.json()) == wire(legacy_body(ctx, build_id)), name
        # ... and the SSE end event (what public_view publishes) is the same body
        build = ctx.store.get(build_id)
        assert response.json() == public_view(
            build,
            ctx.settings.preview_url(build_id),
            ctx.store.generation(build_id),
            service.queue_positions(ctx, [build]).get(build_id),
        )


def test_list_builds_sends_what_it_sent(offline_api: OfflineAPI) -> None:
    client, ctx = offline_api()
    stored(ctx)
    response = client.get("/api/v1/builds?limit=500")
    assert response.status_code == 200
    legacy = {"items": [legacy_body(ctx, b.id) for b in ctx.store.list(limit=500)]}
    assert len(legacy["items"]) == len(builds())
    assert wire(response.json()) == wire(legacy)


def test_the_generation_record_is_sent_as_it_was(offline_api: OfflineAPI) -> None:
    client, ctx = offline_api()
    build_id = stored(ctx)["generated"]
    response = client.get(f"/api/v1/builds/{build_id}/generation")
    assert response.status_code == 200
    record = ctx.store.generation(build_id)
    assert record is not None
    # The record's keys came in the order SQLAlchemy loaded its columns (prompt first); the
    # model sends them in its declared order (build_id first). Keys and values are the same.
    assert wire(response.json(), sort_keys=True) == wire(
        record.model_dump(mode="json"), sort_keys=True
    )
    assert list(response.json()) == list(GenerationPublic.model_fields)


def test_templates_are_sent_as_they_were(offline_api: OfflineAPI) -> None:
    client, ctx = offline_api()
    response = client.get("/api/v1/templates")
    legacy = {"items": list_templates(ctx.settings.templates_dir)}
    assert legacy["items"], "the bundled templates are there"
    assert wire(response.json()) == wire(legacy)


def test_an_unhealthy_answer_is_sent_as_it_was(offline_api: OfflineAPI) -> None:
    client, _ = offline_api()
    response = client.get("/healthz")
    body = response.json()
    checks = body["checks"]
    failed = ", ".join(k for k, v in checks.items() if v != "ok")
    legacy = {
        "status": "unhealthy",
        "checks": checks,
        "error": {"code": "unhealthy", "message": f"not answering: {failed}"},
    }
    assert response.status_code == 503
    assert list(checks) == ["redis", "database", "docker"]
    assert checks["redis"].startswith("error: ") and checks["database"] == "ok"
    assert wire(body) == wire(legacy)
