"""How much room is left under Kiln's var/ folder (the one disk probe)."""

from __future__ import annotations

import shutil
from pathlib import Path


def free_disk_mb(folder: Path) -> float:
    """Free megabytes on the filesystem that holds ``folder`` (or its nearest existing parent)."""
    probe = folder.resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free / (1024 * 1024)


def disk_total_mb(folder: Path) -> float:
    """Size in megabytes of the filesystem that holds ``folder``."""
    probe = folder.resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).total / (1024 * 1024)
