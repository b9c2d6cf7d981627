"""The generate -> build -> fix loop: one RQ job, one build id, one event stream, one end.

A generated build runs its rounds under its own id: the model writes the project
(phase ``generating``), Kiln builds it (``preparing`` ... ``publishing``); when the build
fails, the log becomes a diagnostics report, the model gets it with the files it names,
its edits are applied and the project is built again. The loop ends at the first
success, after ``generate_max_fix_rounds`` fixes, as soon as an error fingerprint comes
back that a fix was already asked for, or when the error is not the project's (timeout,
memory, sandbox). A client following the build's events sees every round and exactly one
``end``. ``GenerationRounds`` is what a ``BuildRun`` runs in its rounds (composed, not
inherited); the diagnosis of each round reads that round's failed step output.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from rq import Retry

from orchestrator.builds.dev_errors import dev_session_errors
from orchestrator.builds.diagnostics import diagnose, summary
from orchestrator.builds.outcome import Outcome, outcome_of
from orchestrator.builds.pipeline import BuildRun
from orchestrator.codegen.client import Completion, Deadline, ModelClient, ModelConfig, model_config
from orchestrator.codegen.edits import Edit, apply_answer
from orchestrator.codegen.prompt import fix_messages, generation_messages
from orchestrator.codegen.schema import RESPONSE_FORMAT, parse_answer
from orchestrator.context import Context
from orchestrator.errors import ErrorCode, GenerationError, KilnError
from orchestrator.logs import build_context
from orchestrator.project import templates
from orchestrator.project.input import Files, files_from_tar, input_limits, to_tar
from orchestrator.records.models import Generation, Phase, Status
from orchestrator.sandbox.egress.service import allowed_hosts
from orchestrator.settings import get_settings

log = logging.getLogger("kiln.codegen")
FIXABLE = frozenset({ErrorCode.BUILD_FAILED, ErrorCode.INSTALL_FAILED})


def base_files(ctx: Context, generation: Generation) -> Files:
    """The project the model starts from: a template, or the sources of an earlier build."""
    if generation.base_build:
        archive = ctx.storage.read_kept_source(generation.base_build)
        if archive is None:
            raise GenerationError(f"the sources of build {generation.base_build} are gone")
        return files_from_tar(archive, input_limits(ctx.settings))
    return templates.load_template(ctx.settings.templates_dir, generation.template or "")


class Model(Protocol):
    """What the rounds need of a model client (``codegen.client.ModelClient``)."""

    config: ModelConfig

    def complete(
        self, messages: list[dict[str, str]], response_format: dict[str, Any]
    ) -> Completion:
        """One chat completion; GenerationError when it cannot be had."""
        ...


RetryHook = Callable[[str, float, int], None]
ModelFactory = Callable[[ModelConfig, Deadline, RetryHook], Model]


class GenerationRounds:
    """The rounds of a generated build: generate, then build → diagnose → fix until it ends."""

    first_phase = Phase.GENERATING

    def __init__(self, model: ModelFactory = ModelClient) -> None:
        self.model = model

    def __call__(self, run: BuildRun) -> Outcome:
        """Generate, build, fix: how the whole generation ended."""
        try:
            return _Generation(run, self.model).rounds()
        except Exception as exc:
            return outcome_of(
                exc,
                step_output="\n".join(run.step_output),
                internal_code=GenerationError.code,
                build_id=run.id,
            )


class _Generation:
    """One generation's state across its rounds: the record, the budget, the model call."""

    def __init__(self, run: BuildRun, model: ModelFactory) -> None:
        self.run = run
        self.id = run.id
        self.ctx = run.ctx
        self.settings = run.settings
        self.model = model
        self.deadline = Deadline(run.settings.generate_budget_s)
        self.asking = (0, "generate")  # the round and kind of the model call under way
        self.generation: Generation | None = None

    def rounds(self) -> Outcome:
        """Every round to the end; raises what ends the generation outside a build."""
        run = self.run
        self.generation = self.ctx.store.generation(self.id)
        if self.generation is None:
            raise GenerationError(f"build {self.id} has no generation record")
        config = model_config(self.settings)
        if config is None:
            raise GenerationError(
                "no model is configured on the worker", code=ErrorCode.MODEL_ERROR
            )
        client = self.model(config, self.deadline, self._retrying)
        max_chars = self.settings.generate_max_prompt_chars
        prompt = self.generation.prompt
        files = base_files(self.ctx, self.generation)

        run.enter(Phase.GENERATING)
        live_errors = dev_session_errors(self.ctx.bus, self.ctx.store.get(self.id).project)
        if live_errors:
            self._progress(
                "diagnosed",
                0,
                "generate",
                f"the project's dev session shows {len(live_errors)} error(s); "
                "the model gets them with the request:\n" + "\n".join(live_errors),
                source="dev_session",
                errors=live_errors,
            )
        messages = generation_messages(prompt, files, max_chars, live_errors)
        files = self._ask(client, messages, files, round_no=0, kind="generate")
        fixes = self.settings.generate_max_fix_rounds
        seen: set[str] = set()  # fingerprints of the errors already sent back
        for round_no in range(fixes + 1):
            run.enter(Phase.PREPARING)
            outcome = run.attempt()
            if outcome.status != Status.FAILED or outcome.code not in FIXABLE:
                return outcome
            report = diagnose(outcome.code, outcome.message or "", outcome.log)
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
            run.enter(Phase.GENERATING)
            messages = fix_messages(
                prompt,
                files,
                report,
                error_message=outcome.message or "",
                errors=summary(report),
                max_chars=max_chars,
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
        client: Model,
        messages: list[dict[str, str]],
        files: Files,
        *,
        round_no: int,
        kind: str,
        fingerprint: str | None = None,
    ) -> Files:
        """Ask the model, apply its answer, write the new sources; the project after it."""
        self.run.check_cancel()
        self.asking = (round_no, kind)
        model = client.config.model
        self._progress("requesting", round_no, kind, f"asking {model} ({kind}, round {round_no})")
        completion = client.complete(messages, RESPONSE_FORMAT)
        self.run.check_cancel()
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
        self.ctx.bus.publish(self.id, "generation", body)
        for line in text.splitlines():
            self.run.note(line)

    def _retrying(self, reason: str, wait_s: float, attempt: int) -> None:
        self._progress(
            "retrying",
            *self.asking,
            f"model call failed ({reason}); attempt {attempt} in {wait_s:.1f} s",
            wait_s=round(wait_s, 2),
            attempt=attempt,
        )


def run_generation(build_id: str) -> Retry | None:
    """The RQ job: generate, build and fix one build in this worker process."""
    try:
        with build_context(build_id):
            return BuildRun(build_id, Context(get_settings()), GenerationRounds()).run()
    except KilnError:
        log.exception("generation %s could not run", build_id)
        raise
