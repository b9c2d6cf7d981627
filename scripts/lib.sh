# Shared steps of scripts/up and scripts/test. Each step installs or starts what is
# missing and does nothing when it is already there, so both scripts are idempotent.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="$ROOT/var"
VENV="$ROOT/.venv"
mkdir -p "$VAR/log" "$VAR/run"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || die "apt-get not found; install $* yourself"
  if [ "$APT_UPDATED" = 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  say "installing $* (Debian packages)"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >"$VAR/log/apt.log" 2>&1 \
    || { tail -20 "$VAR/log/apt.log" >&2; die "apt-get install $* failed"; }
}

ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v python3 >/dev/null || missing+=(python3 python3-venv)
  # PostgreSQL: the database-layer tests start a private cluster of their own.
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  for _ in $(seq 1 $((seconds * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  die "$what did not come up within ${seconds}s"
}

ensure_docker() {
  if docker info >/dev/null 2>&1; then return; fi
  say "starting the Docker engine (log: var/log/dockerd.log)"
  as_root sh -c "nohup dockerd >'$VAR/log/dockerd.log' 2>&1 &"
  wait_for 60 "the Docker engine" docker info
}

has_runsc_runtime() {
  docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc-dev"'
}

ensure_gvisor() {  # optional stronger isolation: gVisor's runsc, registered with Docker
  command -v runsc >/dev/null || apt_install runsc
  if has_runsc_runtime; then return; fi
  say "registering gVisor (runsc, runsc-dev) as Docker runtimes (/etc/docker/daemon.json)"
  as_root python3 - <<'PY'
import json, pathlib
path = pathlib.Path("/etc/docker/daemon.json")
config = json.loads(path.read_text()) if path.exists() and path.read_text().strip() else {}
# runsc here supports only --network=none (see ENVIRONMENT.md); Kiln uses it for such steps.
args = ["--platform=ptrace", "--network=none"]
config.setdefault("runtimes", {})["runsc"] = {"path": "/usr/bin/runsc", "runtimeArgs": args}
# Dev sessions listen on unix sockets the host connects to: gVisor must let them be made.
config["runtimes"]["runsc-dev"] = {
    "path": "/usr/bin/runsc", "runtimeArgs": [*args, "--host-uds=create"]}
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(json.dumps(config, indent=2) + "\n")
PY
  as_root pkill -HUP -x dockerd
  wait_for 30 "the runsc runtime" has_runsc_runtime
}

ensure_redis() {
  local url="${KILN_REDIS_URL:-redis://127.0.0.1:6379/0}"
  if redis-cli -u "$url" ping >/dev/null 2>&1; then return; fi
  say "starting Redis on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no \
    --logfile "$VAR/log/redis.log" --pidfile "$VAR/run/redis.pid"
  wait_for 20 "Redis" redis-cli -u "$url" ping
}

ensure_venv() {
  local stamp="$VENV/.kiln-installed" want
  want="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  say "installing Kiln and its Python packages into .venv"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
  "$VENV/bin/pip" install -q -e "$ROOT[dev]" >"$VAR/log/pip.log" 2>&1 \
    || { tail -20 "$VAR/log/pip.log" >&2; die "pip install failed (log: var/log/pip.log)"; }
  "$VENV/bin/python" -c "import orchestrator.cli, api.main" || die "Python install failed"
  echo "$want" >"$stamp"
}

ensure_image() {
  "$VENV/bin/kiln" image build
}

ensure_database() {  # the configured database at the newest schema revision (Alembic)
  "$VENV/bin/kiln" db upgrade
}

ensure_dashboard() {  # the dashboard (dashboard/, a Vite app) built with the host's Node
  local dir="$ROOT/dashboard" stamp want
  stamp="$dir/dist/.kiln-built"
  command -v npm >/dev/null || apt_install nodejs npm
  want="$(cd "$dir" && cat package.json package-lock.json index.html vite.config.ts tsconfig.json \
    $(find src -type f | sort) | sha256sum | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  say "building the dashboard (log: var/log/dashboard.log)"
  ( cd "$dir" && npm ci --no-audit --no-fund && npm run build ) >"$VAR/log/dashboard.log" 2>&1 \
    || { tail -20 "$VAR/log/dashboard.log" >&2; die "the dashboard build failed (log: var/log/dashboard.log)"; }
  echo "$want" >"$stamp"
}

ensure_all() {
  ensure_packages
  ensure_venv
  ensure_database
  ensure_docker
  ensure_redis
  ensure_image
  ensure_dashboard
}
