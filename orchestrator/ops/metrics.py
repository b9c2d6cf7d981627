"""Prometheus metrics across processes.

Workers are separate processes (and hosts), so nothing is kept in process memory:
- histograms (queue wait, step durations) are counted in Redis hashes by whoever observes;
- gauges and result counters are read from the database and Redis when ``/metrics`` is
  scraped (the database is the source of truth for builds).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector
from rq import Worker
from rq.suspension import is_suspended
from sqlalchemy import func
from sqlmodel import Session, col, select

from orchestrator.builds.jobs import build_queue
from orchestrator.records.counters import (
    BUCKETS,
    COUNTERS,
    HISTOGRAMS,
    label_values,
    parse_histogram,
    redis_key,
)
from orchestrator.records.models import Build, ErrorCode, Status

log = logging.getLogger("kiln.metrics")


class KilnCollector(Collector):
    """Reads every Kiln metric at scrape time."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Any]:
        """Yield the metric families (skipping any whose source is down)."""
        for part in (self._builds, self._queue, self._histograms, self._counters):
            try:
                yield from part()
            except Exception as exc:
                log.warning("metrics: %s unavailable: %s", part.__name__, exc)

    def _builds(self) -> Iterator[Any]:
        # The columns read back as Status and ErrorCode (see records.models.StringEnum).
        query = select(col(Build.status), col(Build.error_code), func.count()).group_by(
            col(Build.status), col(Build.error_code)
        )
        with Session(self.ctx.store.engine) as session:
            rows = session.exec(query).all()
        current = GaugeMetricFamily(
            "kiln_builds", "Builds queued or running now.", labels=["status"]
        )
        ended = CounterMetricFamily(
            "kiln_builds_finished",
            "Ended builds by status and error code.",
            labels=["status", "code"],
        )
        oom = timeouts = 0
        counts = {s: 0 for s in Status if not s.finished}
        for status, code, n in rows:
            if status.finished:
                ended.add_metric([status, code or ""], n)
                oom += n if code == ErrorCode.OUT_OF_MEMORY else 0
                timeouts += n if code == ErrorCode.TIMEOUT else 0
            else:
                counts[status] = counts.get(status, 0) + n
        for status, n in counts.items():
            current.add_metric([status], n)
        yield current
        yield ended
        yield CounterMetricFamily("kiln_builds_oom", "Builds ended out_of_memory.", value=oom)
        yield CounterMetricFamily("kiln_builds_timeout", "Builds ended by timeout.", value=timeouts)

    def _queue(self) -> Iterator[Any]:
        s = self.ctx.settings
        q = build_queue(self.ctx.redis, s.queue_name)
        yield GaugeMetricFamily(
            "kiln_queue_length", "Jobs waiting in the Redis queue.", value=q.count
        )
        yield GaugeMetricFamily(
            "kiln_workers", "Workers registered on the queue.", value=Worker.count(queue=q)
        )
        yield GaugeMetricFamily(
            "kiln_draining",
            "1 while workers are drained.",
            value=int(bool(is_suspended(self.ctx.redis))),
        )

    def _histograms(self) -> Iterator[Any]:
        for name, (doc, label_names) in HISTOGRAMS.items():
            family = HistogramMetricFamily(f"kiln_{name}", doc, labels=list(label_names))
            raw = self.ctx.redis.hgetall(redis_key(self.ctx.settings.instance, name))
            for lid, parts in sorted(parse_histogram(raw).items()):
                buckets = [(str(b), parts.get(f"le={b}", 0.0)) for b in BUCKETS]
                buckets.append(("+Inf", parts.get("le=+Inf", 0.0)))
                family.add_metric(label_values(lid, label_names), buckets, parts.get("sum", 0.0))
            yield family

    def _counters(self) -> Iterator[Any]:
        for name, (doc, label_names) in COUNTERS.items():
            family = CounterMetricFamily(
                f"kiln_{name.removesuffix('_total')}", doc, labels=list(label_names)
            )
            raw = self.ctx.redis.hgetall(redis_key(self.ctx.settings.instance, name))
            for lid, value in raw.items():
                family.add_metric(label_values(lid.decode(), label_names), float(value))
            yield family
