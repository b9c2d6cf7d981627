"""Kiln's configuration: one pydantic-settings model, every field overridable as KILN_<NAME>."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_instance(var_dir: Path) -> str:
    """``kiln-<8 hex>`` from the resolved var/ folder: one name per installation.

    Two installations on one Docker engine have different var/ folders (each holds its own
    workspaces and artifacts), so neither's janitor takes the other's containers; the API
    and the workers of one installation resolve the same folder and so agree."""
    digest = hashlib.sha256(str(var_dir.resolve()).encode()).hexdigest()
    return f"kiln-{digest[:8]}"


def installation_root() -> Path:
    """The Kiln installation this process belongs to: ``KILN_HOME``, else the repository
    the ``kiln`` package was installed from (never the caller's current folder)."""
    return Path(os.environ.get("KILN_HOME") or REPO_ROOT).resolve()


class Settings(BaseSettings):
    """All of Kiln's knobs with their embedded defaults (see README, "Configuration")."""

    # The installation's .env, not the caller's: a project folder's .env is the project's.
    model_config = SettingsConfigDict(
        env_prefix="KILN_", env_file=installation_root() / ".env", extra="ignore"
    )

    # Where things live (relative to the installation, so `kiln doctor` run from any folder
    # looks at the same database and caches as the API and the workers).
    host: str = "127.0.0.1"
    port: int = 8000
    var_dir: Path = Field(default_factory=lambda: installation_root() / "var")
    database_url: str = ""  # empty: SQLite at <var_dir>/kiln.db
    redis_url: str = "redis://127.0.0.1:6379/0"
    templates_dir: Path = REPO_ROOT / "templates"

    # Where builds' sources, artifacts, kept sources and event archives are stored.
    # Empty: folders under var_dir. s3://bucket/prefix: an S3-compatible object store
    # (endpoint, region and keys below, or the standard AWS_* environment).
    storage_url: str = ""
    storage_endpoint: str = ""  # e.g. http://127.0.0.1:8333 for SeaweedFS or MinIO
    storage_region: str = ""
    storage_access_key: str = ""
    storage_secret_key: str = ""
    storage_timeout_s: float = 10.0  # connect and read timeout of one store request
    storage_attempts: int = 5  # tries of one store request before storage_error / 503
    storage_backoff_s: float = 0.5  # first wait between tries, doubling
    storage_upload_threads: int = 8  # files of a dist/ uploaded at once

    # Serving previews (api/preview.py).
    serve_workers: int = 0  # API processes; 0: one per CPU, at most 4
    preview_memory_mb: int = 64  # hot files kept in memory by each API process
    preview_memory_file_kb: int = 4096  # larger files are streamed, never held in memory
    preview_cache_mb: int = 2048  # files fetched from the object store, kept on local disk
    preview_recheck_s: float = 30.0  # a known build is re-checked (gc) after this long
    # latest--{project} asks the database for the newest success at most this often
    preview_latest_recheck_s: float = 1.0

    # Public addresses.
    public_url: str = ""  # empty: http://<host>:<port>
    preview_domain: str = "preview.localhost"
    preview_scheme: str = "http"
    preview_port: int | None = None  # None: same as port; 0: omit from URLs

    # Access: when set, the API (and so the dashboard) wants `Authorization: Bearer <token>`.
    api_token: str = ""
    dashboard_dir: Path = REPO_ROOT / "dashboard" / "dist"  # the built dashboard, served at /

    # Sandbox.
    sandbox_image: str = "kiln-sandbox:node20-26"  # every offered Node major side by side
    node_major: int = 22
    sandbox_uid: int = 10001
    ca_bundle: Path | None = Path("/etc/ssl/certs/ca-certificates.crt")
    npm_registry: str = "https://registry.npmjs.org/"
    npm_cache: Path | None = None  # None: <var_dir>/cache/npm
    build_runtime: str = ""  # "runsc": run scripts and build under gVisor; empty: Docker's default
    # Dev-session containers; empty: build_runtime. Under gVisor it must let the sandbox make
    # host unix sockets (--host-uds=create): scripts/lib.sh registers "runsc-dev" for that.
    dev_runtime: str = ""
    # Started containers kept waiting for a step, per kind (with and without network), so a
    # step runs at once instead of waiting ~0.2 s for its container (sandbox/pool.py); 0: off.
    container_pool: int = 2

    # Egress: the install step reaches the registry only through Kiln's proxy.
    sandbox_network: str = "kiln-sandbox"
    sandbox_subnet: str = "172.30.213.0/24"
    sandbox_bridge: str = "kiln-sbx0"
    egress_proxy_port: int = 3128
    egress_allow: str = ""  # extra hosts, comma-separated; the registry's host is always allowed
    egress_deny: str = ""  # extra CIDRs refused on top of loopback, private and link-local
    egress_firewall: bool = True  # False only where the host cannot take iptables rules

    # Build caches (orchestrator/cache/).
    cache_layers: bool = True  # shared read-only dependency layers keyed by lockfile
    cache_reuse: bool = True  # identical input answered with the earlier artifact
    warm_templates: bool = True  # a starting worker makes the bundled templates' layers
    resolution_ttl_s: int = 3600  # how long a lockfile-less package.json's resolution holds
    layer_cache_max_mb: int = 10240  # size budget of the layers (least recently used go)
    npm_cache_max_mb: int = 4096  # size budget of the shared npm cache

    # Per-build limits: defaults, and the maximums a submit may not exceed.
    timeout_s: int = 600
    memory_mb: int = 2048
    cpus: float = 2.0
    max_timeout_s: int = 900
    max_memory_mb: int = 4096
    max_cpus: float = 2.0
    pids_limit: int = 512
    nofile_limit: int = 8192
    tmpfs_mb: int = 512
    workspace_mb: int = 2048  # disk per build (source, node_modules, dist); a loop-mounted fs
    max_log_mb: int = 10  # log bytes per build; past it the step is stopped: output_too_large

    # Input and output bounds.
    max_upload_mb: int = 50
    max_files: int = 5000
    max_file_mb: int = 10
    max_dist_mb: int = 200
    max_dist_files: int = 10000
    log_tail_lines: int = 40

    # Queue and log retention.
    queue_name: str = "kiln-builds"
    log_stream_ttl_s: int = 3600
    sse_ping_s: int = 15

    # The live channel (orchestrator/live): follower queues and browsers on other origins.
    live_queue_limit: int = 1000  # events a follower may fall behind before it is cut
    live_send_timeout_s: float = 30.0  # a client that takes no bytes this long is dropped
    cors_origins: str = ""  # exact origins, comma-separated; none by default

    # Reliability and operations.
    log_format: str = "json"  # json (one object per line, with build_id) or text
    # Labels every container/network; cleanup touches only its own. Empty: default_instance.
    instance: str = ""
    docker_timeout_s: int = 60  # every Docker engine call but the output stream
    build_lease_s: int = 30  # a running build whose heartbeat is older is lost
    max_attempts: int = 2  # runs of one build when its worker dies (then worker_lost)
    maintenance_interval_s: int = 15  # janitor and reconciler period in each worker
    requeue_grace_s: int = 10  # a queued build missing from Redis this long is re-enqueued
    max_queued: int = 200  # queued builds overall before submits get 429
    max_queued_per_project: int = 20  # queued builds of one project before 429
    project_concurrency: int = 2  # running builds of one project at once (0: no cap)
    idempotency_ttl_s: int = 24 * 3600  # how long an Idempotency-Key returns its build
    min_free_disk_mb: int = 1024  # below this under var/, new builds are refused (507)
    keep_builds: int = 10  # gc keeps the newest N finished builds of each project...
    keep_days: float = 7.0  # ...and every build younger than this
    # Dev sessions (orchestrator/dev/).
    dev_max_sessions: int = 4  # per dev worker; past it, starts answer 429
    dev_idle_s: int = 900  # a session with no request and no open HMR socket stops
    dev_worker: bool = True  # `kiln worker` also runs a dev worker beside it

    # Code generation (any OpenAI-compatible endpoint); the standard OPENAI_* names work too.
    openai_base_url: str = Field(
        default="", validation_alias=AliasChoices("KILN_OPENAI_BASE_URL", "OPENAI_BASE_URL")
    )
    openai_api_key: str = Field(
        default="", validation_alias=AliasChoices("KILN_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    openai_model: str = "gpt-4.1"
    generate_max_fix_rounds: int = 2
    generate_budget_s: float = 600.0  # all model calls of one generation, retries included
    generate_request_timeout_s: float = 180.0
    generate_max_attempts: int = 5  # per model call, on rate limits, 5xx and lost connections
    generate_backoff_s: float = 1.0  # first wait between attempts, doubling, when no Retry-After
    generate_max_prompt_chars: int = 200_000
    generate_max_output_tokens: int = 32_000

    @model_validator(mode="after")
    def _name_the_instance(self) -> Settings:
        if not self.instance:
            self.instance = default_instance(self.var_dir)
        return self

    @property
    def instance_source(self) -> str:
        """Where the instance name came from, for ``kiln doctor``."""
        if self.instance == default_instance(self.var_dir):
            return f"derived from {self.var_dir.resolve()}"
        return "KILN_INSTANCE"

    @property
    def api_url(self) -> str:
        """The API's public base URL, without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def cors_origin_list(self) -> list[str]:
        """The origins allowed to call the API from a browser (REST, SSE, WebSocket)."""
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL of the database."""
        return self.database_url or f"sqlite:///{self.var_dir.resolve() / 'kiln.db'}"

    def preview_url(self, build_id: str) -> str:
        """The URL at which a build's dist/ is served."""
        port = self.port if self.preview_port is None else self.preview_port
        default = {"http": 80, "https": 443}.get(self.preview_scheme)
        suffix = "" if port in (0, default) else f":{port}"
        return f"{self.preview_scheme}://{build_id}.{self.preview_domain}{suffix}/"

    @property
    def artifacts_dir(self) -> Path:
        """Published dist/ folders and archived logs, one folder per build."""
        return self.var_dir.resolve() / "artifacts"

    @property
    def sources_dir(self) -> Path:
        """Submitted sources, as validated tarballs, waiting for a worker."""
        return self.var_dir.resolve() / "sources"

    @property
    def preview_cache_dir(self) -> Path:
        """Local copies of preview files fetched from the object store."""
        return self.var_dir.resolve() / "cache" / "preview"

    @property
    def work_dir(self) -> Path:
        """Per-build workspaces mounted into sandbox containers."""
        return self.var_dir.resolve() / "work"

    @property
    def layers_dir(self) -> Path:
        """Shared dependency layers (orchestrator/cache/layers.py)."""
        return self.var_dir.resolve() / "cache" / "layers"

    @property
    def resolutions_dir(self) -> Path:
        """Remembered dependency resolutions of lockfile-less projects."""
        return self.var_dir.resolve() / "cache" / "resolutions"

    @property
    def npm_cache_dir(self) -> Path:
        """The npm cache shared by install containers (which run no project code)."""
        return (self.npm_cache or self.var_dir / "cache" / "npm").resolve()


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
