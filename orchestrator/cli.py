"""The ``kiln`` command.

Client commands (submit, generate, status, logs, ls, cancel) talk to the API over HTTP at
``KILN_URL``, so they work from anywhere. Operator commands (serve, worker, image,
doctor) run on a Kiln host and call the library directly.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from orchestrator.client import ApiError, KilnClient
from orchestrator.settings import get_settings

app = typer.Typer(
    help="Kiln: build untrusted Vite projects in sandboxes and serve previews.",
    no_args_is_help=True,
    add_completion=False,
)
image_app = typer.Typer(help="The sandbox image.", no_args_is_help=True)
app.add_typer(image_app, name="image")
cache_app = typer.Typer(help="Build caches: dependency layers, npm cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
db_app = typer.Typer(help="The database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")
out = Console()
err = Console(stderr=True)


def _client() -> KilnClient:
    return KilnClient(os.environ.get("KILN_URL") or get_settings().api_url)


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def _follow(client: KilnClient, build_id: str) -> dict[str, Any]:
    """Print a build's events as they come; return the end body."""
    end: dict[str, Any] = {}
    for _id, event, data in client.events(build_id):
        if event == "log":
            # Progress goes to stderr; stdout carries only the result (the preview URL).
            print(data.get("text", ""), file=sys.stderr, flush=True)
        elif event == "status":
            err.print(f"[dim]── {data.get('status')}: {data.get('phase')}[/dim]")
        elif event == "end":
            end = data
    return end


def _report(end: dict[str, Any]) -> None:
    if end.get("status") == "succeeded":
        seconds = (end.get("duration_ms") or 0) / 1000
        err.print(f"[green]succeeded[/green] in {seconds:.1f} s")
        out.print(end["preview_url"], soft_wrap=True)
        return
    error = end.get("error") or {}
    for item in (error.get("diagnostics") or {}).get("items", []):
        where = ":".join(str(p) for p in (item.get("file"), item.get("line")) if p)
        err.print(f"  [{item.get('category')}] {where} {item.get('message')}")
    _fail(
        f"build {end.get('id')} {end.get('status')}: "
        f"{error.get('code', '?')}: {error.get('message', '')}"
    )


@app.command()
def submit(
    directory: Annotated[Path | None, typer.Argument(help="Project folder to build.")] = None,
    template: Annotated[str | None, typer.Option(help="Start from a bundled template.")] = None,
    project: Annotated[str | None, typer.Option(help="Project slug.")] = None,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Stream logs.")] = True,
    fresh: Annotated[
        bool, typer.Option(help="Build even if identical input has already built.")
    ] = False,
) -> None:
    """Submit a project folder (or a template) and follow its build to the preview URL."""
    if directory is None and template is None:
        _fail("give a project folder or --template NAME", 2)
    client = _client()
    if directory is not None:
        if not (directory / "package.json").is_file():
            _fail(f"{directory} has no package.json", 2)
        reply = client.submit_dir(
            directory, project=project, template=template, fresh="true" if fresh else None
        )
    else:
        reply = client.submit_files({}, template=template, project=project, fresh=fresh or None)
    if reply.get("reused_from"):
        err.print(f"build [bold]{reply['id']}[/bold] reused build {reply['reused_from']}")
    else:
        err.print(f"build [bold]{reply['id']}[/bold] queued ({reply['project']})")
    if not follow:
        out.print(reply["id"])
        return
    _report(_follow(client, reply["id"]))


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="What to build, in words.")],
    template: Annotated[str | None, typer.Option(help="Start from a bundled template.")] = None,
    from_build: Annotated[
        str | None, typer.Option("--from", help="Edit the files of this earlier build.")
    ] = None,
    project: Annotated[str | None, typer.Option(help="Project slug.")] = None,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Stream progress.")] = True,
) -> None:
    """Have the model write (or edit) a project, then follow its build and fixes to the preview."""
    client = _client()
    reply = client.generate(prompt, template=template, base_build=from_build, project=project)
    err.print(f"build [bold]{reply['id']}[/bold] queued for generation ({reply['project']})")
    if not follow:
        out.print(reply["id"])
        return
    end = _follow(client, reply["id"])
    generation = end.get("generation") or {}
    usage = generation.get("usage") or {}
    if generation:
        err.print(
            f"[dim]{generation.get('model')}: {generation.get('model_calls')} calls, "
            f"{generation.get('fix_rounds')} fix rounds, {usage.get('total_tokens')} tokens[/dim]"
        )
    _report(end)


@app.command()
def status(build_id: str) -> None:
    """Show one build."""
    build = _client().build(build_id)
    for key in ("id", "project", "status", "phase", "created_at", "duration_ms", "preview_url"):
        out.print(f"{key:12} {build.get(key)}")
    if build.get("error"):
        out.print(f"{'error':12} {build['error']['code']}: {build['error']['message']}")


@app.command()
def logs(
    build_id: str,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Follow until the end.")] = False,
) -> None:
    """Print a build's log (with -f, follow it live to the end)."""
    client = _client()
    if follow:
        _report(_follow(client, build_id))
    else:
        sys.stdout.write(client.logs(build_id))


@app.command("ls")
def list_builds(
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(help="How many.")] = 20,
) -> None:
    """List builds, newest first."""
    builds = _client().builds(project=project, status=status, limit=limit)
    table = Table()
    table.add_column("id", no_wrap=True, min_width=16)
    for name in ("project", "status", "phase", "created", "seconds", "error"):
        table.add_column(name)
    for b in builds:
        seconds = f"{b['duration_ms'] / 1000:.1f}" if b.get("duration_ms") is not None else ""
        code = (b.get("error") or {}).get("code", "")
        created = b["created_at"][:19].replace("T", " ")
        table.add_row(b["id"], b["project"], b["status"], b["phase"], created, seconds, code)
    out.print(table)


@app.command()
def cancel(build_id: str) -> None:
    """Cancel a queued or running build."""
    build = _client().cancel(build_id)
    err.print(f"cancel requested; build {build_id} is {build['status']}")


@app.command()
def retry(build_id: str) -> None:
    """Build an ended build's source again, as a new build; prints the new id."""
    reply = _client().retry(build_id)
    err.print(f"build [bold]{reply['id']}[/bold] queued ({reply['project']}), retrying {build_id}")
    out.print(reply["id"])


def _ops_context() -> Any:
    from orchestrator.context import Context

    return Context(get_settings())


@app.command()
def workers() -> None:
    """The build workers registered on this Kiln's queue."""
    from orchestrator.ops import views as ops

    rows = ops.workers(_ops_context())
    table = Table()
    for name in ("name", "state", "build", "last heartbeat", "ok", "failed"):
        table.add_column(name, no_wrap=name == "name")
    for w in rows:
        table.add_row(
            w["name"],
            str(w["state"]),
            w["build"] or "",
            w["last_heartbeat"] or "",
            str(w["succeeded_jobs"]),
            str(w["failed_jobs"]),
        )
    out.print(table)
    err.print(f"{len(rows)} worker(s)")


@app.command("queue")
def queue_command() -> None:
    """Running and queued builds (from the database) and the Redis queue's own counts."""
    from orchestrator.ops import views as ops

    summary = ops.queue_summary(_ops_context())
    table = Table()
    for name in ("id", "project", "status", "phase", "worker", "attempts", "age s"):
        table.add_column(name, no_wrap=name == "id")
    for b in summary["builds"]:
        table.add_row(
            b["id"],
            b["project"],
            b["status"],
            b["phase"],
            b["worker"] or "",
            str(b["attempts"]),
            f"{b['age_s']:.0f}",
        )
    out.print(table)
    err.print(
        f"running {summary['running']}, queued {summary['queued']} "
        f"(oldest waits {summary['oldest_wait_s']:.0f} s); Redis: queue "
        f"{summary['redis_queue_length']}, started {summary['redis_started']}, failed "
        f"{summary['redis_failed']}" + ("; DRAINING" if summary["draining"] else "")
    )


@app.command()
def drain(
    undo: Annotated[bool, typer.Option("--undo", help="Take builds again.")] = False,
    wait: Annotated[bool, typer.Option(help="Wait until no build runs.")] = False,
) -> None:
    """Stop workers taking new builds; running builds finish (--undo resumes)."""
    import time

    from orchestrator.ops import views as ops

    ctx = _ops_context()
    if undo:
        ops.undrain(ctx)
        err.print("workers take builds again")
        return
    ops.drain(ctx)
    err.print("draining: workers take no new builds; queued builds wait")
    while wait and (running := ops.running_count(ctx)):
        err.print(f"[dim]{running} build(s) still running[/dim]")
        time.sleep(2)
    if wait:
        err.print("drained: no build runs")


@app.command()
def gc(
    keep: Annotated[int | None, typer.Option(help="Newest ended builds kept per project.")] = None,
    keep_days: Annotated[
        float | None, typer.Option(help="Builds younger than this many days are kept.")
    ] = None,
    caches: Annotated[
        bool, typer.Option(help="Also empty the npm cache and unused dependency layers.")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Only say what would go.")] = False,
) -> None:
    """Remove old builds' artifacts, logs and sources, orphan containers and networks."""
    from orchestrator.ops import views as ops

    report = ops.gc(_ops_context(), keep=keep, keep_days=keep_days, dry_run=dry_run, caches=caches)
    verb = "would remove" if dry_run else "removed"
    err.print(
        f"{verb} {len(report.builds)} build(s) ({report.bytes_freed / 1e6:.1f} MB), "
        f"{len(report.containers)} container(s), {len(report.networks)} network(s)"
        + (f", caches {report.cache_bytes_freed / 1e6:.1f} MB" if caches else "")
    )
    for build_id in report.builds:
        out.print(build_id)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Run the API and preview server (uvicorn)."""
    import uvicorn

    from orchestrator.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_format)
    _require_current_database()
    uvicorn.run(
        "api.main:app",
        host=host or settings.host,
        port=port or settings.port,
        proxy_headers=False,
        log_level="info",
        log_config=None,  # uvicorn's loggers go through Kiln's structured handler
    )


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Stop when the queue is empty.")] = False,
) -> None:
    """Run a build worker (an RQ worker on Kiln's queue)."""
    from orchestrator.errors import DatabaseBehind
    from orchestrator.ops.worker import run_worker

    try:
        run_worker(burst=burst)  # checks the database before anything else
    except DatabaseBehind as exc:
        _fail(exc.message)


def _require_current_database() -> None:
    from orchestrator.errors import DatabaseBehind
    from orchestrator.records.db import require_current

    try:
        require_current()
    except DatabaseBehind as exc:
        _fail(exc.message)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database to the newest schema revision (does nothing when it is there)."""
    from orchestrator.records.db import make_engine, upgrade

    engine = make_engine(get_settings().db_url)
    try:
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    if before.up_to_date:
        out.print(f"database already {after.describe()}")
    else:
        out.print(f"database upgraded: it was {before.describe()}; now {after.describe()}")


@db_app.command("current")
def db_current() -> None:
    """Where the database's schema is; exits 1 when it is behind this Kiln."""
    from orchestrator.records.db import make_engine, schema_state

    engine = make_engine(get_settings().db_url)
    try:
        state = schema_state(engine)
    finally:
        engine.dispose()
    out.print(f"database {state.describe()}")
    if not state.up_to_date:
        _fail("run `kiln db upgrade`")


@image_app.command("build")
def image_build(
    force: Annotated[bool, typer.Option(help="Rebuild even if current.")] = False,
) -> None:
    """Make the sandbox image (from a registry if reachable, else from Debian packages)."""
    from orchestrator.context import Context
    from orchestrator.sandbox.image import SandboxImageError, ensure_image

    ctx = Context(get_settings())
    s = ctx.settings
    try:
        image_id = ensure_image(
            ctx.docker,
            s.sandbox_image,
            s.node_major,
            registry_url=s.npm_registry.rstrip("/"),
            ca_bundle=str(s.ca_bundle) if s.ca_bundle else "",
            work_dir=s.var_dir.resolve() / "cache" / "image",
            force=force,
            log=lambda line: err.print(f"[dim]{line}[/dim]"),
        )
    except SandboxImageError as exc:
        _fail(str(exc))
        return
    err.print(f"sandbox image {s.sandbox_image} ready ({image_id[:19]})")


@cache_app.command("ls")
def cache_ls() -> None:
    """List the dependency layers, least recently used first."""
    import time

    from orchestrator.cache.layers import layer_store

    entries = layer_store(get_settings()).entries()
    table = Table()
    for name in ("key", "MB", "files", "last used", "created"):
        table.add_column(name)
    for e in sorted(entries, key=lambda e: e.last_used):
        table.add_row(
            e.key,
            f"{e.size_bytes / 1e6:.0f}",
            str(e.files),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.last_used)),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.created)),
        )
    out.print(table)
    err.print(f"{len(entries)} layers, {sum(e.size_bytes for e in entries) / 1e6:.0f} MB")


@cache_app.command("gc")
def cache_gc(
    layers_mb: Annotated[
        int | None, typer.Option(help="Layer budget in MB (default: the setting).")
    ] = None,
    npm_mb: Annotated[
        int | None, typer.Option(help="npm cache budget in MB (default: the setting).")
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Empty the caches (what no build is using).")
    ] = False,
) -> None:
    """Evict least recently used layers and old npm cache content down to the budgets."""
    from orchestrator.cache.gc import collect

    s = get_settings()
    report = collect(
        s,
        layer_budget_mb=0 if all_ else (s.layer_cache_max_mb if layers_mb is None else layers_mb),
        npm_budget_mb=0 if all_ else (s.npm_cache_max_mb if npm_mb is None else npm_mb),
    )
    out.print(
        f"layers: removed {len(report.layers_removed)} "
        f"({report.layer_bytes_freed / 1e6:.0f} MB), in use {len(report.layers_busy)}, "
        f"left {report.layer_bytes_left / 1e6:.0f} MB"
    )
    busy = " (in use by an install: skipped)" if report.npm_busy else ""
    out.print(
        f"npm cache: freed {report.npm_bytes_freed / 1e6:.0f} MB, "
        f"left {report.npm_bytes_left / 1e6:.0f} MB{busy}"
    )
    out.print(
        f"resolutions expired: {report.resolutions_removed}; "
        f"leftover folders: {report.leftovers_removed}"
    )


@cache_app.command("warm")
def cache_warm() -> None:
    """Make the bundled templates' dependency layers now (a starting worker does this too)."""
    import logging

    from orchestrator.builds.warm import warm_templates

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name, outcome in warm_templates(get_settings()).items():
        out.print(f"{name:12} {outcome}")


@app.command()
def doctor() -> None:
    """A full diagnostic: engine, runtimes, image, Redis, database, disk, proxy, workers."""
    from orchestrator.ops.doctor import run_checks

    ok = True
    for name, passed, detail in run_checks():
        mark = "[green]ok[/green]  " if passed else "[red]FAIL[/red]"
        out.print(f"{mark} {name:14} {detail}")
        ok = ok and passed
    raise typer.Exit(0 if ok else 1)


def main() -> None:
    """Entry point of the ``kiln`` script; API errors become one red line and exit 1."""
    try:
        app()
    except ApiError as exc:
        err.print(f"[red]error:[/red] {exc.api_code}: {exc.message}")
        sys.exit(1)
    except httpx.TransportError as exc:
        err.print(
            f"[red]error:[/red] cannot reach the Kiln API at {_client().http.base_url}: {exc}"
        )
        sys.exit(1)
