"""The generate → build → fix loop through the fake sandbox and a scripted model."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orchestrator.builds.generation import GenerationRounds, RetryHook
from orchestrator.builds.recovery import recover_lost
from orchestrator.codegen.client import Completion, Deadline, ModelConfig
from orchestrator.errors import GenerationError
from orchestrator.records.models import Build, Generation
from orchestrator.sandbox.fake import DIST_INDEX, Script, scripted
from orchestrator.sandbox.step import Limits
from tests.unit.builds.conftest import Kiln, make_kiln

BUILT = Script(writes=DIST_INDEX)
TS_ERROR = Script(
    exit_code=2,
    lines=["src/main.ts(3,7): error TS2322: Type 'number' is not assignable to type 'string'."],
)
OTHER_TS_ERROR = Script(
    exit_code=2, lines=["src/counter.ts(1,1): error TS2304: Cannot find name 'nope'."]
)


def answer(summary: str = "wrote it", files: dict[str, str] | None = None) -> str:
    """A model answer in the schema: whole files to write."""
    written = files or {"src/main.ts": "console.log('hi')\n"}
    return json.dumps(
        {
            "summary": summary,
            "files": [{"path": p, "content": c} for p, c in written.items()],
            "delete": [],
        }
    )


Reply = str | Exception | Callable[[], str]


@dataclass
class ScriptedModel:
    """A model client that answers from a script and records what it was asked."""

    replies: list[Reply]
    asked: list[list[dict[str, str]]] = field(default_factory=list)
    config: ModelConfig | None = None
    on_retry: RetryHook | None = None

    def factory(self, config: ModelConfig, deadline: Deadline, on_retry: RetryHook) -> Any:
        self.config, self.on_retry = config, on_retry
        return self

    def complete(
        self, messages: list[dict[str, str]], response_format: dict[str, Any]
    ) -> Completion:
        self.asked.append(messages)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        text = reply() if callable(reply) else reply
        return Completion(text, "fake-model", 100, 20, "stop", 0.01)

    def prompt(self, index: int) -> str:
        return "\n".join(m["content"] for m in self.asked[index])


@pytest.fixture
def kiln(tmp_path: Path) -> Kiln:
    return make_kiln(tmp_path / "var", openai_api_key="sk-unit", generate_max_fix_rounds=2)


def generate(kiln: Kiln, model: ScriptedModel, template: str = "vanilla") -> Build:
    """Record a generated build (as ``submit_generation`` does) and run its job."""
    build = kiln.ctx.store.add(Build(project="gen", template=template, limits=_limits()))
    kiln.ctx.store.add_generation(
        Generation(build_id=build.id, prompt="a counter app", model="fake-model", template=template)
    )
    return kiln.run(build.id, GenerationRounds(model.factory))


def _limits() -> dict[str, Any]:
    return {"timeout_s": 60, "memory_mb": 512, "cpus": 1.0}


def progress(kiln: Kiln, build_id: str) -> list[tuple[str, int, str]]:
    return [
        (e.data["state"], e.data["round"], e.data["kind"])
        for e in kiln.events(build_id)
        if e.event == "generation"
    ]


def test_a_generation_that_builds_first_time(kiln: Kiln) -> None:
    kiln.script(scripted({"build": BUILT}))
    model = ScriptedModel([answer()])
    build = generate(kiln, model)
    assert build.status == "succeeded", build.error_message
    assert progress(kiln, build.id) == [("requesting", 0, "generate"), ("applied", 0, "generate")]
    assert kiln.phases(build.id)[:2] == ["generating", "preparing"]
    body = kiln.end(build.id)  # one end, the public view, generation summary included
    assert body["generation"]["model_calls"] == 1
    assert body["generation"]["files"] == ["src/main.ts"]
    assert body["generation"]["usage"]["total_tokens"] == 120
    assert "a counter app" in model.prompt(0)


def test_a_failed_build_is_diagnosed_fixed_and_built_again(kiln: Kiln) -> None:
    kiln.script(scripted({"build": [TS_ERROR, BUILT]}))
    model = ScriptedModel([answer(), answer("fixed the type", {"src/main.ts": "const a = 'x'\n"})])
    build = generate(kiln, model)
    assert build.status == "succeeded", build.error_message
    assert progress(kiln, build.id) == [
        ("requesting", 0, "generate"),
        ("applied", 0, "generate"),
        ("diagnosed", 0, "generate"),
        ("requesting", 1, "fix"),
        ("applied", 1, "fix"),
    ]
    # The fix prompt carries the failed step's own output, diagnosed.
    assert "TS2322" in model.prompt(1) and "src/main.ts" in model.prompt(1)
    body = kiln.end(build.id)
    assert body["generation"]["fix_rounds"] == 1 and body["generation"]["model_calls"] == 2
    assert kiln.sandbox.ran().count("build") == 2


def test_the_same_error_twice_stops_the_loop(kiln: Kiln) -> None:
    kiln.script(scripted({"build": TS_ERROR}))
    build = generate(kiln, ScriptedModel([answer(), answer("try again")]))
    assert (build.status, build.error_code) == ("failed", "build_failed")
    states = progress(kiln, build.id)
    assert states[-1] == ("stopped", 1, "fix")
    stopped = [e.data for e in kiln.events(build.id) if e.data.get("state") == "stopped"]
    assert "the same error came back" in stopped[0]["message"]
    assert build.error_diagnostics is not None
    assert build.error_diagnostics["category"] == "type_error"  # from the last build's log
    kiln.end(build.id)


def test_no_fix_rounds_left_stops_the_loop(kiln: Kiln) -> None:
    kiln.script(scripted({"build": [TS_ERROR, OTHER_TS_ERROR, TS_ERROR]}))
    kiln.ctx.settings.generate_max_fix_rounds = 1
    build = generate(kiln, ScriptedModel([answer(), answer("fix")]))
    assert build.error_code == "build_failed"
    stopped = [e.data for e in kiln.events(build.id) if e.data.get("state") == "stopped"]
    assert "no fix rounds left (1 used)" in stopped[0]["message"]


def test_a_failure_that_is_not_the_projects_is_not_sent_to_the_model(kiln: Kiln) -> None:
    kiln.script(scripted({"build": Script(exit_code=137, oom_killed=True)}))
    model = ScriptedModel([answer()])
    build = generate(kiln, model)
    assert build.error_code == "out_of_memory"
    assert len(model.asked) == 1
    assert "diagnosed" not in [state for state, _, _ in progress(kiln, build.id)]


def test_an_invalid_answer_fails_with_a_report_about_the_model(kiln: Kiln) -> None:
    kiln.script(scripted({"build": TS_ERROR}))
    build = generate(kiln, ScriptedModel([answer(), "not json at all"]))
    assert (build.status, build.error_code) == ("failed", "invalid_model_output")
    assert build.error_diagnostics is not None
    # The model's failure, not the earlier build log (TS2322), is what the report says.
    assert "TS2322" not in json.dumps(build.error_diagnostics)
    body = kiln.end(build.id)
    assert body["generation"]["model_calls"] == 2
    assert body["generation"]["fix_rounds"] == 1


def test_a_model_error_fails_the_generation(kiln: Kiln) -> None:
    error = GenerationError("the model endpoint failed: 401", code="model_error")
    build = generate(kiln, ScriptedModel([error]))
    assert (build.error_code, build.error_message) == (
        "model_error",
        "the model endpoint failed: 401",
    )
    assert kiln.sandbox.ran() == []
    assert kiln.end(build.id)["generation"]["model_calls"] == 0


def test_a_bug_in_the_loop_is_an_internal_generation_error(kiln: Kiln) -> None:
    build = generate(kiln, ScriptedModel([RuntimeError("a bug")]))
    assert (build.error_code, build.error_message) == ("generation_failed", "internal error: a bug")
    kiln.end(build.id)


def test_no_model_configured_on_the_worker(tmp_path: Path) -> None:
    kiln = make_kiln(tmp_path / "var")  # no key, no base URL
    build = generate(kiln, ScriptedModel([]))
    assert (build.error_code, build.error_message) == (
        "model_error",
        "no model is configured on the worker",
    )


def test_cancel_while_the_model_thinks(kiln: Kiln) -> None:
    ids: list[str] = []

    def cancel_then_answer() -> str:
        kiln.cancel(ids[0])
        return answer()

    kiln.script(scripted({"build": BUILT}))
    build = kiln.ctx.store.add(Build(project="gen", template="vanilla", limits=_limits()))
    ids.append(build.id)
    kiln.ctx.store.add_generation(
        Generation(build_id=build.id, prompt="p", model="fake-model", template="vanilla")
    )
    ended = kiln.run(build.id, GenerationRounds(ScriptedModel([cancel_then_answer]).factory))
    assert (ended.status, ended.error_code) == ("cancelled", "cancelled")
    assert kiln.sandbox.ran() == []
    assert kiln.end(build.id)["status"] == "cancelled"


def test_a_generation_whose_worker_is_lost_ends_with_its_generation_summary(kiln: Kiln) -> None:
    kiln.script(scripted({"build": BUILT}))
    build = kiln.ctx.store.add(Build(project="gen", template="vanilla", limits=_limits()))
    kiln.ctx.store.add_generation(
        Generation(build_id=build.id, prompt="p", model="fake-model", template="vanilla")
    )
    claimed = kiln.ctx.store.claim(build.id, worker="w")
    assert claimed is not None
    kiln.ctx.settings.max_attempts = 1
    assert recover_lost(kiln.ctx, claimed, "the worker running this build was lost") == "failed"
    body = kiln.end(build.id)
    assert body["error"]["code"] == "worker_lost"
    assert body["generation"]["prompt"] == "p"  # it used to be missing here


def test_generated_sources_are_what_the_build_runs_and_keeps(kiln: Kiln) -> None:
    seen: list[str] = []

    def read_source(call: Any) -> None:
        seen.append((call.workspace / "src" / "main.ts").read_text())

    kiln.script(scripted({"build": Script(writes=DIST_INDEX, effect=read_source)}))
    build = generate(kiln, ScriptedModel([answer(files={"src/main.ts": "export const v = 1\n"})]))
    assert build.status == "succeeded"
    assert seen == ["export const v = 1\n"]
    assert kiln.ctx.storage.has_kept_source(build.id)
    assert Limits(**build.limits).timeout_s == 60


def test_errors_the_projects_dev_session_shows_go_to_the_model(kiln: Kiln) -> None:
    kiln.ctx.bus.dev_event("gen", "status", {"status": "ready", "revision": 1})
    kiln.ctx.bus.dev_event(
        "gen", "error", {"revision": 1, "message": "boom is not defined", "file": "src/main.ts"}
    )
    kiln.script(scripted({"build": BUILT}))
    model = ScriptedModel([answer()])
    build = generate(kiln, model)
    assert build.status == "succeeded", build.error_message
    assert "src/main.ts: boom is not defined" in model.prompt(0)
    assert "fix the errors the live preview shows" in model.prompt(0)
    assert progress(kiln, build.id)[0] == ("diagnosed", 0, "generate")


def test_a_stopped_dev_session_adds_nothing_to_the_request(kiln: Kiln) -> None:
    kiln.ctx.bus.dev_event("gen", "error", {"revision": 1, "message": "boom is not defined"})
    kiln.ctx.bus.dev_event("gen", "end", {"status": "stopped", "revision": 1})
    kiln.script(scripted({"build": BUILT}))
    model = ScriptedModel([answer()])
    generate(kiln, model)
    assert "boom" not in model.prompt(0) and "live preview" not in model.prompt(0)
