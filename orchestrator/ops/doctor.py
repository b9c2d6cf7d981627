"""``kiln doctor``: is everything a build needs there and answering?"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator

import httpx

from orchestrator.codegen.client import model_config
from orchestrator.context import Context
from orchestrator.ops import views as ops
from orchestrator.records.db import require_current
from orchestrator.sandbox.egress.network import gateway_of
from orchestrator.sandbox.egress.service import allowed_hosts
from orchestrator.sandbox.image import SOURCE_DIR, image_digest
from orchestrator.sandbox.image.toolchains import NODE_MAJORS, image_offer
from orchestrator.sandbox.runner import check_dev_runtime, check_runtime
from orchestrator.settings import Settings, get_settings
from orchestrator.storage.disk import disk_total_mb, free_disk_mb

Check = tuple[str, bool, str]


def _run(name: str, probe: Callable[[Context], str], ctx: Context) -> Check:
    try:
        return name, True, probe(ctx)
    except Exception as exc:
        return name, False, f"{type(exc).__name__}: {exc}"


def model_setup(settings: Settings) -> str:
    """The code generator's model configuration: endpoint, model, whether a key is set.

    The key itself is never shown. Generation is optional, so no model is not a failure.
    """
    endpoint = settings.openai_base_url or "https://api.openai.com/v1 (OpenAI, the default)"
    key = "API key set" if settings.openai_api_key else "no API key"
    if model_config(settings) is None:
        return (
            f"not configured ({key}): generation answers 503; set KILN_OPENAI_API_KEY "
            "(and KILN_OPENAI_BASE_URL for another endpoint) for the API and the workers, "
            "or in the installation's .env, then restart them"
        )
    return f"{settings.openai_model} at {endpoint}, {key}"


def docker_engine(ctx: Context) -> str:
    """The Docker engine's version and runtimes."""
    version = ctx.docker.version()
    runtimes = ", ".join(sorted(ctx.docker.info().get("Runtimes", {})))
    return f"Docker {version.get('Version')} (runtimes: {runtimes})"


def redis_server(ctx: Context) -> str:
    """Redis answers, and which version."""
    s = ctx.settings
    info = ctx.redis.info("server")
    return f"Redis {info.get('redis_version')} at {s.redis_url}"


def database(ctx: Context) -> str:
    """The database answers and its schema is current."""
    s = ctx.settings
    state = require_current(s.db_url)  # DatabaseBehind names `kiln db upgrade`
    url = ctx.store.engine.url.render_as_string(hide_password=True)
    return f"{url}, {state.describe()}"


def sandbox_image(ctx: Context) -> str:
    """The sandbox image is there and made from today's inputs."""
    s = ctx.settings
    image = ctx.docker.images.get(s.sandbox_image)
    node = image.labels.get("kiln.node.version", "?")
    size = image.attrs.get("Size", 0) / 1e6
    want = image_digest(SOURCE_DIR, s.node_major, NODE_MAJORS)
    if image.labels.get("kiln.image.digest") != want:
        raise RuntimeError(f"{s.sandbox_image} is out of date; run `kiln image build`")
    return f"{s.sandbox_image} node {node}, {size:.0f} MB, current"


def environments(ctx: Context) -> str:
    """The Node majors (full versions) and package managers the sandbox image offers."""
    offer = image_offer(ctx.docker, ctx.settings.sandbox_image)
    nodes = ", ".join(
        f"{offer.node[m]}{' (default)' if m == offer.default_major else ''}" for m in offer.majors()
    )
    managers = ", ".join(f"{m.value} {v}" for m, v in sorted(offer.managers.items()))
    return f"Node {nodes}; {managers}"


def ca_bundle(ctx: Context) -> str:
    """The CA bundle containers trust for the registry's TLS."""
    s = ctx.settings
    if s.ca_bundle is None:
        return "not set (containers use the image's CA certificates)"
    if not s.ca_bundle.is_file():
        raise FileNotFoundError(f"{s.ca_bundle} does not exist (set KILN_CA_BUNDLE)")
    return str(s.ca_bundle)


def isolation(ctx: Context) -> str:
    """The runtime scripts and builds run under (gVisor when set)."""
    s = ctx.settings
    described = check_runtime(ctx.docker, s.build_runtime)
    if not s.build_runtime and "runsc" in ctx.docker.info().get("Runtimes", {}):
        described += "; gVisor is available: set KILN_BUILD_RUNTIME=runsc"
    return described + "; " + check_dev_runtime(ctx.docker, s.dev_runtime or s.build_runtime)


def egress(ctx: Context) -> str:
    """The install network is internal and its proxy answers."""
    s = ctx.settings
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


def workspace_quota(ctx: Context) -> str:
    """Each build gets its own size-limited filesystem."""
    s = ctx.settings
    if s.workspace_mb <= 0:
        return "KILN_WORKSPACE_MB=0: builds have no disk limit"
    if os.geteuid() != 0:
        raise PermissionError("mounting build workspaces needs a root worker")
    return f"{s.workspace_mb} MB per build (loop-mounted ext4)"


def disk(ctx: Context) -> str:
    """Room under var/ above the floor below which submits are refused."""
    s = ctx.settings
    s.var_dir.mkdir(parents=True, exist_ok=True)
    free_mb, total_mb = free_disk_mb(s.var_dir), disk_total_mb(s.var_dir)
    if free_mb < s.min_free_disk_mb:
        raise OSError(
            f"only {free_mb:.0f} MB free under {s.var_dir}; submits are refused below "
            f"{s.min_free_disk_mb} MB (run `kiln gc`)"
        )
    return (
        f"{free_mb / 1024:.1f} GiB free of {total_mb / 1024:.0f} GiB under "
        f"{s.var_dir.resolve()} (floor {s.min_free_disk_mb} MB)"
    )


def runtime(ctx: Context) -> str:
    """The engine's default runtime, cgroups and storage driver."""
    info = ctx.docker.info()
    runtimes = sorted(info.get("Runtimes", {}))
    gvisor = "runsc available" if "runsc" in runtimes else "no runsc (gVisor)"
    return (
        f"default {info.get('DefaultRuntime')}, {gvisor}, cgroup v"
        f"{info.get('CgroupVersion', '?')} ({info.get('CgroupDriver')}), "
        f"storage {info.get('Driver')}"
    )


def registry(ctx: Context) -> str:
    """The npm registry answers from this host."""
    s = ctx.settings
    verify: str | bool = str(s.ca_bundle) if s.ca_bundle and s.ca_bundle.is_file() else True
    proxies = {k: v for k, v in os.environ.items() if k.lower().endswith("_proxy") and v}
    response = httpx.get(s.npm_registry.rstrip("/") + "/-/ping", timeout=10, verify=verify)
    response.raise_for_status()
    via = f" via {', '.join(sorted(proxies))}" if proxies else ""
    return f"{s.npm_registry} answers{via}"


def workers(ctx: Context) -> str:
    """Workers are registered on this installation's queue."""
    s = ctx.settings
    rows = ops.workers(ctx)
    summary = ops.queue_summary(ctx)
    line = f"{len(rows)} worker(s); {summary['running']} running, {summary['queued']} queued" + (
        "; DRAINING (kiln drain --undo)" if summary["draining"] else ""
    )
    if not rows:
        raise RuntimeError(f"no worker is registered on queue {s.queue_name}; " + line)
    return line


def instance(ctx: Context) -> str:
    """The instance label this installation's janitor cleans up after."""
    s = ctx.settings
    return f"{s.instance} ({s.instance_source}); its janitor touches only this label"


def leftovers(ctx: Context) -> str:
    """This instance's containers and networks right now."""
    s = ctx.settings
    mine = {"label": f"kiln.instance={s.instance}"}
    containers = ctx.docker.containers.list(all=True, sparse=True, filters=mine)
    networks = ctx.docker.networks.list(filters=mine)
    return (
        f"instance {s.instance!r}: {len(containers)} container(s), {len(networks)} "
        "network(s) (the janitor removes those of builds that no longer run)"
    )


def container_pool(ctx: Context) -> str:
    """This host's idle containers (orchestrator/sandbox/pool.py)."""
    from orchestrator.sandbox.pool import describe

    return describe(ctx.settings.var_dir / "pool", ctx.settings.container_pool)


# Each check: its name, and a probe that says what it saw (or raises what is wrong).
CHECKS: list[tuple[str, Callable[[Context], str]]] = [
    ("instance", instance),
    ("docker", docker_engine),
    ("runtime", runtime),
    ("redis", redis_server),
    ("database", database),
    ("sandbox image", sandbox_image),
    ("environments", environments),
    ("ca bundle", ca_bundle),
    ("registry", registry),
    ("isolation", isolation),
    ("egress", egress),
    ("workspace", workspace_quota),
    ("disk", disk),
    ("model", lambda ctx: model_setup(ctx.settings)),
    ("storage", lambda ctx: ctx.storage.check()),
    ("workers", workers),
    ("container pool", container_pool),
    ("containers", leftovers),
]


def run_checks() -> Iterator[Check]:
    """Each check's name, whether it passed, and what it saw."""
    ctx = Context(get_settings())
    for name, probe in CHECKS:
        yield _run(name, probe, ctx)
