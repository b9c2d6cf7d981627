"""Making sure the sandbox image exists and is current, and building it if not.

:func:`image_digest` hashes the builder's inputs, :func:`image_is_current`
compares it with the image's label and :func:`ensure_image` builds the image
under a lock, from the Dockerfile when the ``node`` base image is available
and otherwise from a Debian root filesystem plus Node and npm from the npm
registry (``docker import``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import platform
import ssl
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from orchestrator.errors import SandboxImageError
from orchestrator.project.environment import Manager
from orchestrator.sandbox.image.layout import (
    IMAGE_PATH,
    KILN_GID,
    KILN_UID,
    LABEL_DIGEST,
    LABEL_NODE_VERSION,
    NPM_MAJOR,
    SUITE,
    WORKSPACE,
    Log,
)
from orchestrator.sandbox.image.npm_registry import (
    DEFAULT_CA_BUNDLE,
    DEFAULT_REGISTRY,
    _download_package,
    _fetch_json,
    _ssl_context,
    pick_version,
)
from orchestrator.sandbox.image.rootfs import _compose_rootfs, _debian_rootfs, detect_mirror
from orchestrator.sandbox.image.toolchains import MANAGER_PINS, NODE_MAJORS, Carried, labels

#: Bump when the way the image is built changes in a way that the files in
#: ``sandbox_images/node`` do not show; it is part of :func:`image_digest`.
BUILDER_VERSION = "2"

DEFAULT_TAG = "kiln-sandbox:node20-26"
SOURCE_DIR = Path(__file__).resolve().parents[3] / "sandbox_images" / "node"


def image_digest(
    source_dir: Path, node_major: int, other_majors: Sequence[int] = (), pins: bool = True
) -> str:
    """Return a hex SHA-256 over everything that determines the image.

    Covers every file under ``source_dir`` (relative path and content, in a
    stable order), :data:`BUILDER_VERSION`, the Debian suite, the npm major
    version, ``node_major`` and the other majors carried, and (with ``pins``) the package
    manager pins. Any change to one of them gives a different digest, which makes
    :func:`ensure_image` rebuild.
    """
    h = hashlib.sha256()
    h.update(
        f"kiln-sandbox-image\0builder={BUILDER_VERSION}\0node={node_major}\0"
        f"npm={NPM_MAJOR}\0suite={SUITE}\0".encode()
    )
    others = sorted(set(other_majors) - {node_major})
    h.update(f"others={','.join(map(str, others))}\0".encode())
    if pins:
        for manager, (package, version) in sorted(MANAGER_PINS.items()):
            h.update(f"pin\0{manager.value}\0{package}@{version}\0".encode())
    if not source_dir.is_dir():
        raise SandboxImageError(f"sandbox image sources not found: {source_dir}")
    files = sorted(p for p in source_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in files:
        rel = path.relative_to(source_dir).as_posix()
        data = path.read_bytes()
        h.update(f"file\0{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def image_is_current(client: docker.DockerClient, tag: str, digest: str) -> bool:
    """Return True if ``tag`` exists and carries ``kiln.image.digest=<digest>``."""
    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.APIError as exc:
        raise SandboxImageError(f"cannot inspect image {tag}: {_first_line(exc)}") from exc
    labels = image.labels or {}
    return bool(labels.get(LABEL_DIGEST) == digest)


@dataclass(frozen=True)
class ImageRecipe:
    """What the sandbox image is made of.

    ``tag`` names the image, ``node_major`` is its default Node, ``other_majors`` the
    majors carried beside it (with the pinned package managers) and ``source_dir`` the
    Dockerfile sources (default: the repository's ``sandbox_images/node``).
    """

    tag: str = DEFAULT_TAG
    node_major: int = 22
    other_majors: Sequence[int] = NODE_MAJORS
    source_dir: Path | None = None


@dataclass(frozen=True)
class PackageSources:
    """Where a build without the ``node`` base image fetches from.

    Node, npm and the package managers come from ``registry_url`` (TLS verified
    against ``ca_bundle``; ``None`` means the system default), the Debian root from
    ``mirror`` (default: the host's apt source).
    """

    registry_url: str = DEFAULT_REGISTRY
    ca_bundle: str | None = DEFAULT_CA_BUNDLE
    mirror: str | None = None


@dataclass(frozen=True)
class _Target:
    """An :class:`ImageRecipe` resolved for one build: its sources found, its digest taken."""

    tag: str
    node_major: int
    others: tuple[int, ...]
    source_dir: Path
    digest: str

    @classmethod
    def of(cls, recipe: ImageRecipe) -> _Target:
        src = (recipe.source_dir or SOURCE_DIR).resolve()
        others = tuple(sorted(set(recipe.other_majors) - {recipe.node_major}))
        digest = image_digest(src, recipe.node_major, others)
        return cls(recipe.tag, recipe.node_major, others, src, digest)


def ensure_image(
    client: docker.DockerClient,
    recipe: ImageRecipe,
    *,
    work_dir: Path,
    sources: PackageSources | None = None,
    force: bool = False,
    log: Log = print,
) -> str:
    """Make sure the sandbox image ``recipe.tag`` is built and current; return its id.

    Returns at once when the tag already carries the current
    :func:`image_digest` (unless ``force``). Otherwise builds it from the
    Dockerfile if ``node:<major>-bookworm-slim`` is available locally or can
    be pulled, else from a debootstrapped Debian root plus Node and npm from
    ``sources`` (default :class:`PackageSources`). ``work_dir`` keeps the cached
    Debian root, downloads and a lock that serialises concurrent builds.
    Raises :class:`SandboxImageError`.
    """
    target = _Target.of(recipe)
    if not force and image_is_current(client, target.tag, target.digest):
        return str(client.images.get(target.tag).id)

    work_dir = Path(work_dir)
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SandboxImageError(f"cannot create work directory {work_dir}: {exc}") from exc

    with _locked(work_dir / ".lock", log):
        # Someone else may have built it while we waited for the lock.
        if not force and image_is_current(client, target.tag, target.digest):
            return str(client.images.get(target.tag).id)
        old_id = _image_id(client, target.tag)
        started = time.monotonic()
        base = f"node:{target.node_major}-bookworm-slim"
        if _base_image_available(client, base, log):
            image_id = _build_from_dockerfile(client, target, log=log)
        else:
            image_id = _build_from_rootfs(
                client, target, sources or PackageSources(), work_dir=work_dir, log=log
            )
        size_mb = _image_size(client, image_id) / 1e6
        log(f"built {target.tag} in {time.monotonic() - started:.0f} s ({size_mb:.0f} MB)")
        if old_id and old_id != image_id:
            _remove_if_untagged(client, old_id)
        return image_id


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def _locked(path: Path, log: Log) -> Iterator[None]:
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another image build ({path})...")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _image_id(client: docker.DockerClient, ref: str) -> str | None:
    try:
        return str(client.images.get(ref).id)
    except docker.errors.ImageNotFound:
        return None


def _image_size(client: docker.DockerClient, ref: str) -> int:
    try:
        return int(client.images.get(ref).attrs.get("Size") or 0)
    except docker.errors.DockerException:
        return 0


def _remove_if_untagged(client: docker.DockerClient, image_id: str) -> None:
    """Drop the image the tag pointed to before, if nothing else names it."""
    with contextlib.suppress(docker.errors.DockerException):
        if not client.images.get(image_id).tags:
            client.images.remove(image_id)


def _base_image_available(client: docker.DockerClient, base: str, log: Log) -> bool:
    if _image_id(client, base):
        log(f"using local base image {base}")
        return True
    repo, _, tag = base.partition(":")
    try:
        log(f"pulling {base}...")
        client.images.pull(repo, tag=tag)
    except docker.errors.DockerException as exc:
        log(f"cannot pull {base} ({_first_line(exc)}); building from a Debian root filesystem")
        return False
    return True


def _build_from_dockerfile(client: docker.DockerClient, target: _Target, *, log: Log) -> str:
    tag, source_dir = target.tag, target.source_dir
    log(f"docker build {tag} from {source_dir / 'Dockerfile'}")
    try:
        image, _logs = client.images.build(
            path=str(source_dir),
            tag=tag,
            buildargs={"NODE_MAJOR": str(target.node_major)},
            labels={LABEL_DIGEST: target.digest},
            pull=False,
            rm=True,
            forcerm=True,
        )
    except docker.errors.BuildError as exc:
        tail = "".join(str(chunk.get("stream", "")) for chunk in list(exc.build_log)[-20:]).strip()
        raise SandboxImageError(f"docker build of {tag} failed: {exc.msg}\n{tail}") from exc
    except docker.errors.DockerException as exc:
        raise SandboxImageError(f"docker build of {tag} failed: {_first_line(exc)}") from exc
    version = (image.labels or {}).get(LABEL_NODE_VERSION, "?")
    log(f"node v{version}")
    return _label_carried(client, str(image.id), tag, log)


#: Prints "<major>=<version>" per Node and "<manager>=<version>" per manager in the image.
_REPORT_CARRIED = (
    'for d in /opt/kiln/node/*; do echo "node:${d##*/}=$($d/bin/node -p process.versions.node)";'
    " done; echo npm=$(npm -v); for d in /opt/kiln/managers/*; do"
    ' echo "${d##*/}=$(node -p "require(\'$d/pkg/package.json\').version")"; done'
)


def _label_carried(client: docker.DockerClient, image_id: str, tag: str, log: Log) -> str:
    """Read what a Dockerfile-built image carries and add it as labels (a one-line build)."""
    try:
        output = client.containers.run(
            image_id, ["sh", "-c", _REPORT_CARRIED], remove=True, network_disabled=True
        )
    except docker.errors.DockerException as exc:
        raise SandboxImageError(f"cannot read what {tag} carries: {_first_line(exc)}") from exc
    node: dict[int, str] = {}
    managers: dict[Manager, str] = {}
    for line in output.decode(errors="replace").split():
        key, _, value = line.partition("=")
        if key.startswith("node:") and key[5:].isdigit():
            node[int(key[5:])] = value
        elif key in Manager._value2member_map_:
            managers[Manager(key)] = value
    dockerfile = f"FROM {image_id}\n" + "".join(
        f'LABEL {k}="{v}"\n' for k, v in labels(Carried(node, managers)).items()
    )
    try:
        image, _ = client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    except docker.errors.DockerException as exc:
        raise SandboxImageError(f"cannot label {tag}: {_first_line(exc)}") from exc
    return str(image.id)


def _arch() -> tuple[str, str]:
    """Return (Debian architecture, node-linux-* suffix) for this machine."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return "amd64", "x64"
    if machine in ("aarch64", "arm64"):
        return "arm64", "arm64"
    raise SandboxImageError(f"unsupported machine architecture {machine!r}")


def _build_from_rootfs(
    client: docker.DockerClient,
    target: _Target,
    sources: PackageSources,
    *,
    work_dir: Path,
    log: Log,
) -> str:
    deb_arch, node_arch = _arch()
    npmrc = _read_npmrc(target.source_dir)
    downloads = work_dir / "downloads"
    downloads.mkdir(exist_ok=True)
    fetcher = _Fetcher(
        sources.registry_url.rstrip("/"), _ssl_context(sources.ca_bundle, log), downloads, log
    )
    # Resolve and fetch Node and npm first: cheap to fail, unlike debootstrap.
    toolchains = _fetch_toolchains(fetcher, target, node_arch)
    base_tar = _debian_rootfs(work_dir, sources.mirror or detect_mirror(), deb_arch, log)

    out = work_dir / f"image-{os.getpid()}.tar"
    try:
        log("assembling root filesystem...")
        _compose_rootfs(
            base_tar,
            toolchains.node_tgz,
            toolchains.npm_tgz,
            npmrc,
            out,
            default_major=target.node_major,
            other_nodes=toolchains.other_nodes,
            managers=toolchains.managers,
        )
        _docker_import(client, out, target.tag, _import_changes(target, toolchains), log)
    finally:
        with contextlib.suppress(OSError):
            out.unlink()
    image_id = _image_id(client, target.tag)
    if image_id is None:
        raise SandboxImageError(f"docker import reported success but {target.tag} does not exist")
    log(f"imported {target.tag} ({_image_size(client, image_id) / 1e6:.0f} MB)")
    return image_id


def _read_npmrc(source_dir: Path) -> bytes:
    npmrc_path = source_dir / "npmrc"
    try:
        return npmrc_path.read_bytes()
    except OSError as exc:
        raise SandboxImageError(f"cannot read {npmrc_path}: {exc}") from exc


@dataclass(frozen=True)
class _Fetcher:
    """Fetches package metadata and tarballs from one npm registry into ``downloads``."""

    registry_url: str
    ctx: ssl.SSLContext
    downloads: Path
    log: Log

    def metadata(self, package: str) -> dict[str, Any]:
        """The registry's document for ``package`` (scoped names escaped)."""
        return _fetch_json(f"{self.registry_url}/{package.replace('/', '%2f')}", self.ctx)

    def download(self, meta: dict[str, Any], version: str) -> Path:
        """The tarball of ``version``, downloaded (and verified) unless already there."""
        return _download_package(meta, version, self.downloads, self.ctx, self.log)


@dataclass(frozen=True)
class _Toolchains:
    """The downloaded tarballs an image is composed from, and what they carry."""

    node_version: str
    node_tgz: Path
    npm_tgz: Path
    other_nodes: dict[int, Path]
    managers: dict[Manager, Path]
    carried: Carried


def _fetch_toolchains(fetcher: _Fetcher, target: _Target, node_arch: str) -> _Toolchains:
    """Resolve and download the default Node, npm, the other Node majors and the managers."""
    node_meta = fetcher.metadata(f"node-linux-{node_arch}")
    node_version = pick_version(node_meta, target.node_major)
    fetcher.log(f"node v{node_version}")
    node_tgz = fetcher.download(node_meta, node_version)

    npm_meta = fetcher.metadata("npm")
    npm_version = pick_version(npm_meta, NPM_MAJOR)
    fetcher.log(f"npm {npm_version}")
    npm_tgz = fetcher.download(npm_meta, npm_version)

    other_nodes: dict[int, Path] = {}
    carried_node = {target.node_major: node_version}
    for major in target.others:
        version = pick_version(node_meta, major)
        fetcher.log(f"node v{version} (beside v{node_version})")
        other_nodes[major] = fetcher.download(node_meta, version)
        carried_node[major] = version
    managers, carried_managers = _fetch_managers(fetcher, node_arch)
    carried = Carried(carried_node, {Manager.NPM: npm_version, **carried_managers})
    return _Toolchains(node_version, node_tgz, npm_tgz, other_nodes, managers, carried)


def _fetch_managers(
    fetcher: _Fetcher, node_arch: str
) -> tuple[dict[Manager, Path], dict[Manager, str]]:
    """Download the pinned package managers; return their tarballs and versions."""
    tarballs: dict[Manager, Path] = {}
    versions: dict[Manager, str] = {}
    for manager, (package, version) in MANAGER_PINS.items():
        if manager == Manager.BUN and node_arch != "x64":
            package = package.replace("-x64", f"-{node_arch}")
        meta = fetcher.metadata(package)
        fetcher.log(f"{manager.value} {version} ({package})")
        tarballs[manager] = fetcher.download(meta, version)
        versions[manager] = version
    return tarballs, versions


def _import_changes(target: _Target, toolchains: _Toolchains) -> list[str]:
    """The Dockerfile instructions ``docker import`` applies to the root filesystem."""
    return [
        f"ENV PATH={IMAGE_PATH}",
        f"WORKDIR {WORKSPACE}",
        f"USER {KILN_UID}:{KILN_GID}",
        f"LABEL {LABEL_DIGEST}={target.digest}",
        f"LABEL {LABEL_NODE_VERSION}={toolchains.node_version}",
        *(f"LABEL {key}={value}" for key, value in labels(toolchains.carried).items()),
        'CMD ["node"]',
    ]


def _split_tag(tag: str) -> tuple[str, str]:
    """(repository, tag) of an image reference; ``latest`` when it names no tag."""
    repo, _, tag_part = tag.rpartition(":")
    if not repo or "/" in tag_part:  # no tag part (e.g. "host:5000/name")
        return tag, "latest"
    return repo, tag_part


def _docker_import(
    client: docker.DockerClient, tar: Path, tag: str, changes: list[str], log: Log
) -> None:
    repo, tag_part = _split_tag(tag)
    log(f"docker import {tag} ({tar.stat().st_size / 1e6:.0f} MB tar)...")
    try:
        client.api.import_image_from_file(str(tar), repository=repo, tag=tag_part, changes=changes)
    except docker.errors.DockerException as exc:
        raise SandboxImageError(f"docker import of {tag} failed: {_first_line(exc)}") from exc
