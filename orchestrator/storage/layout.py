"""Where a build's stored things live: one object knows every derived path.

Sources are kept as ``sources/{id}.tar`` (what the API checked and the worker builds);
``artifacts/{id}/`` holds the published ``dist/``, a copy of the source beside it (for
generations that edit the build) and the archived event log.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

DIST = "dist"
KEPT_SOURCE = "source.tar"
EVENTS_ARCHIVE = "events.jsonl"


@dataclass(frozen=True)
class StorageLayout:
    """The paths of builds' sources and artifacts under two folders."""

    artifacts_dir: Path
    sources_dir: Path

    def source(self, build_id: str) -> Path:
        """The checked source archive the worker builds from."""
        return self.sources_dir / f"{build_id}.tar"

    def artifact_dir(self, build_id: str) -> Path:
        """Everything a build keeps after it ends."""
        return self.artifacts_dir / build_id

    def dist(self, build_id: str) -> Path:
        """The published ``dist/`` a preview serves."""
        return self.artifact_dir(build_id) / DIST

    def kept_source(self, build_id: str) -> Path:
        """The copy of the source kept beside the artifacts."""
        return self.artifact_dir(build_id) / KEPT_SOURCE

    def events_archive(self, build_id: str) -> Path:
        """The archived event log of a finished build."""
        return self.artifact_dir(build_id) / EVENTS_ARCHIVE

    def feed_archive(self, project: str) -> Path:
        """A project's archived feed entries (beside the artifacts, not in a build's folder)."""
        return self.artifacts_dir.parent / "feeds" / project / EVENTS_ARCHIVE

    def build_paths(self, build_id: str) -> list[Path]:
        """Everything stored for one build (what ``kiln gc`` removes)."""
        return [self.artifact_dir(build_id), self.source(build_id)]

    def write_source(self, build_id: str, tar: bytes) -> Path:
        """Store a build's checked source archive."""
        path = self.source(build_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tar)
        return path

    def keep_source(self, build_id: str) -> None:
        """Keep a copy of the source beside the artifacts (a hard link where possible).

        The original stays in ``sources/`` for ``kiln retry`` until ``kiln gc``.
        """
        source, kept = self.source(build_id), self.kept_source(build_id)
        if not source.is_file() or kept.exists():
            return
        kept.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, kept)  # same filesystem: no extra space
        except OSError:
            shutil.copyfile(source, kept)
