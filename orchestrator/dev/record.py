"""A dev session's record (a Redis hash) and its public JSON body. Pure."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class DevStatus(StrEnum):
    """Where a dev session is in its life."""

    STARTING = "starting"
    INSTALLING = "installing"
    READY = "ready"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def ended(self) -> bool:
        """True once the session is gone (a new start replaces it)."""
        return self in (DevStatus.FAILED, DevStatus.STOPPED)


@dataclass
class DevSession:
    """What Kiln knows about one project's dev session."""

    project: str
    status: str = DevStatus.STARTING.value
    revision: int = 0
    worker: str = ""  # the dev worker that runs it ("" until one took it)
    started_at: float = 0.0  # epoch seconds
    ready_at: float = 0.0
    last_activity_at: float = 0.0
    idle_timeout_s: int = 900
    container: str = ""
    run_dir: str = ""  # host folder holding dev.sock (to Vite) and agent.sock (edits)
    vite_version: str = ""
    warnings: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None  # {code, message, log_tail} when it failed
    environment: dict[str, Any] = field(default_factory=dict)  # {node, package_manager}
    requested_node: int | None = None  # the start's ``node``, checked against the offer
    dependencies: str = ""  # digest of package.json's dependency fields
    root: str | None = None  # the app's folder in the project (the start's ``root``)

    def to_redis(self) -> dict[str, str]:
        """The hash fields (every value a string)."""
        return {k: json.dumps(v) for k, v in asdict(self).items()}

    @classmethod
    def from_redis(cls, raw: dict[Any, Any]) -> DevSession | None:
        """Parse a hash; None for an empty one."""
        if not raw:
            return None
        decoded = {
            (k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()
        }
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in decoded.items() if k in known})


def _iso(epoch: float) -> str | None:
    if not epoch:
        return None
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def public_body(session: DevSession, url: str, api_base: str) -> dict[str, Any]:
    """The contract's body of ``GET /api/v1/projects/{project}/dev``."""
    base = f"{api_base}/api/v1/projects/{session.project}/dev"
    return {
        "project": session.project,
        "status": session.status,
        "url": url,
        "revision": session.revision,
        "started_at": _iso(session.started_at),
        "ready_at": _iso(session.ready_at),
        "last_activity_at": _iso(session.last_activity_at),
        "idle_timeout_s": session.idle_timeout_s,
        "root": session.root,
        "environment": {  # both null until chosen, as in a build's body
            "node": session.environment.get("node"),
            "package_manager": session.environment.get("package_manager"),
        },
        "vite_version": session.vite_version or None,
        "warnings": session.warnings,
        "error": session.error,
        "links": {"self": base, "events": f"{base}/events", "files": f"{base}/files"},
    }
