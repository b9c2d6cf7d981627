"""Counters and histograms that any process records in Redis, for ``/metrics`` to read.

Workers are separate processes (and hosts), so nothing is kept in process memory.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Mapping

import redis

log = logging.getLogger("kiln.metrics")
BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900)
HISTOGRAMS = {
    "queue_wait_seconds": ("Seconds from submit to a worker starting the build.", ()),
    "step_duration_seconds": ("Seconds each sandbox step took, by step.", ("step",)),
}
COUNTERS = {
    "cache_hits_total": ("Dependency cache hits, by cache.", ("cache",)),
}


def redis_key(instance: str, name: str) -> str:
    return f"kiln:{instance}:metrics:{name}"


def _labels_id(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def bucket_fields(value: float, labels: Mapping[str, str]) -> list[str]:
    """The Redis hash fields one observation increments (cumulative buckets, count)."""
    lid = _labels_id(labels)
    first = bisect.bisect_left(BUCKETS, value)
    return [f"{lid}|le={b}" for b in BUCKETS[first:]] + [f"{lid}|le=+Inf", f"{lid}|count"]


def observe(client: redis.Redis, instance: str, name: str, value: float, **labels: str) -> None:
    """Record one observation of histogram ``name``; never raises (metrics are best effort)."""
    try:
        pipe = client.pipeline(transaction=False)
        key = redis_key(instance, name)
        for field in bucket_fields(value, labels):
            pipe.hincrby(key, field, 1)
        pipe.hincrbyfloat(key, f"{_labels_id(labels)}|sum", value)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not record metric %s: %s", name, exc)


def incr(client: redis.Redis, instance: str, name: str, amount: int = 1, **labels: str) -> None:
    """Add to counter ``name`` (see COUNTERS); never raises."""
    try:
        client.hincrby(redis_key(instance, name), _labels_id(labels), amount)
    except redis.RedisError as exc:
        log.warning("could not record metric %s: %s", name, exc)


def parse_histogram(raw: Mapping[bytes, bytes]) -> dict[str, dict[str, float]]:
    """Redis hash fields back to {labels id: {"le=…"|"count"|"sum": value}}."""
    series: dict[str, dict[str, float]] = {}
    for field, value in raw.items():
        lid, _, part = field.decode().rpartition("|")
        series.setdefault(lid, {})[part] = float(value)
    return series


def label_values(lid: str, names: tuple[str, ...]) -> list[str]:
    pairs = dict(p.split("=", 1) for p in lid.split(",") if p)
    return [pairs.get(n, "") for n in names]
