"""Where a build's stored things live: one place knows every object key.

Keys are the same under both backends (a folder under ``var/`` or an S3 bucket and
prefix), so a store can move between them by copying:

- ``sources/{id}.tar``                the checked source the worker builds from
- ``artifacts/{id}/dist/{path}``      the published ``dist/`` files
- ``artifacts/{id}/manifest.json``    their list, written last: a build is visible once it is there
- ``artifacts/{id}/source.tar``       a copy of the source kept for generations that edit it
- ``artifacts/{id}/events.jsonl``     the archived event log
- ``uploads/{id}``                    marks a publish under way (the reconciler cleans orphans)
"""

from __future__ import annotations

DIST = "dist"
MANIFEST = "manifest.json"
KEPT_SOURCE = "source.tar"
EVENTS_ARCHIVE = "events.jsonl"
UPLOADS = "uploads/"
ARTIFACTS = "artifacts/"
SOURCES = "sources/"


def source(build_id: str) -> str:
    """The checked source archive the worker builds from."""
    return f"{SOURCES}{build_id}.tar"


def artifact_prefix(build_id: str) -> str:
    """Everything a build keeps after it ends."""
    return f"{ARTIFACTS}{build_id}/"


def dist_prefix(build_id: str) -> str:
    """The published ``dist/`` files (``dist_prefix + relative path``)."""
    return f"{artifact_prefix(build_id)}{DIST}/"


def dist_file(build_id: str, relative: str) -> str:
    """One published file."""
    return dist_prefix(build_id) + relative


def manifest(build_id: str) -> str:
    """The published build's manifest."""
    return artifact_prefix(build_id) + MANIFEST


def kept_source(build_id: str) -> str:
    """The copy of the source kept beside the artifacts."""
    return artifact_prefix(build_id) + KEPT_SOURCE


def events_archive(build_id: str) -> str:
    """The archived event log of a finished build."""
    return artifact_prefix(build_id) + EVENTS_ARCHIVE


def upload_marker(build_id: str) -> str:
    """Present while a publish of ``build_id`` is under way (or was cut short)."""
    return f"{UPLOADS}{build_id}"
