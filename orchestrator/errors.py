"""Kiln's one error tree.

    KilnError                      every error Kiln raises on purpose
    ├── InputError (400)           the submitted project or request is unacceptable
    │   ├── PayloadTooLarge (413)  the upload exceeds a size bound
    │   ├── UnsupportedDependency  a dependency from git, a URL or outside the project
    │   └── UnsupportedEnvironment a Node major (or manager) Kiln does not offer
    ├── NotFound (404)             no such build, template or file
    ├── Conflict (409)             the request does not fit the build's state
    ├── Unavailable (503)          a dependency (Redis, Docker, the model) is not there
    ├── Overloaded (429)           the queue is full (overall or for the project): retry later
    ├── InsufficientStorage (507)  the disk under var/ is nearly full: no new builds
    ├── BuildError                 a build failed; carries the contract's error code
    │   ├── SandboxError           the sandbox itself misbehaved (not the project)
    │   └── GenerationError        the code generator failed (model error, invalid output, budget)
    └── SandboxImageError (503)    the sandbox image cannot be made

The API maps ``http_status`` and ``code`` to ``{"error": {"code", "message"}}`` in one
place (api/errors.py); the pipeline records ``BuildError.code`` on the build.
"""

from __future__ import annotations


class KilnError(Exception):
    """Raised for any failure Kiln reports to a user; never for programming errors."""

    http_status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InputError(KilnError):
    """Raised when a submitted project or request is rejected before anything is enqueued."""

    http_status = 400
    code = "invalid_input"


class PayloadTooLarge(InputError):
    """Raised when an upload, a file or a file count exceeds its bound."""

    http_status = 413
    code = "payload_too_large"


class UnsupportedDependency(InputError):
    """Raised when a dependency would come from somewhere other than the registry or project."""

    code = "unsupported_dependency"


class UnsupportedEnvironment(InputError):
    """Raised when a submit asks for a Node major that the sandbox image does not offer."""

    code = "unsupported_environment"


class NotFound(KilnError):
    """Raised when a build, template or other named thing does not exist."""

    http_status = 404
    code = "not_found"


class Conflict(KilnError):
    """Raised when an action does not fit the current state (e.g. cancelling a finished build)."""

    http_status = 409
    code = "conflict"


class Unavailable(KilnError):
    """Raised when a service Kiln depends on cannot be reached or is not configured."""

    http_status = 503
    code = "unavailable"


class Overloaded(KilnError):
    """Raised when a submit would overfill the queue; ``retry_after_s`` says when to retry."""

    http_status = 429
    code = "queue_full"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InsufficientStorage(KilnError):
    """Raised when the disk under Kiln's var/ folder is too full to start another build."""

    http_status = 507
    code = "disk_full"


class BuildError(KilnError):
    """Raised when a build fails; ``code`` is one of the contract's error codes."""

    code = "build_failed"

    def __init__(
        self, message: str, *, code: str | None = None, exit_code: int | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.exit_code = exit_code


class SandboxError(BuildError):
    """Raised when Docker or the sandbox image fails, through no fault of the project."""

    code = "sandbox_error"


class GenerationError(BuildError):
    """Raised when code generation cannot go on: the model failed, answered badly or ran late."""

    code = "generation_failed"


class SandboxImageError(KilnError):
    """Raised when the sandbox image cannot be made (the message says why)."""

    http_status = 503
    code = "sandbox_image_error"
