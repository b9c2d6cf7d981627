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
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

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


def ensure_image(
    client: docker.DockerClient,
    tag: str = DEFAULT_TAG,
    node_major: int = 22,
    *,
    registry_url: str = DEFAULT_REGISTRY,
    ca_bundle: str | None = DEFAULT_CA_BUNDLE,
    mirror: str | None = None,
    work_dir: Path,
    force: bool = False,
    log: Log = print,
    source_dir: Path | None = None,
    other_majors: Sequence[int] = NODE_MAJORS,
) -> str:
    """Make sure the sandbox image ``tag`` is built and current; return its id.

    Returns at once when ``tag`` already carries the current
    :func:`image_digest` (unless ``force``). Otherwise builds it from the
    Dockerfile if ``node:<major>-bookworm-slim`` is available locally or can
    be pulled, else from a debootstrapped Debian root plus Node and npm from
    ``registry_url`` (TLS verified against ``ca_bundle``; ``None`` means the
    system default). ``mirror`` is the Debian mirror (default: the host's apt
    source). ``work_dir`` keeps the cached Debian root, downloads and a lock
    that serialises concurrent builds. ``source_dir`` defaults to the
    repository's ``sandbox_images/node``. ``other_majors``: the Node majors carried beside
    ``node_major`` (with the pinned package managers). Raises :class:`SandboxImageError`.
    """
    src = (source_dir or SOURCE_DIR).resolve()
    others = sorted(set(other_majors) - {node_major})
    digest = image_digest(src, node_major, others)
    if not force and image_is_current(client, tag, digest):
        return str(client.images.get(tag).id)

    work_dir = Path(work_dir)
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SandboxImageError(f"cannot create work directory {work_dir}: {exc}") from exc

    with _locked(work_dir / ".lock", log):
        # Someone else may have built it while we waited for the lock.
        if not force and image_is_current(client, tag, digest):
            return str(client.images.get(tag).id)
        old_id = _image_id(client, tag)
        started = time.monotonic()
        base = f"node:{node_major}-bookworm-slim"
        if _base_image_available(client, base, log):
            image_id = _build_from_dockerfile(client, tag, node_major, digest, src, log)
        else:
            image_id = _build_from_rootfs(
                client,
                tag,
                node_major,
                digest,
                registry_url=registry_url,
                ca_bundle=ca_bundle,
                mirror=mirror or detect_mirror(),
                work_dir=work_dir,
                source_dir=src,
                log=log,
                other_majors=others,
            )
        size_mb = _image_size(client, image_id) / 1e6
        log(f"built {tag} in {time.monotonic() - started:.0f} s ({size_mb:.0f} MB)")
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


def _build_from_dockerfile(
    client: docker.DockerClient,
    tag: str,
    node_major: int,
    digest: str,
    source_dir: Path,
    log: Log,
) -> str:
    log(f"docker build {tag} from {source_dir / 'Dockerfile'}")
    try:
        image, _logs = client.images.build(
            path=str(source_dir),
            tag=tag,
            buildargs={"NODE_MAJOR": str(node_major)},
            labels={LABEL_DIGEST: digest},
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
    tag: str,
    node_major: int,
    digest: str,
    *,
    registry_url: str,
    ca_bundle: str | None,
    mirror: str,
    work_dir: Path,
    source_dir: Path,
    log: Log,
    other_majors: Sequence[int] = (),
) -> str:
    deb_arch, node_arch = _arch()
    npmrc_path = source_dir / "npmrc"
    try:
        npmrc = npmrc_path.read_bytes()
    except OSError as exc:
        raise SandboxImageError(f"cannot read {npmrc_path}: {exc}") from exc
    ctx = _ssl_context(ca_bundle, log)
    downloads = work_dir / "downloads"
    downloads.mkdir(exist_ok=True)

    # Resolve and fetch Node and npm first: cheap to fail, unlike debootstrap.
    node_pkg = f"node-linux-{node_arch}"
    node_meta = _fetch_json(f"{registry_url.rstrip('/')}/{node_pkg}", ctx)
    node_version = pick_version(node_meta, node_major)
    log(f"node v{node_version}")
    node_tgz = _download_package(node_meta, node_version, downloads, ctx, log)

    npm_meta = _fetch_json(f"{registry_url.rstrip('/')}/npm", ctx)
    npm_version = pick_version(npm_meta, NPM_MAJOR)
    log(f"npm {npm_version}")
    npm_tgz = _download_package(npm_meta, npm_version, downloads, ctx, log)

    other_nodes: dict[int, Path] = {}
    carried_node = {node_major: node_version}
    for major in other_majors:
        version = pick_version(node_meta, major)
        log(f"node v{version} (beside v{node_version})")
        other_nodes[major] = _download_package(node_meta, version, downloads, ctx, log)
        carried_node[major] = version
    manager_tgzs: dict[Manager, Path] = {}
    carried_managers = {Manager.NPM: npm_version}
    for manager, (package, version) in MANAGER_PINS.items():
        if manager == Manager.BUN and node_arch != "x64":
            package = package.replace("-x64", f"-{node_arch}")
        meta = _fetch_json(f"{registry_url.rstrip('/')}/{package.replace('/', '%2f')}", ctx)
        log(f"{manager.value} {version} ({package})")
        manager_tgzs[manager] = _download_package(meta, version, downloads, ctx, log)
        carried_managers[manager] = version
    carried = Carried(carried_node, carried_managers)

    base_tar = _debian_rootfs(work_dir, mirror, deb_arch, log)

    out = work_dir / f"image-{os.getpid()}.tar"
    try:
        log("assembling root filesystem...")
        _compose_rootfs(
            base_tar,
            node_tgz,
            npm_tgz,
            npmrc,
            out,
            default_major=node_major,
            other_nodes=other_nodes,
            managers=manager_tgzs,
        )
        changes = [
            f"ENV PATH={IMAGE_PATH}",
            f"WORKDIR {WORKSPACE}",
            f"USER {KILN_UID}:{KILN_GID}",
            f"LABEL {LABEL_DIGEST}={digest}",
            f"LABEL {LABEL_NODE_VERSION}={node_version}",
            *(f"LABEL {key}={value}" for key, value in labels(carried).items()),
            'CMD ["node"]',
        ]
        repo, _, tag_part = tag.rpartition(":")
        if not repo or "/" in tag_part:  # no tag part (e.g. "host:5000/name")
            repo, tag_part = tag, "latest"
        log(f"docker import {tag} ({out.stat().st_size / 1e6:.0f} MB tar)...")
        try:
            client.api.import_image_from_file(
                str(out), repository=repo, tag=tag_part, changes=changes
            )
        except docker.errors.DockerException as exc:
            raise SandboxImageError(f"docker import of {tag} failed: {_first_line(exc)}") from exc
    finally:
        with contextlib.suppress(OSError):
            out.unlink()
    image_id = _image_id(client, tag)
    if image_id is None:
        raise SandboxImageError(f"docker import reported success but {tag} does not exist")
    log(f"imported {tag} ({_image_size(client, image_id) / 1e6:.0f} MB)")
    return image_id
