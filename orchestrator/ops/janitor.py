"""The janitor: removes this instance's containers, networks and workspaces of builds that
no longer run (ended, lost, or unknown). Runs on worker start and periodically.

It only ever touches objects labelled ``kiln.instance=<this instance>``, so several Kiln
instances (and other users) can share one Docker engine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import docker.errors
import requests.exceptions

from orchestrator.builds.warm import WARM_LABEL
from orchestrator.context import Context
from orchestrator.dev.container import DEV_PREFIX, is_session_label
from orchestrator.dev.registry import DevRegistry
from orchestrator.errors import NotFound, SandboxError
from orchestrator.records.models import Build, Status, aware, utcnow
from orchestrator.sandbox import workspace
from orchestrator.sandbox.pool import LABEL_SLOT, POOL_LABEL
from orchestrator.sandbox.runner import LABEL_BUILD, LABEL_INSTANCE

log = logging.getLogger("kiln.janitor")
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


@dataclass
class SweepReport:
    """What one sweep removed."""

    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    workspaces: list[str] = field(default_factory=list)


def is_live(build: Build | None, now: datetime, lease_s: int) -> bool:
    """True when ``build`` runs and its worker beat within the lease (keep its objects)."""
    if build is None or build.status != Status.RUNNING:
        return False
    beat = build.heartbeat_at or build.started_at
    if beat is None:
        return True
    return now - aware(beat) < timedelta(seconds=lease_s)


def _build(ctx: Context, build_id: str | None) -> Build | None:
    if not build_id:
        return None
    try:
        return ctx.store.get(build_id)
    except NotFound:
        return None


def _stale(
    ctx: Context,
    labels: dict[str, str],
    now: datetime,
    created: Any = None,
    container_id: str | None = None,
) -> bool:
    project = is_session_label(labels)
    if project is not None:  # a dev session's container: kept while its session lives
        return not DevRegistry(ctx.redis, ctx.settings.instance).is_live(project)
    if labels.get(LABEL_BUILD) == POOL_LABEL:  # idle, or a step's: its slot knows
        pool = ctx.container_pool
        if pool is None:  # turned off: an idle one goes; not root: cannot tell, so it stays
            return ctx.settings.container_pool <= 0
        return pool.is_stale(str(container_id), labels.get(LABEL_SLOT, ""))
    if labels.get(LABEL_BUILD) == WARM_LABEL:
        # A worker's warm-up (orchestrator/builds/warm.py) has no build record; it is stale
        # only past the longest a step may run.
        if not isinstance(created, int | float):
            return False
        age = now - datetime.fromtimestamp(created, UTC)
        return age > timedelta(seconds=ctx.settings.max_timeout_s + 60)
    return not is_live(_build(ctx, labels.get(LABEL_BUILD)), now, ctx.settings.build_lease_s)


def sweep(ctx: Context) -> SweepReport:
    """Remove what belongs to this instance and to no live build."""
    report = SweepReport()
    now = utcnow()
    mine = {"label": f"{LABEL_INSTANCE}={ctx.settings.instance}"}
    # sparse: no inspect per container, so one removed meanwhile cannot fail the listing
    for container in ctx.docker.containers.list(all=True, sparse=True, filters=mine):
        attrs = container.attrs
        marks = attrs.get("Labels") or {}
        if _stale(ctx, marks, now, attrs.get("Created"), attrs.get("Id")):
            _remove(container, force=True)
            report.containers.append(container.short_id)
    for network in ctx.docker.networks.list(filters=mine):
        labels: dict[str, str] = network.attrs.get("Labels") or {}
        if LABEL_BUILD in labels and _stale(ctx, labels, now):
            _remove(network)
            report.networks.append(network.name)
    report.workspaces.extend(_sweep_workspaces(ctx, now))
    if report.containers or report.networks or report.workspaces:
        log.info("janitor removed %s", report)
    return report


def _sweep_workspaces(ctx: Context, now: datetime) -> list[str]:
    """Remove the workspaces of no running build and no live dev session; their names."""
    work = ctx.settings.work_dir
    if not work.is_dir():
        return []
    removed = []
    # A workspace is a folder (a mounted image, <id>.img beside it): keep running builds'.
    names = {p.name.removesuffix(".img") for p in work.iterdir()}
    sessions = DevRegistry(ctx.redis, ctx.settings.instance)
    for name in sorted(names):
        if name.startswith(DEV_PREFIX):
            if sessions.is_live(name.removeprefix(DEV_PREFIX).removesuffix(".run")):
                continue
        elif is_live(_build(ctx, name), now, 10**9):
            continue
        try:
            workspace.remove(work / name)
        except SandboxError as exc:
            log.warning("janitor could not remove workspace %s: %s", name, exc)
            continue
        removed.append(name)
    return removed


def _remove(thing: Any, **kwargs: Any) -> None:
    try:
        thing.remove(**kwargs)
    except docker.errors.NotFound:
        pass
    except ENGINE_ERRORS as exc:
        log.warning("janitor could not remove %s: %s", getattr(thing, "name", thing), exc)
