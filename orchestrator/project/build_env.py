"""A submit's build settings (``"env"``): checked here, set for the build step only.

Like Vercel's and Netlify's environment variables: ``VITE_API_URL`` and friends reach
``vite build`` (which inlines ``VITE_*`` into the bundle), never the install step or a
dependency layer's containers, which run with Kiln's fixed environment. Values are secrets
as far as Kiln is concerned: the build body and the log name them, never show them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from orchestrator.errors import InputError

NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
MAX_VARS = 64
MAX_NAME_CHARS = 128
MAX_TOTAL_BYTES = 8 * 1024  # names and values together; fits an HTTP header (Kiln-Env)
# Kiln sets these in every container; a submit may not replace them.
RESERVED = frozenset(
    {"PATH", "HOME", "CI", "NODE_EXTRA_CA_CERTS", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"}
)


def check_env(env: Mapping[str, object] | None) -> dict[str, str]:
    """A submit's ``env`` checked: names ``[A-Z_][A-Z0-9_]*``, string values, bounded size."""
    if not env:
        return {}
    if len(env) > MAX_VARS:
        raise InputError(f"env has {len(env)} variables; at most {MAX_VARS} are allowed")
    checked: dict[str, str] = {}
    for name, value in env.items():
        if not isinstance(name, str) or not NAME.fullmatch(name) or len(name) > MAX_NAME_CHARS:
            raise InputError(
                f"env name {str(name)[:40]!r} is not allowed: use [A-Z_][A-Z0-9_]* "
                f"(at most {MAX_NAME_CHARS} characters)"
            )
        if name in RESERVED:
            raise InputError(f"env name {name} is set by Kiln and cannot be overridden")
        if not isinstance(value, str) or "\x00" in value:
            raise InputError(f"env {name}: the value must be a string without NUL characters")
        checked[name] = value
    size = sum(len(k.encode()) + len(v.encode()) for k, v in checked.items())
    if size > MAX_TOTAL_BYTES:
        raise InputError(
            f"env is {size} bytes; the limit is {MAX_TOTAL_BYTES} bytes (names and values)"
        )
    return dict(sorted(checked.items()))


def parse_env_file(text: str) -> dict[str, str]:
    """``KEY=value`` lines of a dotenv file (``#`` comments, ``export``, quotes stripped)."""
    env: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        name, sep, value = line.partition("=")
        if not sep:
            raise InputError(f"line {number}: expected KEY=value")
        env[name.strip()] = unquote(value.strip())
    return env


def parse_assignment(text: str) -> tuple[str, str]:
    """One ``KEY=value`` from the command line."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise InputError(f"--env {text.split('=')[0]!r}: expected KEY=value")
    return name, value


def unquote(value: str) -> str:
    """A dotenv value without its surrounding quotes (or its trailing `` # comment``)."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value.split(" #", 1)[0].rstrip()


def env_names(env: Mapping[str, str] | None) -> list[str]:
    """The names only: what the build body and the log show."""
    return sorted(env or {})
