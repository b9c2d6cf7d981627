"""Calling the model: the ``openai`` client with tenacity retries inside a total time budget.

Rate limits (429), server errors (5xx), timeouts and lost connections are retried with
exponential backoff, or after exactly the server's ``Retry-After``. Other API errors
(bad key, unknown model, bad request) fail at once. No call outlives the generation's
deadline: each request's timeout is cut to the time left, and a wait that would cross
the deadline ends the retries.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import openai
from tenacity import RetryCallState, Retrying, retry_if_exception

from orchestrator.errors import ErrorCode, GenerationError
from orchestrator.settings import Settings

MAX_BACKOFF_S = 30.0
PLACEHOLDER_KEY = "not-needed"  # local OpenAI-compatible servers often take no key


@dataclass(frozen=True)
class ModelConfig:
    """Where the model is and how patiently to call it."""

    base_url: str | None
    api_key: str
    model: str
    request_timeout_s: float
    max_attempts: int
    backoff_s: float
    max_output_tokens: int


def model_config(settings: Settings) -> ModelConfig | None:
    """The model settings, or None when no model is configured (no key and no base URL)."""
    if not settings.openai_api_key and not settings.openai_base_url:
        return None
    return ModelConfig(
        base_url=settings.openai_base_url or None,
        api_key=settings.openai_api_key or PLACEHOLDER_KEY,
        model=settings.openai_model,
        request_timeout_s=settings.generate_request_timeout_s,
        max_attempts=max(1, settings.generate_max_attempts),
        backoff_s=settings.generate_backoff_s,
        max_output_tokens=settings.generate_max_output_tokens,
    )


class Deadline:
    """A total time budget shared by every model call of one generation."""

    def __init__(self, budget_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.budget_s = budget_s
        self.clock = clock
        self.ends = clock() + budget_s

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.ends - self.clock())


@dataclass(frozen=True)
class Completion:
    """One answer of the model, with what it cost."""

    text: str | None
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    seconds: float


def is_retryable(exc: BaseException) -> bool:
    """Rate limits, server errors, timeouts and lost connections are worth another attempt."""
    if isinstance(exc, openai.RateLimitError | openai.APIConnectionError):
        return True  # APITimeoutError is an APIConnectionError
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


def retry_after_s(headers: Any, now: float | None = None) -> float | None:
    """The wait a server asked for (``retry-after-ms``, ``Retry-After`` seconds or date)."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_s(attempt: int, base: float) -> float:
    """Exponential backoff for attempt 1, 2, 3, ...: base, 2 base, 4 base, capped."""
    return float(min(MAX_BACKOFF_S, base * 2 ** (attempt - 1)))


def wait_for(state: RetryCallState, base: float) -> float:
    """How long to wait before the next attempt: the server's Retry-After, else backoff."""
    exc = state.outcome.exception() if state.outcome else None
    response = getattr(exc, "response", None)
    asked = retry_after_s(getattr(response, "headers", None))
    return asked if asked is not None else backoff_s(state.attempt_number, base)


def describe(exc: BaseException) -> str:
    """A short, user-facing description of a failed model call."""
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {exc.message}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


class ModelClient:
    """Chat completions against one OpenAI-compatible endpoint, bounded in attempts and time."""

    def __init__(
        self,
        config: ModelConfig,
        deadline: Deadline,
        on_retry: Callable[[str, float, int], None] = lambda _reason, _wait, _attempt: None,
    ) -> None:
        self.config = config
        self.deadline = deadline
        self.on_retry = on_retry
        self.openai = openai.OpenAI(api_key=config.api_key, base_url=config.base_url, max_retries=0)

    def complete(
        self, messages: list[dict[str, str]], response_format: dict[str, Any]
    ) -> Completion:
        """One chat completion; GenerationError when it cannot be had in attempts and time."""

        over_budget: list[float] = []  # the wait that would have crossed the deadline

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= self.config.max_attempts:
                return True
            wait = state.upcoming_sleep or 0.0
            if wait >= self.deadline.remaining():
                over_budget.append(wait)
                return True
            return False

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            reason = describe(exc) if exc else "no answer"
            self.on_retry(reason, state.upcoming_sleep or 0.0, state.attempt_number + 1)

        retrying = Retrying(
            retry=retry_if_exception(is_retryable),
            wait=lambda state: wait_for(state, self.config.backoff_s),
            stop=stop,
            before_sleep=before_sleep,
            reraise=True,
        )
        started = time.monotonic()
        try:
            response = retrying(self._call, messages, response_format)
        except openai.APIError as exc:
            if over_budget:
                raise GenerationError(
                    f"the model endpoint asked to wait {over_budget[0]:.0f} s ({describe(exc)}), "
                    f"more than the {self.deadline.remaining():.0f} s left of the time budget",
                    code=ErrorCode.GENERATION_TIMEOUT,
                ) from None
            if self.deadline.remaining() <= 0:
                raise GenerationError(
                    f"the model did not answer within the time budget ({describe(exc)})",
                    code=ErrorCode.GENERATION_TIMEOUT,
                ) from None
            raise GenerationError(
                f"the model endpoint failed: {describe(exc)}", code=ErrorCode.MODEL_ERROR
            ) from None
        choice = response.choices[0] if response.choices else None
        usage = response.usage
        return Completion(
            text=choice.message.content if choice else None,
            model=response.model or self.config.model,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            finish_reason=choice.finish_reason if choice else None,
            seconds=time.monotonic() - started,
        )

    def _call(self, messages: list[dict[str, str]], response_format: dict[str, Any]) -> Any:
        remaining = self.deadline.remaining()
        if remaining <= 0:
            raise GenerationError(
                "the generation's time budget is used up", code=ErrorCode.GENERATION_TIMEOUT
            )
        return self.openai.chat.completions.create(  # type: ignore[call-overload]
            model=self.config.model,
            messages=messages,
            response_format=response_format,
            max_completion_tokens=self.config.max_output_tokens,
            timeout=min(self.config.request_timeout_s, remaining),
        )
