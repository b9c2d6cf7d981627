"""Builds' stored things (sources, published ``dist/`` trees, kept sources, event archives)
in one object store: a folder under ``var/`` or an S3-compatible bucket (``ctx.storage``).

Publishing is atomic for readers: every file is stored first, the manifest last, and a
preview reads only through the manifest. A marker under ``uploads/`` says a publish is
under way; one left behind by a worker that died is how the reconciler finds orphans.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from orchestrator.errors import BuildError, ErrorCode, StorageUnavailable
from orchestrator.storage import layout
from orchestrator.storage.artifacts import OutputLimits, check_output, describe_tree
from orchestrator.storage.manifest import INDEX, Entry, Manifest
from orchestrator.storage.objects import LocalObjects, Objects, S3Objects

log = logging.getLogger("kiln.storage")
TAR = "application/x-tar"
JSON = "application/json"


class BuildStorage:
    """Every stored thing of every build, by build id."""

    def __init__(self, objects: Objects) -> None:
        self.objects = objects

    @property
    def where(self) -> str:
        """The folder or ``s3://bucket/prefix`` things are stored in."""
        return self.objects.where

    @property
    def is_local(self) -> bool:
        """True when the store is a folder on this host (files can be served in place)."""
        return isinstance(self.objects, LocalObjects)

    # Sources.

    def write_source(self, build_id: str, tar: bytes) -> None:
        """Store a build's checked source archive."""
        self.objects.put_bytes(layout.source(build_id), tar, TAR)

    def has_source(self, build_id: str) -> bool:
        """True while the source is kept (until ``kiln gc``)."""
        return self.objects.exists(layout.source(build_id))

    def read_source(self, build_id: str) -> bytes | None:
        """The source archive (bounded by the upload limit), or None once collected."""
        return self.objects.get_bytes(layout.source(build_id))

    def remove_source(self, build_id: str) -> None:
        """Drop a source no build will use (a lost race, a refused enqueue)."""
        self.objects.delete([layout.source(build_id)])

    @contextlib.contextmanager
    def open_source(self, build_id: str) -> Iterator[IO[bytes]]:
        """The source archive as a local file, for extracting (streamed down from a store)."""
        key = layout.source(build_id)
        path = self.objects.local_path(key)
        if path is not None:
            with path.open("rb") as handle:
                yield handle
            return
        with tempfile.TemporaryDirectory(prefix="kiln-source-") as folder:
            local = Path(folder, "source.tar")
            try:
                found = self.objects.download(key, local)
            except StorageUnavailable as exc:
                raise BuildError(
                    f"could not fetch the build's source: {exc.message}",
                    code=ErrorCode.STORAGE_ERROR,
                ) from exc
            if not found:
                raise BuildError(f"the source of build {build_id} is not in the store")
            with local.open("rb") as handle:
                yield handle

    def keep_source(self, build_id: str) -> bool:
        """Keep a copy of the source beside the artifacts (a hard link on a folder, a
        server-side copy in S3). The original stays for ``kiln retry`` until ``kiln gc``.

        Best effort: with the store down the build still ends (a generation cannot then
        edit it, and says so); returns whether the copy is there."""
        try:
            if self.objects.exists(layout.kept_source(build_id)):
                return True
            return self.objects.copy(layout.source(build_id), layout.kept_source(build_id))
        except StorageUnavailable as exc:
            log.warning("could not keep the source of build %s: %s", build_id, exc.message)
            return False

    def has_kept_source(self, build_id: str) -> bool:
        """True when a generation can edit this build's source."""
        return self.objects.exists(layout.kept_source(build_id))

    def read_kept_source(self, build_id: str) -> bytes | None:
        """The kept source archive, or None."""
        return self.objects.get_bytes(layout.kept_source(build_id))

    # Artifacts.

    def publish(
        self, dist: Path, build_id: str, limits: OutputLimits, label: str = layout.DIST
    ) -> tuple[int, int]:
        """Check ``dist`` (the folder ``label`` of the workspace), store every file, then the
        manifest; returns (files, bytes).

        The store unreachable (after retries) fails the build with ``storage_error``; what
        was stored by then stays invisible (no manifest) and is cleaned up.
        """
        counts = check_output(dist, limits, label)
        manifest = describe_tree(dist, build_id)
        items = [
            (layout.dist_file(build_id, e.path), dist / e.path, e.content_type)
            for e in manifest.files.values()
        ]
        marker = layout.upload_marker(build_id)
        try:
            self.objects.put_bytes(marker, json.dumps({"started": time.time()}).encode(), JSON)
            self.objects.put_files(items, move=True)
            self.objects.put_bytes(layout.manifest(build_id), manifest.to_json(), JSON)
            self.objects.delete([marker])
        except StorageUnavailable as exc:
            with contextlib.suppress(StorageUnavailable):
                self.discard_upload(build_id)  # else the reconciler does it later
            raise BuildError(
                f"could not store the build output: {exc.message}", code=ErrorCode.STORAGE_ERROR
            ) from exc
        return counts

    def manifest(self, build_id: str) -> Manifest | None:
        """The published build's manifest, or None when nothing (or not yet all) is published."""
        raw = self.objects.get_bytes(layout.manifest(build_id))
        if raw is not None:
            return Manifest.from_json(raw)
        return self._legacy_manifest(build_id)

    def _legacy_manifest(self, build_id: str) -> Manifest | None:
        """A dist/ folder published before manifests existed (folder store only)."""
        index = self.objects.local_path(layout.dist_file(build_id, INDEX))
        if index is None or self.objects.exists(layout.upload_marker(build_id)):
            return None
        return describe_tree(index.parent, build_id)

    def has_artifact(self, build_id: str) -> bool:
        """True when the build's output is published and still there."""
        return self.objects.exists(layout.manifest(build_id)) or (
            self._legacy_manifest(build_id) is not None
        )

    def file_path(self, build_id: str, entry: Entry) -> Path | None:
        """A published file on this host's disk (folder store), else None."""
        return self.objects.local_path(layout.dist_file(build_id, entry.path))

    def download_file(self, build_id: str, entry: Entry, destination: Path) -> bool:
        """Stream a published file into ``destination``; False when it is gone."""
        return self.objects.download(layout.dist_file(build_id, entry.path), destination)

    def reuse_artifact(self, earlier_id: str, build_id: str) -> bool:
        """Publish ``earlier_id``'s output as ``build_id``'s too (links or server-side copies,
        the manifest last); False when the earlier output is gone."""
        earlier = self.manifest(earlier_id)
        if earlier is None:
            return False
        for entry in earlier.files.values():
            source = layout.dist_file(earlier_id, entry.path)
            if not self.objects.copy(source, layout.dist_file(build_id, entry.path)):
                self.objects.delete_prefix(layout.dist_prefix(build_id))
                return False
        copied = Manifest(build_id, earlier.files)
        self.objects.put_bytes(layout.manifest(build_id), copied.to_json(), JSON)
        return True

    # Event archives.

    def write_events(self, build_id: str, data: bytes) -> None:
        """Store a finished build's event log (JSON lines)."""
        self.objects.put_bytes(layout.events_archive(build_id), data, "application/x-ndjson")

    def read_events(self, build_id: str) -> bytes | None:
        """The archived event log, or None when there is none (yet)."""
        return self.objects.get_bytes(layout.events_archive(build_id))

    # Collection and orphans.

    def stored_bytes(self, build_id: str) -> int:
        """Bytes stored for one build (artifacts, archives, sources)."""
        keys = [*self.objects.keys(layout.artifact_prefix(build_id))]
        keys += [*self.objects.keys(layout.source(build_id))]
        return sum(size for _, size in keys)

    def remove_build(self, build_id: str) -> int:
        """Remove everything stored for one build (``kiln gc``); returns the bytes freed.

        The manifest goes first, so a reader never sees a build with files missing."""
        freed = self.stored_bytes(build_id)
        self.objects.delete([layout.manifest(build_id)])
        self.objects.delete_prefix(layout.artifact_prefix(build_id))
        self.objects.delete([layout.source(build_id)])
        return freed

    def unfinished_uploads(self) -> list[str]:
        """Build ids with a publish under way or cut short."""
        return [key[len(layout.UPLOADS) :] for key, _ in self.objects.keys(layout.UPLOADS)]

    def discard_upload(self, build_id: str) -> int:
        """Remove the files of a publish that never wrote its manifest; returns bytes freed.

        A publish that did write it (its worker died just before removing the marker) is
        kept; only the marker goes."""
        freed = 0
        if not self.objects.exists(layout.manifest(build_id)):
            freed = self.objects.delete_prefix(layout.dist_prefix(build_id))
        self.objects.delete([layout.upload_marker(build_id)])
        return freed

    def check(self) -> str:
        """Reachable, bucket there, a write/read/delete round trip (``kiln doctor``)."""
        if isinstance(self.objects, S3Objects):
            self.objects.check_bucket()
        key = f"doctor/{time.time_ns()}"
        payload = b"kiln doctor round trip"
        started = time.monotonic()
        self.objects.put_bytes(key, payload)
        read = self.objects.get_bytes(key)
        self.objects.delete([key])
        if read != payload:
            raise StorageUnavailable(f"{self.where} returned other bytes than were written")
        if self.objects.exists(key):
            raise StorageUnavailable(f"{self.where} still has {key} after deleting it")
        elapsed_ms = (time.monotonic() - started) * 1000
        return f"{self.where}: write/read/delete round trip in {elapsed_ms:.0f} ms"
