"""What the dashboard shows at a glance: projects with their recent builds, and operations.

The shaping is pure (builds and counters in, rows out); ``projects`` and ``operations`` are
the two reads, each a handful of queries.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from orchestrator.builds.public import duration_ms, public_view
from orchestrator.cache.layers import disk_usage
from orchestrator.context import Context
from orchestrator.ops import views
from orchestrator.records.counters import BUCKETS, parse_histogram, redis_key
from orchestrator.records.models import Build, Status, aware, utcnow
from orchestrator.storage.disk import free_disk_mb

RECENT_BUILDS = 20  # per project, for its sparkline
SCANNED_BUILDS = 2000  # newest builds the overview looks at
RESULT_HOURS = 24
DISK_CACHE_S = 60.0
_disk_cache: dict[Path, tuple[float, int]] = {}


def latest_alias(ctx: Context, project: str) -> str:
    """The URL of a project's newest succeeded build."""
    return ctx.settings.preview_url(f"latest--{project}")


def project_rows(builds: Iterable[Build]) -> list[dict[str, Any]]:
    """Group builds (newest first) by project: the latest, the latest success, recent ones.

    Projects come newest activity first.
    """
    by_project: dict[str, list[Build]] = defaultdict(list)
    for build in builds:
        by_project[build.project].append(build)
    rows = []
    for project, items in by_project.items():
        succeeded = next((b for b in items if b.status == Status.SUCCEEDED), None)
        rows.append(
            {
                "project": project,
                "latest": items[0],
                "latest_succeeded": succeeded.id if succeeded else None,
                "recent": [
                    {
                        "id": b.id,
                        "status": b.status,
                        "duration_ms": duration_ms(b),
                        "created_at": aware(b.created_at).isoformat(),
                    }
                    for b in items[:RECENT_BUILDS]
                ],
            }
        )
    return rows


def projects(ctx: Context) -> list[dict[str, Any]]:
    """Every project with its latest build (public body), latest preview and recent builds."""
    rows = project_rows(ctx.store.list(limit=SCANNED_BUILDS))
    for row in rows:
        build = row["latest"]
        row["latest"] = public_view(build, ctx.settings.preview_url(build.id))
        row["latest_url"] = latest_alias(ctx, row["project"])
        row["dev"] = None  # filled in when the project has a dev session
    return rows


def results_by_hour(builds: Iterable[Build], now: datetime) -> list[dict[str, Any]]:
    """Ended builds of the last day, counted by hour and outcome (an error code or success)."""
    since = now - timedelta(hours=RESULT_HOURS)
    counts: Counter[tuple[str, str]] = Counter()
    for build in builds:
        if build.finished_at is None or aware(build.finished_at) < since:
            continue
        hour = aware(build.finished_at).replace(minute=0, second=0, microsecond=0)
        outcome = "succeeded" if build.status == Status.SUCCEEDED else build.error_code or "failed"
        counts[(hour.isoformat(), outcome)] += 1
    return [{"hour": h, "code": c, "count": n} for (h, c), n in sorted(counts.items())]


def percentile(buckets: Mapping[str, float], count: float, q: float) -> float | None:
    """The upper bound of the histogram bucket that holds quantile ``q`` (None when empty)."""
    if count <= 0:
        return None
    rank = q * count
    for bound in BUCKETS:
        if buckets.get(str(bound), 0.0) >= rank:
            return float(bound)
    return None  # beyond the largest bucket


def step_percentiles(raw: Mapping[bytes, bytes]) -> list[dict[str, Any]]:
    """p50/p95/p99 of each step's duration from the Redis histogram."""
    rows = []
    for labels, parts in sorted(parse_histogram(raw).items()):
        step = dict(p.split("=", 1) for p in labels.split(",") if "=" in p).get("step", labels)
        count = parts.get("count", 0.0)
        buckets = {k[len("le=") :]: v for k, v in parts.items() if k.startswith("le=")}
        rows.append(
            {
                "step": step,
                "count": int(count),
                **{f"p{int(q * 100)}": percentile(buckets, count, q) for q in (0.5, 0.95, 0.99)},
            }
        )
    return rows


def cache_rates(hits: Mapping[bytes, bytes], builds: Iterable[Build]) -> list[dict[str, Any]]:
    """Hit counts of each cache against the builds that could have hit it."""
    hit_counts = {k.decode().split("=", 1)[-1]: int(v) for k, v in hits.items()}
    layer_total = reuse_total = reuse_hits = 0
    for build in builds:
        cache = build.cache or {}
        if cache.get("layer") in ("hit", "miss"):
            layer_total += 1
        reuse_total += 1
        reuse_hits += cache.get("reuse") == "hit"
    return [
        {"name": "dependency layer", "hits": hit_counts.get("layer", 0), "total": layer_total},
        {"name": "identical input", "hits": reuse_hits, "total": reuse_total},
    ]


def tree_bytes(path: Path) -> int:
    """Bytes a folder takes on disk, measured at most once a minute."""
    now = time.monotonic()
    cached = _disk_cache.get(path)
    if cached and now - cached[0] < DISK_CACHE_S:
        return cached[1]
    size = disk_usage(path)[0] if path.is_dir() else 0
    _disk_cache[path] = (now, size)
    return size


def operations(ctx: Context) -> dict[str, Any]:
    """Workers, queue, results by error code, step-time percentiles, cache, disk."""
    s = ctx.settings
    builds = ctx.store.list(limit=SCANNED_BUILDS)
    queue = views.queue_summary(ctx)
    return {
        "workers": [
            {
                "name": w["name"],
                "state": w["state"],
                "current_build": w["build"],
                "last_heartbeat": w["last_heartbeat"],
            }
            for w in views.workers(ctx)
        ],
        "queue": {
            "queued": queue["queued"],
            "running": queue["running"],
            "suspended": queue["draining"],
            "by_project": dict(Counter(b["project"] for b in queue["builds"])),
        },
        "results": results_by_hour(builds, utcnow()),
        "steps": step_percentiles(
            ctx.redis.hgetall(redis_key(s.instance, "step_duration_seconds"))  # type: ignore[arg-type]
        ),
        "cache": cache_rates(
            ctx.redis.hgetall(redis_key(s.instance, "cache_hits_total")),  # type: ignore[arg-type]
            builds,
        ),
        "disk": [
            {"name": "artifacts", "bytes": tree_bytes(s.artifacts_dir)},
            {"name": "sources", "bytes": tree_bytes(s.sources_dir)},
            {"name": "dependency layers", "bytes": tree_bytes(s.layers_dir)},
            {"name": "npm cache", "bytes": tree_bytes(s.npm_cache_dir)},
        ],
        "free_disk_mb": round(free_disk_mb(s.var_dir), 1),
    }
