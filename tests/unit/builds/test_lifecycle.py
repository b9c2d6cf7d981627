"""Every transition of a build, each ending in exactly one ``end`` event: its public view."""

from __future__ import annotations

import pytest
import redis

from orchestrator.builds import lifecycle
from orchestrator.builds.outcome import CANCELLED, SUCCEEDED, Cancelled, Outcome, outcome_of
from orchestrator.builds.recovery import recover_lost
from orchestrator.builds.reuse import answer_from
from orchestrator.errors import BuildError, GenerationError
from orchestrator.project.input import to_tar
from orchestrator.records.models import Build, Generation, Phase, Status
from orchestrator.sandbox.fake import DIST_INDEX, Script, scripted
from orchestrator.service import cancel_build, record_and_enqueue, supersede_older
from tests.unit.builds.conftest import NO_DEPENDENCIES, Kiln

# ------------------------------------------------------------------- outcome_of


def outcome(exc: Exception) -> Outcome:
    return outcome_of(exc, step_output="the log", internal_code="sandbox_error", build_id="b")


def test_outcomes_of_exceptions() -> None:
    assert outcome(Cancelled()) == CANCELLED
    assert outcome(BuildError("no", code="build_failed")) == Outcome(
        Status.FAILED, "build_failed", "no", "the log"
    )
    # A model failure is diagnosed on its own message, not on an earlier build's log.
    assert outcome(GenerationError("bad", code="model_error")) == Outcome(
        Status.FAILED, "model_error", "bad", ""
    )
    assert outcome(KeyError("k")) == Outcome(
        Status.FAILED, "sandbox_error", "internal error: 'k'", "the log"
    )
    with pytest.raises(redis.ConnectionError):
        outcome(redis.ConnectionError("gone"))


# ------------------------------------------------------------------- transitions


def claimed(kiln: Kiln) -> Build:
    build = kiln.record(NO_DEPENDENCIES)
    taken = lifecycle.claim(kiln.ctx, build.id, worker="w", project_cap=0)
    assert taken is not None and taken.status == "running" and taken.attempts == 1
    return taken


def test_claim_takes_a_queued_build_once(kiln: Kiln) -> None:
    build = claimed(kiln)
    assert lifecycle.claim(kiln.ctx, build.id, worker="w2", project_cap=0) is None


def test_finish_records_the_outcome_and_sends_one_end(kiln: Kiln) -> None:
    build = claimed(kiln)
    log = "src/a.ts(1,1): error TS2304: Cannot find name 'x'."
    failed = Outcome(Status.FAILED, "build_failed", "it broke", log)
    ended = lifecycle.finish(
        kiln.ctx, build.id, failed, attempt=1, phase=Phase.BUILDING, log_tail="tail", cache={}
    )
    assert ended is not None and (ended.status, ended.phase) == ("failed", "done")
    assert ended.error_log_tail == "tail"
    assert ended.error_diagnostics is not None
    assert ended.error_diagnostics["category"] == "type_error"  # from outcome.log
    body = kiln.end(build.id)
    # The message leads with the first diagnosis; the step's own words stay as detail.
    assert body["error"]["message"] == "src/a.ts:1: TS2304: Cannot find name 'x'. (it broke)"
    assert "[kiln] failed: it broke" in kiln.log(build.id)


def test_finish_of_a_success_keeps_no_tail_and_counts_cache_hits(kiln: Kiln) -> None:
    build = claimed(kiln)
    cache = {"layer": "hit", "layer_key": "k"}
    ended = lifecycle.finish(
        kiln.ctx, build.id, SUCCEEDED, attempt=1, phase=Phase.PUBLISHING, log_tail="t", cache=cache
    )
    assert ended is not None and ended.error_log_tail is None and ended.cache == cache
    assert kiln.end(build.id)["cache"] == cache
    assert kiln.redis.hget("kiln:unit:metrics:cache_hits_total", "cache=layer") == b"1"


def test_finish_of_an_attempt_that_was_taken_over_sends_nothing(kiln: Kiln) -> None:
    build = claimed(kiln)
    ended = lifecycle.finish(
        kiln.ctx, build.id, SUCCEEDED, attempt=2, phase=Phase.BUILDING, log_tail="", cache={}
    )
    assert ended is None
    assert kiln.ends(build.id) == []
    assert kiln.ctx.store.get(build.id).status == "running"


def test_cancel_of_a_queued_build_ends_it(kiln: Kiln) -> None:
    build = kiln.record(NO_DEPENDENCIES)
    assert cancel_build(kiln.ctx, build.id).status == "cancelled"
    assert kiln.end(build.id)["error"]["code"] == "cancelled"


def test_cancel_of_a_running_build_leaves_its_end_to_the_worker(kiln: Kiln) -> None:
    build = claimed(kiln)
    assert cancel_build(kiln.ctx, build.id).status == "running"
    assert kiln.ends(build.id) == []
    assert kiln.ctx.cancel_requested(build.id)


def test_supersede_ends_the_older_queued_builds_of_the_project(kiln: Kiln) -> None:
    older = [kiln.record(NO_DEPENDENCIES) for _ in range(2)]
    running = claimed(kiln)
    newer = kiln.record(NO_DEPENDENCIES)
    assert sorted(supersede_older(kiln.ctx, newer)) == sorted(b.id for b in older)
    for build in older:
        body = kiln.end(build.id)
        assert body["status"] == "cancelled"
        assert body["error"]["code"] == "superseded"
        assert body["error"]["message"] == f"superseded by build {newer.id}"
    assert kiln.ctx.store.get(running.id).status == "running"
    assert kiln.ctx.store.get(newer.id).status == "queued"


def test_a_lost_build_with_runs_left_goes_back_in_line(kiln: Kiln) -> None:
    build = claimed(kiln)
    assert recover_lost(kiln.ctx, build, "the worker was lost") == "retried"
    assert kiln.ctx.store.get(build.id).status == "queued"
    assert kiln.ends(build.id) == []
    assert "running it again (attempt 2 of 2)" in kiln.log(build.id)
    assert recover_lost(kiln.ctx, build, "again") is None  # another reconciler did it


def test_a_lost_build_with_no_runs_left_fails_worker_lost(kiln: Kiln) -> None:
    kiln.ctx.settings.max_attempts = 1
    build = claimed(kiln)
    assert recover_lost(kiln.ctx, build, "the worker was lost") == "failed"
    body = kiln.end(build.id)
    assert body["error"]["code"] == "worker_lost"
    assert body["error"]["message"] == "the worker was lost; gave up after 1 attempt(s)"
    assert "generation" not in body
    assert recover_lost(kiln.ctx, build, "again") is None


def test_lose_of_a_generated_build_keeps_its_generation_summary(kiln: Kiln) -> None:
    build = claimed(kiln)
    kiln.ctx.store.add_generation(Generation(build_id=build.id, prompt="p", model="m"))
    assert lifecycle.lose(kiln.ctx, build, "lost")
    assert kiln.end(build.id)["generation"]["model"] == "m"


def test_reuse_answers_at_once_with_a_copy_of_the_artifact(kiln: Kiln) -> None:
    kiln.script(scripted({"build": Script(writes=DIST_INDEX)}))
    earlier = kiln.build(NO_DEPENDENCIES)
    fresh = Build(project="app", limits=earlier.limits)
    reused = answer_from(kiln.ctx, earlier, fresh, to_tar(NO_DEPENDENCIES))
    assert (reused.status, reused.reused_from) == ("succeeded", earlier.id)
    body = kiln.end(reused.id)
    assert body["cache"] == {"reuse": "hit", "reused_from": earlier.id}
    assert kiln.ctx.storage.has_artifact(reused.id)
    assert kiln.sandbox.ran() == ["build"]  # nothing ran for the reused one


def test_a_queue_that_cannot_take_the_build_fails_it_without_events(kiln: Kiln) -> None:
    class Down:
        def __getattr__(self, name: str) -> object:
            raise redis.ConnectionError("Redis is down")

    build = Build(project="app", limits={"timeout_s": 60, "memory_mb": 512, "cpus": 1.0})
    vars(kiln.ctx)["redis"] = Down()
    vars(kiln.ctx)["bus"] = Down()
    from orchestrator.errors import Unavailable

    with pytest.raises(Unavailable):
        record_and_enqueue(kiln.ctx, build, to_tar(NO_DEPENDENCIES))
    failed = kiln.ctx.store.get(build.id)
    assert (failed.status, failed.error_code) == ("failed", "queue_unavailable")
    assert not kiln.ctx.storage.has_source(build.id)
