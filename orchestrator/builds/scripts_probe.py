"""Skip a yarn project's dependency-scripts step when no installed package has a script (pure).

npm's lockfile says which packages have install scripts (``hasInstallScript``), so Kiln
plans no scripts step for npm when none has. yarn's lockfiles do not say, so a yarn build
always ran ``yarn rebuild`` (yarn 2+) or ``npm rebuild`` (yarn 1) offline: 1.3 s of a cold
yarn 4 template build, 0.86 s of it before yarn printed a line, for a tree with no script.

``when_scripted`` wraps that command: in the same offline container, a few lines of Node
first walk the installed ``node_modules`` and look for what the rebuild would run
(``preinstall``/``install``/``postinstall``, or a ``binding.gyp``, which gets
``node-gyp rebuild``). Only a certain "none" skips the rebuild; a link (a workspace, a
``link:`` or ``portal:`` dependency), an unreadable manifest, a workspace root or the
probe failing in any way runs it, as before. The probe runs in the sandbox, never on the
host, so what a hostile tree could do to it is at most make its own scripts not run.
"""

from __future__ import annotations

SKIPPED = "[kiln] no installed dependency has an install script: nothing to rebuild"

# Exits 0 (and says so) only when nothing would run; 1 or a crash otherwise. Dot entries
# (.bin, .cache, .yarn-state.yml) are the managers' own, as npm and yarn treat them.
PROBE_SCRIPT = f"""
const fs = require("fs"), path = require("path");
const HOOKS = ["preinstall", "install", "postinstall"];
const missing = (e) => e.code === "ENOENT" || e.code === "ENOTDIR";
function scripted(dir) {{
  let text;
  try {{ text = fs.readFileSync(path.join(dir, "package.json"), "utf8"); }}
  catch (e) {{ if (missing(e)) return false; throw e; }}
  const scripts = JSON.parse(text).scripts || {{}};
  return HOOKS.some((h) => scripts[h]) || fs.existsSync(path.join(dir, "binding.gyp"));
}}
function walk(folder) {{
  let entries;
  try {{ entries = fs.readdirSync(folder, {{ withFileTypes: true }}); }}
  catch (e) {{ if (missing(e)) return false; throw e; }}
  for (const entry of entries) {{
    if (entry.name.startsWith(".")) continue;
    const where = path.join(folder, entry.name);
    if (entry.isSymbolicLink()) return true;
    if (!entry.isDirectory()) continue;
    if (entry.name.startsWith("@")) {{ if (walk(where)) return true; continue; }}
    if (scripted(where) || walk(path.join(where, "node_modules"))) return true;
  }}
  return false;
}}
if (JSON.parse(fs.readFileSync("package.json", "utf8")).workspaces) process.exit(1);
if (walk("node_modules")) process.exit(1);
console.log({SKIPPED!r});
"""

# The probe comes in as $1, the rebuild as the rest: the log's "$ ..." line stays one line.
_WRAPPER = 'probe=$1; shift; node -e "$probe" || exec "$@"'


def when_scripted(argv: list[str]) -> list[str]:
    """``argv`` (a dependency rebuild) run only when an installed package has an install
    script, or when the probe cannot tell."""
    return ["sh", "-c", _WRAPPER, "kiln-scripts", " ".join(PROBE_SCRIPT.split()), *argv]
