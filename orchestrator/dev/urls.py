"""Where a dev session is: its host, origin, public URL and the API's copy of its files."""

from __future__ import annotations

from pathlib import Path

from orchestrator.dev.container import session_label
from orchestrator.project.slugs import HOST_SEPARATOR
from orchestrator.settings import Settings


def dev_host(settings: Settings, project: str) -> str:
    """The exact host name of the session (``dev--{project}.<preview domain>``)."""
    return f"dev{HOST_SEPARATOR}{project}.{settings.preview_domain}"


def public_port(settings: Settings) -> int:
    """The port browsers reach previews on."""
    port = settings.port if settings.preview_port is None else settings.preview_port
    return port or {"https": 443}.get(settings.preview_scheme, 80)


def dev_origin(settings: Settings, project: str) -> str:
    """The Origin the session's own pages send (the only one its HMR socket accepts)."""
    default = {"http": 80, "https": 443}.get(settings.preview_scheme)
    port = public_port(settings)
    suffix = "" if port == default else f":{port}"
    return f"{settings.preview_scheme}://{dev_host(settings, project)}{suffix}"


def dev_url(settings: Settings, project: str) -> str:
    """The session's URL, as a browser opens it."""
    return dev_origin(settings, project) + "/"


def session_source(settings: Settings, project: str) -> Path:
    """The API's copy of the session's current files (a tar, updated by every edit)."""
    return settings.sources_dir / f"{session_label(project)}.tar"
