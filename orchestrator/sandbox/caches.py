"""Where each package manager's cache or store sits inside install containers.

Only install containers mount them (they run no project code); the host folder of each is
beside the npm cache (``context.manager_cache_dirs``).
"""

from __future__ import annotations

from orchestrator.project.environment import Manager

#: Each manager's cache or store, inside install containers only (host folder per name).
CACHE_DIRS = {
    Manager.NPM: "/cache/npm",
    Manager.PNPM: "/cache/pnpm",
    Manager.YARN_CLASSIC: "/cache/yarn",
    Manager.YARN_BERRY: "/cache/yarn-berry",
    Manager.BUN: "/cache/bun",
}
