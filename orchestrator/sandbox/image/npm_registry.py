"""Resolving and downloading npm packages for the root-filesystem build.

Node itself (the ``node-linux-*`` package) and npm come from the npm registry:
:func:`pick_version` chooses a release from a package's metadata, and every
tarball is checked against its ``dist.integrity`` (:func:`verify_integrity`)
before it is used. Downloads are cached, retried and made over TLS verified
against a CA bundle.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from orchestrator.errors import SandboxImageError
from orchestrator.sandbox.image.layout import Log

DEFAULT_REGISTRY = "https://registry.npmjs.org"
DEFAULT_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_HTTP_TIMEOUT = 60.0
_DOWNLOAD_ATTEMPTS = 3
_CHUNK = 1 << 20
_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


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
