"""A failed build's log turned into a compact, structured error report.

Pure: ``diagnose(code, message, log)`` returns ``{"category", "fingerprint", "items",
"omitted"}``. Each item is ``{"category", "file", "line", "column", "message"}``, with
paths relative to the project. Items are deduplicated and bounded, so the report fits in
a prompt and in every failed build's public body. The fingerprint ignores line numbers,
so an auto-fix loop can tell "the same error again" from progress.

The recognised formats come from real Kiln builds (tsc, Vite 8/rolldown, Node, npm);
their logs are the fixtures of the unit tests.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from typing import Any

from orchestrator.builds.install_errors import install_findings
from orchestrator.builds.output_folder import MISSING_OUTPUT
from orchestrator.live.logbus import clean_line

CATEGORIES = (
    "missing_dependency",
    "unresolved_import",
    "syntax",
    "type_error",
    "config",
    "out_of_memory",
    "timeout",
    "other",
)
MAX_ITEMS = 10
MAX_MESSAGE_CHARS = 300
WORKSPACE_PREFIXES = ("file:///workspace/", "/workspace/", "./")

Item = dict[str, Any]

# tsc: "src/a.ts(1,14): error TS2322: ..." or the pretty "src/a.ts:1:14 - error TS2322: ..."
_TSC = re.compile(
    r"^(?P<file>[^\s(:][^(:]*?)(?:\((?P<line>\d+),(?P<col>\d+)\)|:(?P<line2>\d+):(?P<col2>\d+))"
    r":? -? ?error (?P<ts>TS\d+): (?P<msg>.+)$"
)
_TS_MODULE = re.compile(r"Cannot find module '([^']+)'")
# rolldown / Vite 8: "[PARSE_ERROR] Unexpected token" then "╭─[ src/main.js:2:14 ]"
_BOX_HEAD = re.compile(r"^\[(?P<tag>[A-Za-z0-9_:.-]+)\] (?P<msg>.+)$")
_BOX_LOC = re.compile(r"╭─\[ ?(?P<file>[^\]]+?):(?P<line>\d+):(?P<col>\d+) ?\]")
_UNRESOLVED = re.compile(r"Could not resolve '([^']+)'")
# Vite: 'Rolldown failed to resolve import "x" from "/workspace/src/App.jsx"' (Rollup too)
_VITE_RESOLVE = re.compile(r'failed to resolve import "(?P<spec>[^"]+)" from "(?P<file>[^"]+)"')
# esbuild: "/workspace/src/a.ts:2:13: ERROR: Expected ..."
_ESBUILD = re.compile(r"^(?P<file>\S+?):(?P<line>\d+):(?P<col>\d+): ERROR: (?P<msg>.+)$")
# Node: "Error: Cannot find module 'x'" (CommonJS) / "Cannot find package 'x' imported from f"
_NODE_MODULE = re.compile(
    r"Error(?: \[ERR_MODULE_NOT_FOUND\])?: Cannot find (?:module|package) '([^']+)'"
)
_NODE_IMPORTED_FROM = re.compile(r"imported from (\S+)")
_NODE_LOCATION = re.compile(r"^(?P<file>(?:file://)?/workspace/\S+?):(?P<line>\d+)$")
_JS_ERROR = re.compile(r"^(?P<kind>SyntaxError|TypeError|ReferenceError): (?P<msg>.+)$")
# npm (the dependency problems of every package manager are in install_errors.py)
_NPM_CODE = re.compile(r"npm (?:error|ERR!) code (\w+)")
_NPM_MISSING_SCRIPT = re.compile(r'npm (?:error|ERR!) Missing script: "([^"]+)"')
_VITE_CONFIG = re.compile(r"failed to load config from (\S+)")
# The config file a missing-output message tells the user to change (frameworks.py).
_CONFIG_FILE = re.compile(r"\b(?:svelte|vite|react-router|nuxt|astro|next)\.config\.[cm]?[jt]s\b")
_ERRORISH = re.compile(r"\b(error|failed|cannot|unable)\b", re.IGNORECASE)
# Lines that only point elsewhere: never the diagnosis.
_NOISE = re.compile(
    r"A complete log of this run|For a full report see|^\S*(?:npm (?:error|ERR!))?\s*$"
    r"|yarnpkg\.com/en/docs|This error happened while installing"
)
# What differs between two runs of the same failure: never in an item or a fingerprint.
_VOLATILE = (
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d[_:]\d\d[_:]\d\d(?:[_.:]\d+)?Z?"), "<time>"),
    (re.compile(r"(?:/cache|/tmp|/root|/home)/\S*"), "<path>"),
    (re.compile(r"(?:(?<=in )|(?<=after ))\d+(?:\.\d+)?\s?(?:ms|s)\b"), "<duration>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{12,}\b"), "<id>"),
)


def scrub(message: str) -> str:
    """A message without timestamps, cache or temporary paths, durations and random ids."""
    for pattern, placeholder in _VOLATILE:
        message = pattern.sub(placeholder, message)
    return message


def relative_path(path: str | None) -> str | None:
    """A path as the project sees it: without the sandbox's /workspace/ or file:// prefix."""
    if not path:
        return None
    for prefix in WORKSPACE_PREFIXES:
        if path.startswith(prefix):
            path = path[len(prefix) :]
    return path or None


def is_package(specifier: str) -> bool:
    """True for a bare import (``react``, ``@scope/pkg``), not a path or a ``@/`` alias."""
    return not specifier.startswith((".", "/", "@/", "~/", "#"))


def _item(
    category: str,
    message: str,
    file: str | None = None,
    line: int | str | None = None,
    column: int | str | None = None,
) -> Item:
    message = scrub(" ".join(message.split()))
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return {
        "category": category,
        "file": relative_path(file),
        "line": int(line) if line else None,
        "column": int(column) if column else None,
        "message": message,
    }


def _item_whole(category: str, message: str, file: str) -> Item:
    """An item whose message is kept whole (the advice of a missing output is the point)."""
    item = _item(category, message, file)
    item["message"] = scrub(" ".join(message.split()))
    return item


def _import_category(specifier: str) -> str:
    return "missing_dependency" if is_package(specifier) else "unresolved_import"


def _tsc(lines: list[str]) -> Iterator[Item]:
    for text in lines:
        match = _TSC.match(text.strip())
        if not match:
            continue
        ts, msg = match["ts"], match["msg"]
        module = _TS_MODULE.search(msg)
        if module:
            category = _import_category(module.group(1))
        elif ts.startswith("TS1"):
            category = "syntax"
        elif ts.startswith(("TS5", "TS6")):
            category = "config"
        else:
            category = "type_error"
        line, col = match["line"] or match["line2"], match["col"] or match["col2"]
        yield _item(category, f"{ts}: {msg}", match["file"], line, col)


def _boxed(lines: list[str]) -> Iterator[Item]:
    for index, text in enumerate(lines):
        head = _BOX_HEAD.match(text.strip())
        if not head:
            continue
        location = None
        for following in lines[index + 1 : index + 4]:
            location = _BOX_LOC.search(following)
            if location:
                break
        if location is None:
            continue
        tag, msg = head["tag"], head["msg"]
        unresolved = _UNRESOLVED.search(msg)
        if unresolved or tag == "UNRESOLVED_IMPORT":
            spec = unresolved.group(1) if unresolved else ""
            category = _import_category(spec) if spec else "unresolved_import"
        elif tag in ("PARSE_ERROR", "builtin:vite-transform") or "Expected" in msg:
            category = "syntax"
        else:
            category = "other"
        yield _item(category, msg, location["file"], location["line"], location["col"])


def _vite_resolve(lines: list[str]) -> Iterator[Item]:
    for text in lines:
        match = _VITE_RESOLVE.search(text)
        if match:
            spec = match["spec"]
            category = _import_category(spec)
            what = "package" if category == "missing_dependency" else "module"
            message = f'cannot resolve import "{spec}": no such {what}'
            if category == "missing_dependency":
                message += " (add it to package.json dependencies, or do not import it)"
            yield _item(category, message, match["file"])


def _esbuild(lines: list[str]) -> Iterator[Item]:
    for text in lines:
        match = _ESBUILD.match(text.strip())
        if match:
            msg = match["msg"]
            resolve = re.search(r'Could not resolve "([^"]+)"', msg)
            category = _import_category(resolve.group(1)) if resolve else "syntax"
            yield _item(category, msg, match["file"], match["line"], match["col"])


def _node(lines: list[str]) -> Iterator[Item]:
    location: tuple[str, str] | None = None
    for index, text in enumerate(lines):
        stripped = text.strip()
        loc = _NODE_LOCATION.match(stripped)
        if loc:
            location = (loc["file"], loc["line"])
            continue
        module = _NODE_MODULE.search(stripped)
        if module:
            spec = module.group(1)
            file = None
            imported = _NODE_IMPORTED_FROM.search(stripped)
            if imported:
                file = imported.group(1)
            elif index + 2 < len(lines) and lines[index + 1].startswith("Require stack"):
                file = lines[index + 2].lstrip("- ").strip()
            yield _item(_import_category(spec), f"Cannot find module '{spec}'", file)
            continue
        error = _JS_ERROR.match(stripped)
        if error and location is not None:
            category = "syntax" if error["kind"] == "SyntaxError" else "other"
            yield _item(category, f"{error['kind']}: {error['msg']}", *location)
            location = None


def _npm(lines: list[str]) -> Iterator[Item]:
    codes = set()
    findings = list(install_findings(lines))
    for category, message in findings:
        yield _item(category, message, "package.json")
    for text in lines:
        stripped = text.strip()
        if match := _NPM_MISSING_SCRIPT.search(stripped):
            yield _item("config", f'package.json has no "{match.group(1)}" script', "package.json")
        elif match := _NPM_CODE.search(stripped):
            codes.add(match.group(1))
    if "ERESOLVE" in codes and not any("peer dependency" in m for _, m in findings):
        yield _item(
            "config", "npm found conflicting peer dependency ranges (ERESOLVE)", "package.json"
        )
    if "EJSONPARSE" in codes:
        yield _item("config", "package.json is not valid JSON", "package.json")


def _misc(lines: list[str]) -> Iterator[Item]:
    for index, text in enumerate(lines):
        if "JavaScript heap out of memory" in text:
            yield _item("out_of_memory", "JavaScript heap out of memory")
        elif match := _VITE_CONFIG.search(text):
            detail = next((t.strip() for t in lines[index + 1 : index + 4] if t.strip()), "")
            message = f"the Vite config failed to load: {detail}".rstrip(": ")
            yield _item("config", message, match.group(1))


PARSERS: tuple[Callable[[list[str]], Iterator[Item]], ...] = (
    _tsc,
    _boxed,
    _vite_resolve,
    _esbuild,
    _node,
    _npm,
    _misc,
)


def _missing_output(message: str) -> Item:
    """No publishable folder: a config item on the file the message says to change."""
    named = _CONFIG_FILE.search(message)
    return _item_whole("config", message, named.group(0) if named else "package.json")


def _fallback(code: str | None, message: str, lines: list[str]) -> Item:
    if code in ("timeout", "out_of_memory"):
        return _item(code, message)
    errorish = [
        t.strip()
        for t in lines
        if _ERRORISH.search(t) and not t.startswith("[kiln]") and not _NOISE.search(t.strip())
    ]
    return _item("other", errorish[-1] if errorish else message)


def fingerprint(code: str | None, items: list[Item]) -> str:
    """A short hash of what went wrong, ignoring line and column numbers."""
    keys = sorted({f"{i['category']}|{i['file']}|{i['message']}" for i in items})
    digest = hashlib.sha256("\n".join([code or "", *keys]).encode("utf-8"))
    return digest.hexdigest()[:16]


def diagnose(code: str | None, message: str, log: str) -> dict[str, Any]:
    """The structured report of a failed build from its error code, message and log."""
    # Also called on stored log tails (older records): clean them as the pipeline does.
    log = "\n".join(clean_line(line) for line in log.splitlines())
    lines = [line for line in log.splitlines() if not line.startswith("[kiln]")]
    items: list[Item] = []
    seen: set[tuple[Any, ...]] = set()
    for parse in PARSERS:
        for item in parse(lines):
            key = (item["category"], item["file"], item["line"], item["message"])
            if key not in seen:
                seen.add(key)
                items.append(item)
    if code in ("timeout", "out_of_memory") and not any(i["category"] == code for i in items):
        items.insert(0, _item(code, message))
    if MISSING_OUTPUT in message or "wrote no dist/" in message:  # the latter: older records
        items.insert(0, _missing_output(message))
    if not items:
        items.append(_fallback(code, message, log.splitlines()))
    return {
        "category": items[0]["category"],
        "fingerprint": fingerprint(code, items),
        "items": items[:MAX_ITEMS],
        "omitted": max(0, len(items) - MAX_ITEMS),
    }


def where(item: Item) -> str:
    """``file:line`` of an item (``file`` alone, or nothing, when that is all it has)."""
    return ":".join(str(part) for part in (item.get("file"), item.get("line")) if part)


def headline(message: str, report: dict[str, Any] | None) -> str:
    """A failed build's one-line message: the first diagnosis, the step's exit as detail.

    ``src/App.jsx:8: Unexpected closing "main" tag (the build failed with exit code 1)``
    says more than the exit code alone; when the diagnosis is the message itself (a
    timeout, a missing dist/) or only a guess (category ``other``), the message stays.
    """
    items = (report or {}).get("items") or []
    if not items or items[0]["category"] == "other":  # a guess is no headline
        return message
    if items[0]["message"] == message or message.startswith(items[0]["message"]):
        return message
    lead = f"{where(items[0])}: {items[0]['message']}" if where(items[0]) else items[0]["message"]
    return f"{lead} ({message})" if message else lead


def summary(report: dict[str, Any]) -> str:
    """The report as a few readable lines (for logs and prompts)."""
    lines = []
    for item in report.get("items", []):
        where = item["file"] or ""
        if where and item["line"]:
            where += f":{item['line']}" + (f":{item['column']}" if item["column"] else "")
        lines.append(f"- [{item['category']}] {where + ': ' if where else ''}{item['message']}")
    if report.get("omitted"):
        lines.append(f"- … and {report['omitted']} more")
    return "\n".join(lines)
