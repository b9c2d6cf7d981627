"""``kiln doctor``: is everything a build needs there and answering?"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable, Iterator

from sqlalchemy import text

from orchestrator.context import Context
from orchestrator.egress.network import gateway_of
from orchestrator.egress.service import allowed_hosts
from orchestrator.sandbox import check_runtime
from orchestrator.sandbox_image import SOURCE_DIR, image_digest
from orchestrator.settings import get_settings

Check = tuple[str, bool, str]


def _run(name: str, probe: Callable[[], str]) -> Check:
    try:
        return name, True, probe()
    except Exception as exc:
        return name, False, f"{type(exc).__name__}: {exc}"


def run_checks() -> Iterator[Check]:
    """Each check's name, whether it passed, and what it saw."""
    ctx = Context(get_settings())
    s = ctx.settings

    def docker_engine() -> str:
        version = ctx.docker.version()
        runtimes = ", ".join(sorted(ctx.docker.info().get("Runtimes", {})))
        return f"Docker {version.get('Version')} (runtimes: {runtimes})"

    def redis_server() -> str:
        info = ctx.redis.info("server")
        return f"Redis {info.get('redis_version')} at {s.redis_url}"

    def database() -> str:
        with ctx.store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return ctx.store.engine.url.render_as_string(hide_password=True)

    def sandbox_image() -> str:
        image = ctx.docker.images.get(s.sandbox_image)
        node = image.labels.get("kiln.node.version", "?")
        size = image.attrs.get("Size", 0) / 1e6
        want = image_digest(SOURCE_DIR, s.node_major)
        if image.labels.get("kiln.image.digest") != want:
            raise RuntimeError(f"{s.sandbox_image} is out of date; run `kiln image build`")
        return f"{s.sandbox_image} node {node}, {size:.0f} MB, current"

    def ca_bundle() -> str:
        if s.ca_bundle is None:
            return "not set (containers use the image's CA certificates)"
        if not s.ca_bundle.is_file():
            raise FileNotFoundError(f"{s.ca_bundle} does not exist (set KILN_CA_BUNDLE)")
        return str(s.ca_bundle)

    def isolation() -> str:
        described = check_runtime(ctx.docker, s.build_runtime)
        if not s.build_runtime and "runsc" in ctx.docker.info().get("Runtimes", {}):
            described += "; gVisor is available: set KILN_BUILD_RUNTIME=runsc"
        return described

    def egress() -> str:
        network = ctx.docker.networks.get(s.sandbox_network)
        if not network.attrs.get("Internal"):
            raise RuntimeError(f"network {s.sandbox_network} is not internal")
        gateway = gateway_of(s.sandbox_subnet)
        firewall = "firewall on" if s.egress_firewall else "FIREWALL OFF"
        try:
            with socket.create_connection((gateway, s.egress_proxy_port), timeout=3):
                pass
        except OSError as exc:
            raise RuntimeError(
                f"no egress proxy at {gateway}:{s.egress_proxy_port} ({exc.strerror}); "
                "workers start it: is `kiln worker` running?"
            ) from exc
        return (
            f"proxy {gateway}:{s.egress_proxy_port} answering, {firewall}, "
            f"allows {', '.join(allowed_hosts(s))}"
        )

    def workspace_quota() -> str:
        if s.workspace_mb <= 0:
            return "KILN_WORKSPACE_MB=0: builds have no disk limit"
        if os.geteuid() != 0:
            raise PermissionError("mounting build workspaces needs a root worker")
        return f"{s.workspace_mb} MB per build (loop-mounted ext4)"

    def disk() -> str:
        s.var_dir.mkdir(parents=True, exist_ok=True)
        usage = shutil.disk_usage(s.var_dir)
        if usage.free < 2 * 1024**3:
            raise OSError(f"only {usage.free / 1024**3:.1f} GiB free under {s.var_dir}")
        return f"{usage.free / 1024**3:.0f} GiB free under {s.var_dir.resolve()}"

    yield _run("docker", docker_engine)
    yield _run("redis", redis_server)
    yield _run("database", database)
    yield _run("sandbox image", sandbox_image)
    yield _run("ca bundle", ca_bundle)
    yield _run("isolation", isolation)
    yield _run("egress", egress)
    yield _run("workspace", workspace_quota)
    yield _run("disk", disk)
