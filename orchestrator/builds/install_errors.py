"""Package managers' install failures (npm, pnpm, yarn, bun) as plain findings.

Pure: ``install_findings(lines)`` yields ``(category, message)`` for the problems a user
can fix in ``package.json``: a package that does not exist, one with no versions, a
version range nothing matches, an ``engines`` requirement the sandbox cannot meet, and a
peer-dependency conflict. The four tools word these differently; the findings say each
the same way, so the same mistake has the same fingerprint whichever tool reported it.
The formats come from real runs of npm 11, pnpm 9, yarn 1 and bun 1 (the unit tests'
fixtures in tests/unit/builds/logs/).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote

Finding = tuple[str, str]  # (category, message)

_PREFIX = re.compile(r"^(?:npm (?:error|ERR!)|error:?)\s*")
# A package that is not in the registry (E404)
_NOT_FOUND = (
    re.compile(r"404\s+'(?P<spec>[^']+)' is not in (?:this|the npm) registry"),
    re.compile(r"404\s+The requested resource '(?P<spec>[^']+)' could not be found"),
    re.compile(r"^(?P<spec>\S+) is not in the npm registry"),  # pnpm
    re.compile(r'Couldn\'t find package "(?P<spec>[^"]+)" on the "npm" registry'),  # yarn
    re.compile(r"GET https?://\S+?/(?P<spec>[^/\s]+(?:%2[fF][^/\s]+)?) - 404$"),  # bun
)
# A package without any published version (ENOVERSIONS)
_NO_VERSIONS = (
    re.compile(r"No versions available for (?P<name>[^\s.]+(?:\.[^\s.]+)*?)\.?(?: |$)"),
    re.compile(r'No valid versions found for "(?P<name>[^"]+)"'),  # yarn
)
# A range no version matches (ETARGET)
_NO_MATCH = (
    re.compile(r"No matching version found for (?P<name>@?[^@\s]+)@(?P<range>\S+?)\.?$"),
    re.compile(
        r'Couldn\'t find any versions for "(?P<name>[^"]+)" that matches "(?P<range>[^"]+)"'
    ),
    re.compile(  # bun (which also says this for a package with no versions at all)
        r'No version matching "(?P<range>[^"]+)" found for specifier "(?P<name>[^"]+)"'
    ),
)
# engines (EBADENGINE, ERR_PNPM_UNSUPPORTED_ENGINE, yarn's "incompatible module")
_NPM_ENGINE_PKG = re.compile(r"notsup Not compatible with your version of node/npm: (\S+)")
_NPM_ENGINE_WANT = re.compile(r'notsup Required: \{"node":"(?P<want>[^"]+)"')
_NPM_ENGINE_GOT = re.compile(r'notsup Actual: +\{"node":"(?P<got>[^"]+)"')
_PNPM_ENGINE_WANT = re.compile(r"^Expected version: (?P<want>\S+)")
_PNPM_ENGINE_GOT = re.compile(r"^Got: (?P<got>\S+)")
_YARN_ENGINE = re.compile(
    r'^(?P<pkg>\S+): The engine "node" is incompatible with this module\. '
    r'Expected version "(?P<want>[^"]+)"\. Got "(?P<got>[^"]+)"'
)
# peer conflicts (ERESOLVE, ERR_PNPM_PEER_DEP_ISSUES)
_NPM_FOUND = re.compile(r"^Found: (?P<found>\S+)$")
_NPM_PEER = re.compile(r'^peer (?P<peer>\S+@"[^"]+") from (?P<pkg>\S+)$')
_PNPM_PEER_PARENT = re.compile(r"─┬ (?P<pkg>\S+) (?P<version>\S+)$")
_PNPM_PEER = re.compile(r'✕ unmet peer (?P<peer>\S+@"[^"]+"): found (?P<found>\S+)')


def _name(spec: str) -> str:
    """``react@^1`` → ``react``, ``@scope/pkg@1`` → ``@scope/pkg`` (URL-decoded)."""
    spec = unquote(spec)
    at = spec.find("@", 1)
    return spec if at == -1 else spec[:at]


def _text(line: str) -> str:
    return _PREFIX.sub("", line.strip()).strip()


def _first_match(patterns: tuple[re.Pattern[str], ...], text: str) -> re.Match[str] | None:
    return next((m for p in patterns if (m := p.search(text))), None)


def _not_found(match: re.Match[str]) -> Finding:
    return (
        "missing_dependency",
        f"package {_name(match['spec'])} does not exist in the npm registry "
        "(a typo in package.json?)",
    )


def _no_versions(match: re.Match[str]) -> Finding:
    return (
        "missing_dependency",
        f"package {match['name']} has no published versions (a typo in package.json?)",
    )


def _no_match(match: re.Match[str]) -> Finding:
    return (
        "missing_dependency",
        f"no published version of {match['name']} matches {match['range']} (package.json)",
    )


def _yarn_engine(match: re.Match[str]) -> Finding:
    return _engine(match["pkg"], match["want"], match["got"])


# Problems one line states in full, tried in this order; the first that matches wins.
_ONE_LINE: tuple[tuple[tuple[re.Pattern[str], ...], Callable[[re.Match[str]], Finding]], ...] = (
    (_NOT_FOUND, _not_found),
    (_NO_VERSIONS, _no_versions),
    (_NO_MATCH, _no_match),
    ((_YARN_ENGINE,), _yarn_engine),
)


def _one_line_finding(text: str) -> Finding | None:
    """The finding ``text`` states by itself, or ``None``."""
    for patterns, finding in _ONE_LINE:
        if match := _first_match(patterns, text):
            return finding(match)
    return None


@dataclass
class _SpreadFindings:
    """Problems npm and pnpm state over several lines: what earlier lines said is kept
    until the line that completes the finding."""

    engine: dict[str, str] = field(default_factory=dict)  # npm/pnpm: pkg, want, got
    found: str | None = None  # npm: "Found: react@18.3.1" comes before its "peer" lines
    parent: str | None = None  # pnpm: the package whose unmet peers the "✕" lines list

    def read(self, text: str) -> Finding | None:
        """Take in one line; the finding it completes, or ``None``."""
        if match := _NPM_ENGINE_PKG.search(text):
            self.engine["pkg"] = match.group(1)
        elif match := _NPM_ENGINE_WANT.search(text) or _PNPM_ENGINE_WANT.search(text):
            self.engine["want"] = match["want"]
        elif match := _NPM_ENGINE_GOT.search(text) or _PNPM_ENGINE_GOT.search(text):
            return self._engine_got(match["got"])
        elif match := _NPM_FOUND.search(text):
            self.found = match["found"]
        elif match := _NPM_PEER.search(text):
            return _peer(match["pkg"], match["peer"], self.found)
        elif match := _PNPM_PEER_PARENT.search(text):
            self.parent = f"{match['pkg']}@{match['version']}"
        elif (match := _PNPM_PEER.search(text)) and self.parent:
            return _peer(self.parent, match["peer"], f"{_name(match['peer'])}@{match['found']}")
        return None

    def _engine_got(self, got: str) -> Finding | None:
        self.engine["got"] = got
        if "want" not in self.engine:
            return None
        engine, self.engine = self.engine, {}
        return _engine(engine.get("pkg", "the project"), engine["want"], engine["got"])


def install_findings(lines: list[str]) -> Iterator[Finding]:
    """What the package manager's output says is wrong with the dependencies."""
    spread = _SpreadFindings()
    for line in lines:
        text = _text(line)
        if finding := _one_line_finding(text) or spread.read(text):
            yield finding


def _engine(package: str, want: str, got: str) -> Finding:
    return (
        "config",
        f"{package} requires Node {want} (engines in package.json); the sandbox has {got}",
    )


def _peer(package: str, peer: str, found: str | None) -> Finding:
    have = f"; the project has {found}" if found else ""
    return (
        "config",
        f"peer dependency conflict: {package} needs {peer}{have} "
        "(align the versions in package.json)",
    )
