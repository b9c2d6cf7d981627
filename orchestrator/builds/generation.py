"""The generate -> build -> fix loop: one RQ job, one build id, one event stream, one end.

A generated build runs its rounds under its own id: the model writes the project
(phase ``generating``), Kiln builds it (``preparing`` ... ``publishing``); when the build
fails, the log becomes a diagnostics report, the model gets it with the files it names,
its edits are applied and the project is built again. The loop ends at the first
success, after ``generate_max_fix_rounds`` fixes, as soon as an error fingerprint comes
back that a fix was already asked for, or when the error is not the project's (timeout,
memory, sandbox). A client following the build's events sees every round and exactly one
``end``.
"""

from __future__ import annotations

import logging
from typing import Any

from rq import Retry

from orchestrator.builds.diagnostics import diagnose, summary
from orchestrator.builds.pipeline import BuildRun, Cancelled, Outcome
from orchestrator.builds.public import public_view
from orchestrator.codegen.client import Deadline, ModelClient, model_config
from orchestrator.codegen.edits import Edit, apply_answer
from orchestrator.codegen.prompt import fix_messages, generation_messages
from orchestrator.codegen.schema import RESPONSE_FORMAT, parse_answer
from orchestrator.context import Context
from orchestrator.errors import BuildError, GenerationError, KilnError
from orchestrator.logs import build_context
from orchestrator.project import templates
from orchestrator.project.input import Files, files_from_tar, input_limits, to_tar
from orchestrator.records.models import Build, Generation, Phase, Status
from orchestrator.sandbox.egress.service import allowed_hosts
from orchestrator.settings import get_settings

log = logging.getLogger("kiln.codegen")
FIXABLE = frozenset({"build_failed", "install_failed"})


def base_files(ctx: Context, generation: Generation) -> Files:
    """The project the model starts from: a template, or the sources of an earlier build."""
    if generation.base_build:
        archive = ctx.storage.read_kept_source(generation.base_build)
        if archive is None:
            raise GenerationError(f"the sources of build {generation.base_build} are gone")
        return files_from_tar(archive, input_limits(ctx.settings))
    return templates.load_template(ctx.settings.templates_dir, generation.template or "")


class GenerationRun(BuildRun):
    """A build whose sources come from the model, rebuilt after each fix."""

    first_phase = Phase.GENERATING

    def __init__(self, build_id: str, ctx: Context) -> None:
        super().__init__(build_id, ctx)
        self.generation: Generation | None = None
        self.deadline = Deadline(ctx.settings.generate_budget_s)
        self.asking = (0, "generate")  # the round and kind of the model call under way

    def _outcome(self) -> Outcome:
        """Generate, build, fix: how the whole generation ended."""
        return self._generate_and_build()

    def _generate_and_build(self) -> Outcome:
        try:
            return self._rounds()
        except Cancelled:
            return Outcome(Status.CANCELLED, "cancelled", "the build was cancelled")
        except BuildError as exc:
            if isinstance(exc, GenerationError):
                self.step_output.clear()  # the report is about the model, not a build log
            return Outcome(Status.FAILED, exc.code, exc.message)
        except Exception as exc:  # a bug must still end the build
            log.exception("generation %s crashed", self.id)
            return Outcome(Status.FAILED, GenerationError.code, f"internal error: {exc}")

    def _rounds(self) -> Outcome:
        self.generation = self.ctx.store.generation(self.id)
        if self.generation is None:
            raise GenerationError(f"build {self.id} has no generation record")
        config = model_config(self.settings)
        if config is None:
            raise GenerationError("no model is configured on the worker", code="model_error")
        client = ModelClient(config, self.deadline, on_retry=self._retrying)
        max_chars = self.settings.generate_max_prompt_chars
        prompt = self.generation.prompt
        files = base_files(self.ctx, self.generation)

        self._enter(Phase.GENERATING)
        messages = generation_messages(prompt, files, max_chars)
        files = self._ask(client, messages, files, round_no=0, kind="generate")
        fixes = self.settings.generate_max_fix_rounds
        seen: set[str] = set()  # fingerprints of the errors already sent back
        for round_no in range(fixes + 1):
            self._enter(Phase.PREPARING)
            outcome = self.run_once()
            if outcome.status != Status.FAILED or outcome.code not in FIXABLE:
                return outcome
            report = diagnose(outcome.code, outcome.message or "", "\n".join(self.step_output))
            stop = None
            if report["fingerprint"] in seen:
                stop = f"the same error came back (fingerprint {report['fingerprint']}); stopping"
            elif round_no == fixes:
                stop = f"no fix rounds left ({fixes} used); stopping"
            self._progress(
                "diagnosed",
                round_no,
                "fix" if round_no else "generate",
                f"the build of round {round_no} failed: {outcome.message} "
                f"({report['category']}):\n{summary(report)}",
                diagnostics=report,
            )
            if stop:
                self._progress("stopped", round_no, "fix", stop, fingerprint=report["fingerprint"])
                return outcome
            seen.add(report["fingerprint"])
            self._enter(Phase.GENERATING)
            messages = fix_messages(
                prompt, files, report, outcome.message or "", max_chars, summary(report)
            )
            files = self._ask(
                client,
                messages,
                files,
                round_no=round_no + 1,
                kind="fix",
                fingerprint=report["fingerprint"],
            )
        raise AssertionError("unreachable: the last round returns")

    # -- one model call ------------------------------------------------------------------

    def _ask(
        self,
        client: ModelClient,
        messages: list[dict[str, str]],
        files: Files,
        *,
        round_no: int,
        kind: str,
        fingerprint: str | None = None,
    ) -> Files:
        """Ask the model, apply its answer, write the new sources; the project after it."""
        self._check_cancel()
        self.asking = (round_no, kind)
        model = client.config.model
        self._progress("requesting", round_no, kind, f"asking {model} ({kind}, round {round_no})")
        completion = client.complete(messages, RESPONSE_FORMAT)
        self._check_cancel()
        usage = {
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
        }
        entry: dict[str, Any] = {
            "round": round_no,
            "kind": kind,
            "model": completion.model,
            "seconds": round(completion.seconds, 2),
            "finish_reason": completion.finish_reason,
            **usage,
        }
        if fingerprint:
            entry["fixes"] = fingerprint
        try:
            answer = parse_answer(completion.text)
            edit = apply_answer(
                files, answer, input_limits(self.settings), allowed_hosts(self.settings)
            )
        except GenerationError as exc:
            if completion.finish_reason == "length":
                exc.message += " (the answer was cut off at the output token limit)"
            entry["error"] = exc.message
            self._record(entry, None)
            raise
        entry.update(summary=answer.summary, files=sorted(edit.written), deleted=edit.deleted)
        self._record(entry, edit)
        self._progress(
            "applied",
            round_no,
            kind,
            f"{completion.model} wrote {len(edit.written)} files, deleted {len(edit.deleted)} "
            f"({completion.prompt_tokens}+{completion.completion_tokens} tokens, "
            f"{completion.seconds:.1f} s): {answer.summary}",
            usage=usage,
            files=sorted(edit.written),
            deleted=edit.deleted,
        )
        self.ctx.storage.write_source(self.id, to_tar(edit.files))
        return edit.files

    def _record(self, entry: dict[str, Any], edit: Edit | None) -> None:
        generation = self.generation
        assert generation is not None
        generation.rounds = [*generation.rounds, entry]
        generation.prompt_tokens += int(entry["prompt_tokens"])
        generation.completion_tokens += int(entry["completion_tokens"])
        if edit is not None:
            kept = {p: c for p, c in generation.files.items() if p not in edit.deleted}
            generation.files = {**kept, **edit.written}
            generation.deleted = sorted(
                (set(generation.deleted) | set(edit.deleted)) - set(edit.written)
            )
        self.ctx.store.update_generation(
            self.id,
            rounds=generation.rounds,
            prompt_tokens=generation.prompt_tokens,
            completion_tokens=generation.completion_tokens,
            files=generation.files,
            deleted=generation.deleted,
        )

    # -- events --------------------------------------------------------------------------

    def _progress(self, state: str, round_no: int, kind: str, text: str, **data: Any) -> None:
        """A ``generation`` event for clients, and the same news as a Kiln log line."""
        body = {"state": state, "round": round_no, "kind": kind, "message": text, **data}
        self.bus.publish(self.id, "generation", body)
        for line in text.splitlines():
            self.bus.note(self.id, self.phase, line)

    def _retrying(self, reason: str, wait_s: float, attempt: int) -> None:
        self._progress(
            "retrying",
            *self.asking,
            f"model call failed ({reason}); attempt {attempt} in {wait_s:.1f} s",
            wait_s=round(wait_s, 2),
            attempt=attempt,
        )

    def _end_body(self, build: Build) -> dict[str, Any]:
        generation = self.ctx.store.generation(self.id)
        return public_view(build, self.settings.preview_url(self.id), generation)


def run_generation(build_id: str) -> Retry | None:
    """The RQ job: generate, build and fix one build in this worker process."""
    try:
        with build_context(build_id):
            return GenerationRun(build_id, Context(get_settings())).run()
    except KilnError:
        log.exception("generation %s could not run", build_id)
        raise
