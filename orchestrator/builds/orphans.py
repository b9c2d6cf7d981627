"""Objects a publish left behind: a worker that died (or lost the store) mid-upload.

Nothing a reader can see is left (the manifest is written last); this removes the files
once the build is over, so they do not take room in the store for ever.
"""

from __future__ import annotations

import logging

from orchestrator.context import Context
from orchestrator.errors import NotFound
from orchestrator.records.models import Status

log = logging.getLogger("kiln.recovery")


def clean_orphan_uploads(ctx: Context) -> list[str]:
    """Discard the cut-short publishes of builds that are not queued or running; their ids."""
    cleaned = []
    for build_id in ctx.storage.unfinished_uploads():
        try:
            status = Status(ctx.store.get(build_id).status)
        except NotFound:
            status = None  # its record is gone (``kiln gc``, a lost database): nothing to keep
        if status is not None and not status.finished:
            continue  # a publish may be under way, or the build will run again
        freed = ctx.storage.discard_upload(build_id)
        cleaned.append(build_id)
        log.warning("removed %d bytes a cut-short publish of build %s left", freed, build_id)
    return cleaned
