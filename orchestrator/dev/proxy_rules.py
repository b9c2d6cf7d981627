"""What Kiln's preview proxy lets through to a dev session, and what it changes. Pure.

Vite's own checks depend on the project's Vite version and on a config the project
controls, so the proxy enforces these for every version: the exact Host, the exact
Origin on the HMR socket, no ``/@fs/`` outside the project, no ``vite:invoke`` from a
browser (CVE-2026-39363), and Kiln's hook in every HTML page.
"""

from __future__ import annotations

import json
import posixpath
import re
from urllib.parse import unquote

PROJECT_ROOT = "/workspace"
HOOK_PATH = "/__kiln/hook.js"
REPORT_PATH = "/__kiln/report"
HMR_PATH = "/__kiln_hmr"
HOOK_TAG = f'<script type="module" src="{HOOK_PATH}"></script>'.encode()
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "accept-encoding",
        "host",
    }
)
_HEAD = re.compile(rb"<head[^>]*>", re.IGNORECASE)
BLOCKED_EVENTS = frozenset({"vite:invoke"})


def fs_path_allowed(path: str) -> bool:
    """False for a ``/@fs/`` request outside the project (Vite's raw file access)."""
    decoded = unquote(unquote(path))
    if "\x00" in decoded or "\\" in decoded:
        return False
    marker = decoded.find("/@fs/")
    if marker < 0:
        return True
    target = posixpath.normpath("/" + decoded[marker + len("/@fs/") :].split("?")[0])
    return target == PROJECT_ROOT or target.startswith(PROJECT_ROOT + "/")


def origin_allowed(origin: str | None, expected: str) -> bool:
    """The HMR socket and the report endpoint answer only the dev host's own pages."""
    return origin is not None and origin.rstrip("/") == expected.rstrip("/")


def request_headers(headers: list[tuple[bytes, bytes]], dev_host: str) -> dict[str, str]:
    """The headers sent on to Vite: hop-by-hop ones dropped, the Host fixed to the dev host."""
    forwarded = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        if name not in HOP_BY_HOP and not name.startswith("sec-websocket"):
            forwarded[name] = raw_value.decode("latin-1")
    forwarded["host"] = dev_host
    return forwarded


def response_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Vite's response headers as sent to the browser (length and framing are the proxy's)."""
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP | {"content-encoding"}]


def inject_hook(html: bytes) -> bytes:
    """Add Kiln's client hook to an HTML page, right after <head> (else at the start)."""
    found = _HEAD.search(html)
    if found is None:
        return HOOK_TAG + html
    return html[: found.end()] + HOOK_TAG + html[found.end() :]


def client_message_allowed(message: str | bytes) -> bool:
    """Whether a browser's HMR message may reach Vite: JSON, and no ``vite:invoke``."""
    try:
        payload = json.loads(message)
    except (ValueError, UnicodeDecodeError):
        return False
    if not isinstance(payload, dict):
        return False
    return not (payload.get("type") == "custom" and payload.get("event") in BLOCKED_EVENTS)
