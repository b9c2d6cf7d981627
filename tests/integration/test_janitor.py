"""The janitor on the real Docker engine: it removes only its own instance's orphans."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from orchestrator.context import Context
from orchestrator.ops.janitor import sweep
from orchestrator.records.db import upgrade
from orchestrator.sandbox.runner import LABEL_BUILD, LABEL_INSTANCE
from orchestrator.settings import Settings
from tests.integration.conftest import IMAGE, require_services


@pytest.fixture
def engine(kiln_containers: docker.DockerClient) -> docker.DockerClient:
    require_services()
    return kiln_containers


@pytest.fixture
def made(engine: docker.DockerClient) -> Iterator[list[str]]:
    """Ids of the containers a test created; removed afterwards, whatever happened."""
    ids: list[str] = []
    yield ids
    for container_id in ids:
        with contextlib.suppress(docker.errors.NotFound):
            engine.containers.get(container_id).remove(force=True)


def orphan(engine: docker.DockerClient, made: list[str], instance: str) -> str:
    """A stopped container labelled as a step of a build that no database knows."""
    labels = {LABEL_BUILD: uuid.uuid4().hex[:16], LABEL_INSTANCE: instance}
    container = engine.containers.create(IMAGE, ["true"], labels=labels, network_mode="none")
    made.append(container.id)
    return str(container.id)


def exists(engine: docker.DockerClient, container_id: str) -> bool:
    try:
        engine.containers.get(container_id)
    except docker.errors.NotFound:
        return False
    return True


def installation(var_dir: Path, instance: str | None = None) -> Context:
    """The context of one installation with its own var/ folder (and database in it)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    named = {} if instance is None else {"instance": instance}
    ctx = Context(Settings(var_dir=var_dir, _env_file=None, **named))  # type: ignore[call-arg]
    upgrade(ctx.store.engine)  # as `kiln db upgrade` makes it
    return ctx


def test_a_janitor_never_removes_another_instances_container(
    engine: docker.DockerClient, made: list[str], tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    a = installation(tmp_path / "a", f"kiln-test-a-{tag}")
    b = installation(tmp_path / "b", f"kiln-test-b-{tag}")
    of_a, of_b = (
        orphan(engine, made, a.settings.instance),
        orphan(engine, made, b.settings.instance),
    )

    report = sweep(a)
    assert exists(engine, of_b), "instance A's janitor removed instance B's container"
    assert not exists(engine, of_a) and report.containers == [of_a[:12]]

    assert sweep(b).containers == [of_b[:12]]  # B's own janitor does find it an orphan
    assert not exists(engine, of_b)


def test_two_installations_with_the_default_instance_keep_apart(
    engine: docker.DockerClient, made: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KILN_INSTANCE", raising=False)  # the default, as ./scripts/up runs
    a, b = installation(tmp_path / "a"), installation(tmp_path / "b")
    assert a.settings.instance != b.settings.instance
    of_b = orphan(engine, made, b.settings.instance)
    sweep(a)
    assert exists(engine, of_b)
