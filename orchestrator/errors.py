"""Kiln's one error tree.

    KilnError                      every error Kiln raises on purpose
    ├── InputError (400)           the submitted project or request is unacceptable
    │   ├── PayloadTooLarge (413)  the upload exceeds a size bound
    │   ├── UnsupportedMediaType (415)  the body is neither JSON nor a tar/gzip archive
    │   ├── UnsupportedDependency  a dependency from git, a URL or outside the project
    │   └── UnsupportedEnvironment a Node major (or manager) Kiln does not offer
    ├── NotFound (404)             no such build, template or file
    ├── Conflict (409)             the request does not fit the build's state
    ├── Unavailable (503)          a dependency (Redis, Docker, the model) is not there
    │   └── StorageUnavailable     the object store did not answer (after its retries)
    │   └── DatabaseBehind         the database's schema is older than this Kiln's
    ├── Overloaded (429)           the queue is full (overall or for the project): retry later
    │   └── DevCapacity            every dev worker runs its most sessions
    ├── InsufficientStorage (507)  the disk under var/ is nearly full: no new builds
    ├── BuildError                 a build failed; carries the contract's error code
    │   ├── SandboxError           the sandbox itself misbehaved (not the project)
    │   └── GenerationError        the code generator failed (model error, invalid output, budget)
    └── SandboxImageError (503)    the sandbox image cannot be made

The API maps ``http_status`` and ``code`` to ``{"error": {"code", "message"}}`` in one
place (api/errors.py); the pipeline records ``BuildError.code`` on the build. Every code
Kiln emits, in an error body or on a failed build, is an ``ErrorCode``.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Every ``error.code`` Kiln emits: in an HTTP error body or on an ended build.

    The values are the contract's strings (they are stored as such on the build record).
    """

    # A build ended with this code (the build's ``error.code``).
    INSTALL_FAILED = "install_failed"
    BUILD_FAILED = "build_failed"
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"
    OUTPUT_TOO_LARGE = "output_too_large"
    UNSAFE_OUTPUT = "unsafe_output"
    DISK_FULL = "disk_full"  # also 507 on submit
    SANDBOX_ERROR = "sandbox_error"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"
    WORKER_LOST = "worker_lost"
    STORAGE_ERROR = "storage_error"  # the object store failed while publishing or fetching
    QUEUE_UNAVAILABLE = "queue_unavailable"  # Redis failed while the build was enqueued
    GENERATION_FAILED = "generation_failed"
    MODEL_ERROR = "model_error"
    GENERATION_TIMEOUT = "generation_timeout"
    INVALID_MODEL_OUTPUT = "invalid_model_output"
    # A request was refused (the code of an HTTP error body).
    INVALID_INPUT = "invalid_input"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_DEPENDENCY = "unsupported_dependency"
    UNSUPPORTED_ENVIRONMENT = "unsupported_environment"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    QUEUE_FULL = "queue_full"
    UNAVAILABLE = "unavailable"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    GENERATION_UNAVAILABLE = "generation_unavailable"
    SANDBOX_IMAGE_ERROR = "sandbox_image_error"
    HTTP_ERROR = "http_error"  # any other HTTP error Starlette raises
    UNHEALTHY = "unhealthy"  # GET /healthz: Redis, the database or Docker does not answer
    # The live channel (orchestrator/live): stream errors and WebSocket error frames.
    INVALID_PROJECT = "invalid_project"
    SLOW_CONSUMER = "slow_consumer"
    SHUTTING_DOWN = "shutting_down"
    NOT_SUBSCRIBED = "not_subscribed"
    ALREADY_SUBSCRIBED = "already_subscribed"
    INTERNAL_ERROR = "internal_error"
    # Dev sessions (orchestrator/dev): refusals, and a session's ``error.code``.
    SESSION_NOT_READY = "session_not_ready"
    DEV_CAPACITY = "dev_capacity"
    DEV_SERVER_FAILED = "dev_server_failed"
    DEV_SERVER_EXITED = "dev_server_exited"


class KilnError(Exception):
    """Raised for any failure Kiln reports to a user; never for programming errors."""

    http_status = 500
    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InputError(KilnError):
    """Raised when a submitted project or request is rejected before anything is enqueued."""

    http_status = 400
    code = ErrorCode.INVALID_INPUT


class PayloadTooLarge(InputError):
    """Raised when an upload, a file or a file count exceeds its bound."""

    http_status = 413
    code = ErrorCode.PAYLOAD_TOO_LARGE


class UnsupportedMediaType(InputError):
    """Raised when a submit's Content-Type is neither JSON nor a tar or gzip archive."""

    http_status = 415
    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE


class UnsupportedDependency(InputError):
    """Raised when a dependency would come from somewhere other than the registry or project."""

    code = ErrorCode.UNSUPPORTED_DEPENDENCY


class UnsupportedEnvironment(InputError):
    """Raised when a submit asks for a Node major that the sandbox image does not offer."""

    code = ErrorCode.UNSUPPORTED_ENVIRONMENT


class NotFound(KilnError):
    """Raised when a build, template or other named thing does not exist."""

    http_status = 404
    code = ErrorCode.NOT_FOUND


class Conflict(KilnError):
    """Raised when an action does not fit the current state (e.g. cancelling a finished build)."""

    http_status = 409
    code = ErrorCode.CONFLICT


class Unavailable(KilnError):
    """Raised when a service Kiln depends on cannot be reached or is not configured."""

    http_status = 503
    code = ErrorCode.UNAVAILABLE


class DatabaseBehind(Unavailable):
    """Raised when the database is not at this Kiln's newest migration (``kiln db upgrade``)."""


class StorageUnavailable(Unavailable):
    """Raised when the object store (or the local artifact folder) cannot be read or written."""

    code = ErrorCode.STORAGE_UNAVAILABLE


class Overloaded(KilnError):
    """Raised when a submit would overfill the queue; ``retry_after_s`` says when to retry."""

    http_status = 429
    code = ErrorCode.QUEUE_FULL

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DevCapacity(Overloaded):
    """Raised when every dev worker runs as many sessions as it may; retry later."""

    code = ErrorCode.DEV_CAPACITY


class InsufficientStorage(KilnError):
    """Raised when the disk under Kiln's var/ folder is too full to start another build."""

    http_status = 507
    code = ErrorCode.DISK_FULL


class BuildError(KilnError):
    """Raised when a build fails; ``code`` is one of the contract's error codes."""

    code = ErrorCode.BUILD_FAILED

    def __init__(
        self, message: str, *, code: ErrorCode | None = None, exit_code: int | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.exit_code = exit_code


class SandboxError(BuildError):
    """Raised when Docker or the sandbox image fails, through no fault of the project."""

    code = ErrorCode.SANDBOX_ERROR


class GenerationError(BuildError):
    """Raised when code generation cannot go on: the model failed, answered badly or ran late."""

    code = ErrorCode.GENERATION_FAILED


class SandboxImageError(KilnError):
    """Raised when the sandbox image cannot be made (the message says why)."""

    http_status = 503
    code = ErrorCode.SANDBOX_IMAGE_ERROR
