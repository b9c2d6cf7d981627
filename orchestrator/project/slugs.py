"""Project slugs are DNS labels: they name preview hosts (``latest--{p}``, ``dev--{p}``).

Pure: a requested slug is checked, a derived one is made to fit. Builds recorded before
the rule keep the slug they have; only new requests are held to it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from orchestrator.errors import ErrorCode, InputError

MAX_SLUG = 40
PROJECT_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
HOST_SEPARATOR = "--"  # {label}--{project}
LABELS = ("latest", "dev")


def project_slug(
    requested: str | None, manifest: Mapping[str, object], template: str | None
) -> str:
    """The project a build belongs to: as requested, else derived from package.json's name.

    A requested slug outside the DNS-label rule is refused (``invalid_project``); a derived
    one maps every other character to ``-``.
    """
    if requested is not None:
        if not PROJECT_SLUG.fullmatch(requested):
            raise InputError(
                f"project must be 1-{MAX_SLUG} characters of a-z, 0-9 and '-', starting "
                "and ending with a letter or digit (it names the project's preview hosts)",
                code=ErrorCode.INVALID_PROJECT,
            )
        return requested
    name = str(manifest.get("name") or template or "default").lower().split("/")[-1]
    return derive_slug(name)


def derive_slug(name: str) -> str:
    """``name`` made into a DNS label: other characters become ``-``, ends trimmed."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:MAX_SLUG].strip("-")
    return slug or "default"


def split_host_label(label: str) -> tuple[str, str] | None:
    """``latest--shop`` -> ("latest", "shop"); None when the label is not an alias host.

    The alias label is the part before the first ``--``; the project is the rest (a
    project may itself contain ``--``).
    """
    alias, sep, project = label.partition(HOST_SEPARATOR)
    if not sep or alias not in LABELS or not PROJECT_SLUG.fullmatch(project):
        return None
    return alias, project


def alias_url(preview_url: str, build_id: str, alias: str, project: str) -> str:
    """The URL of a project's alias host, written like the build's own preview URL."""
    return preview_url.replace(f"//{build_id}.", f"//{alias}{HOST_SEPARATOR}{project}.", 1)
