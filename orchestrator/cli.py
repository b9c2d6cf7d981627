"""The ``kiln`` command.

Client commands (submit, generate, status, logs, ls, cancel, retry, watch) talk to the API
over HTTP at ``KILN_URL``, so they work from anywhere. Operator commands run on a Kiln
host: ``queue`` and ``workers`` ask the API first and read the installation only when no
API answers; the others (doctor, drain, gc, image, cache, db, serve, worker) call the
library with the installation's settings (``KILN_HOME``, else the repository Kiln is
installed from), never the caller's folder. Exit codes: the table in ``cli_output.py``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from orchestrator.cli_dev import dev_app
from orchestrator.cli_output import (
    ExitCode,
    build_lines,
    diagnosis_line,
    exit_code_for,
    print_table,
    seconds,
)
from orchestrator.client import ApiError, KilnClient
from orchestrator.live.watch_view import FeedView
from orchestrator.project.templates import list_templates
from orchestrator.project.upload import Selection, folder_problem, select_files
from orchestrator.settings import get_settings

HELP = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(
    help="Kiln: build untrusted Vite projects in sandboxes and serve previews.",
    no_args_is_help=True,
    add_completion=False,
    context_settings=HELP,
)
image_app = typer.Typer(help="The sandbox image.", no_args_is_help=True, context_settings=HELP)
app.add_typer(image_app, name="image")
app.add_typer(dev_app, name="dev")
cache_app = typer.Typer(
    help="Build caches: dependency layers, npm cache.", no_args_is_help=True, context_settings=HELP
)
app.add_typer(cache_app, name="cache")
db_app = typer.Typer(
    help="The database schema (Alembic migrations).", no_args_is_help=True, context_settings=HELP
)
app.add_typer(db_app, name="db")
TEMPLATES = ", ".join(t["name"] for t in list_templates(get_settings().templates_dir))
TEMPLATE_HELP = f"Start from a bundled template: {TEMPLATES}."
BuildId = Annotated[str, typer.Argument(help="A build id (16 hex digits, as submit prints).")]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"kiln {version('kiln')}")
        raise typer.Exit()


@app.callback()
def _main(
    _show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Kiln: build untrusted Vite projects in sandboxes and serve previews."""


# soft_wrap: a long line (a URL, a message) is never broken by rich; the terminal wraps it.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]
FollowFlag = Annotated[
    bool,
    typer.Option(
        "--follow/--no-follow", help="Stream the log to the end, or print the id and return."
    ),
]


def _client() -> KilnClient:
    return KilnClient(os.environ.get("KILN_URL") or get_settings().api_url)


def _json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def _fail(message: str, code: int = ExitCode.BUILD_FAILED) -> None:
    err.print(f"[red]error:[/red] {escape(message)}")
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


def _waited(body: dict[str, Any]) -> str:
    """`` (waited 87.0 s in the queue)`` when the wait is worth a mention."""
    waited = (body.get("queued_ms") or 0) / 1000
    return f" (waited {waited:.1f} s in the queue)" if waited >= 0.5 else ""


def _say_queued(client: KilnClient, reply: dict[str, Any], what: str) -> None:
    """``build ID queued (project): number 3 in line`` right after a submit."""
    place = ""
    if reply.get("status") == "queued":
        position = (client.build(reply["id"]).get("queue") or {}).get("position")
        place = f": number {position} in line" if position else ""
    err.print(f"build [bold]{reply['id']}[/bold] {what} ({reply['project']}){place}")


def _report(end: dict[str, Any]) -> None:
    if end.get("status") == "succeeded":
        ran = seconds(end.get("duration_ms")) or "0.0"
        err.print(f"[green]succeeded[/green] in {ran} s{_waited(end)}")
        out.print(end["preview_url"], soft_wrap=True)
        return
    error = end.get("error") or {}
    for item in (error.get("diagnostics") or {}).get("items", []):
        err.print(f"  {diagnosis_line(item)}", markup=False)
    _fail(
        f"build {end.get('id')} {end.get('status')}: "
        f"{error.get('code', '?')}: {error.get('message', '')}"
    )


def _build_env(assignments: list[str], env_file: Path | None) -> dict[str, str]:
    """The build settings of ``--env-file`` then ``--env`` (later wins), checked."""
    from orchestrator.errors import InputError
    from orchestrator.project.build_env import check_env, parse_assignment, parse_env_file

    try:
        values: dict[str, str] = {}
        if env_file is not None:
            values |= parse_env_file(env_file.read_text(encoding="utf-8"))
        values |= dict(parse_assignment(a) for a in assignments)
        return check_env(values)
    except InputError as exc:
        _fail(exc.message, ExitCode.USAGE)
    except OSError as exc:
        _fail(f"cannot read --env-file {env_file}: {exc.strerror}", ExitCode.USAGE)
    return {}


def _template_hint(client: KilnClient, directory: Path) -> str:
    """What to do instead: start from a template (named, when the API lists them)."""
    try:
        names = ", ".join(t["name"] for t in client.templates())
    except (ApiError, httpx.HTTPError):
        names = ""
    listed = f" (templates: {names})" if names else ""
    return (
        f"to start from a template, run `kiln submit --template NAME`{listed}, or "
        f"`kiln submit {directory} --template NAME` to lay the folder's files over it"
    )


def _say_left_out(selection: Selection) -> None:
    """Tell the user which files stay home, so a missing file is never a surprise."""
    if not selection.left_out:
        return
    shown = sorted(selection.left_out.items())[:10]
    listed = ", ".join(f"{path} ({why})" for path, why in shown)
    more = len(selection.left_out) - len(shown)
    err.print(
        f"[dim]left out: {escape(listed)}{f', and {more} more' if more else ''}[/dim]",
        soft_wrap=True,
    )


@app.command()
def submit(
    directory: Annotated[
        Path | None,
        typer.Argument(help="Project folder to build (with --template: laid over it)."),
    ] = None,
    *,
    template: Annotated[str | None, typer.Option(help=TEMPLATE_HELP, metavar="NAME")] = None,
    project: Annotated[
        str | None, typer.Option(help="Project slug (default: from package.json's name).")
    ] = None,
    follow: FollowFlag = True,
    fresh: Annotated[
        bool, typer.Option(help="Build even if identical input has already built.")
    ] = False,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            metavar="KEY=VALUE",
            help="A build setting for the build step only (e.g. VITE_API_URL=...); repeatable.",
        ),
    ] = None,
    env_file: Annotated[
        Path | None,
        typer.Option(help="A dotenv file of build settings (KEY=value lines).", metavar="FILE"),
    ] = None,
    root: Annotated[
        str | None,
        typer.Option(
            help="The app's folder inside the project (e.g. front, apps/web in a workspace).",
            metavar="FOLDER",
        ),
    ] = None,
) -> None:
    """Submit a project folder (or a template) and follow its build to the preview URL."""
    if directory is None and template is None:
        _fail("give a project folder or --template NAME", ExitCode.USAGE)
    build_env = _build_env(env or [], env_file)
    client = _client()
    if directory is not None:
        problem = folder_problem(directory, with_template=template is not None, root=root)
        if problem:
            _fail(f"{problem}; {_template_hint(client, directory)}", ExitCode.USAGE)
        selection = select_files(directory)
        _say_left_out(selection)
        if template is not None:
            err.print(f"laying the files of {directory} over template {template}")
        reply = client.submit_dir(
            directory,
            selection,
            env=build_env,
            project=project,
            template=template,
            fresh="true" if fresh else None,
            root=root,
        )
    else:
        reply = client.submit_files(
            {},
            template=template,
            project=project,
            fresh=fresh or None,
            env=build_env or None,
            root=root,
        )
    if reply.get("reused_from"):
        err.print(f"build [bold]{reply['id']}[/bold] reused build {reply['reused_from']}")
    else:
        _say_queued(client, reply, "queued")
    if not follow:
        out.print(reply["id"])
        return
    _report(_follow(client, reply["id"]))


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="What to build, in words.")],
    template: Annotated[str | None, typer.Option(help=TEMPLATE_HELP, metavar="NAME")] = None,
    from_build: Annotated[
        str | None, typer.Option("--from", help="Edit the files of this earlier build.")
    ] = None,
    project: Annotated[str | None, typer.Option(help="Project slug.")] = None,
    follow: Annotated[
        bool,
        typer.Option("--follow/--no-follow", help="Stream progress, or print the id and return."),
    ] = True,
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
def status(build_id: BuildId, as_json: JsonFlag = False) -> None:
    """Show one build: what it is, how long it waited and ran, and why it failed."""
    build = _client().build(build_id)
    if as_json:
        _json(build)
        return
    for name, value in build_lines(build):
        out.print(f"{name:14} {value}", markup=False, highlight=False)


@app.command()
def logs(
    build_id: BuildId,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Follow until the end.")] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help='Every event, one JSON a line: {"id", "event", "data"}.'),
    ] = False,
) -> None:
    """Print a build's log (with -f, follow it live to the end)."""
    client = _client()
    if as_json:
        events = (
            ({"id": i, "event": e, "data": d} for i, e, d in client.events(build_id))
            if follow
            else iter(client.log_events(build_id))
        )
        for event in events:
            print(json.dumps(event), flush=True)
    elif follow:
        _report(_follow(client, build_id))
    else:
        sys.stdout.write(client.logs(build_id))


@app.command("ls")
def list_builds(
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    status: Annotated[
        str | None,
        typer.Option(help="Only this status: queued, running, succeeded, failed, cancelled."),
    ] = None,
    limit: Annotated[int, typer.Option(help="How many.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List builds, newest first."""
    builds = _client().builds(project=project, status=status, limit=limit)
    if as_json:
        _json(builds)
        return
    rows = [
        [
            b["id"],
            b["project"],
            b["status"],
            b["phase"],
            b["created_at"][5:19].replace("T", " "),  # MM-DD HH:MM:SS (UTC)
            seconds(b.get("queued_ms")),
            seconds(b.get("duration_ms")),
            (b.get("error") or {}).get("code", ""),
        ]
        for b in builds
    ]
    columns = ("id", "project", "status", "phase", "created", "queued s", "ran s", "error")
    print_table(out, columns, rows)


@app.command()
def watch(
    project: Annotated[str, typer.Argument(help="The project to follow (its slug).")],
    limit: Annotated[int, typer.Option(help="How many builds to show.")] = 15,
) -> None:
    """Follow a project live: a table of its builds and its dev session, until Ctrl-C."""
    client = _client()
    # Feed ids are times: start right before listing, so nothing falls between the two.
    since = f"{int(time.time() * 1000) - 1}-0"
    view = FeedView(project, limit=limit)
    for n, b in enumerate(reversed(client.builds(project=project, limit=limit))):
        view.apply(f"0-{n}", "build", {"id": b["id"], "status": b["status"], "phase": b["phase"]})
        if b["status"] in ("succeeded", "failed", "cancelled"):
            view.apply(f"0-{n}", "build_end", b)
    with Live(_watch_table(view), console=out, refresh_per_second=8) as live:
        try:
            for event_id, event, data in client.project_events(project, since):
                view.apply(event_id, event, data)
                live.update(_watch_table(view))
        except KeyboardInterrupt:
            pass


def _watch_table(view: FeedView) -> Table:
    table = Table(title=f"{view.project} — {view.dev}", caption=view.notice or None)
    table.add_column("build", no_wrap=True, min_width=16)
    for name in ("status", "phase", "seconds", "error", "preview"):
        table.add_column(name)
    colours = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "running": "cyan"}
    for row in view.rows():
        seconds = f"{row.duration_ms / 1000:.1f}" if row.duration_ms is not None else ""
        status = f"[{colours.get(row.status, 'white')}]{row.status}[/]"
        preview = row.preview_url if row.status == "succeeded" else ""
        table.add_row(row.id, status, row.phase, seconds, row.error or "", preview or "")
    return table


@app.command()
def cancel(build_id: BuildId) -> None:
    """Cancel a queued or running build."""
    build = _client().cancel(build_id)
    err.print(f"cancel requested; build {build_id} is {build['status']}")


@app.command()
def retry(
    build_id: BuildId,
    follow: FollowFlag = True,
) -> None:
    """Build an ended build's source again as a new build, and follow it like submit."""
    client = _client()
    reply = client.retry(build_id)
    _say_queued(client, reply, f"retrying {build_id}, queued")
    if not follow:
        out.print(reply["id"])
        return
    _report(_follow(client, reply["id"]))


def _installation() -> Any:
    """The installation's settings, after saying on stderr which installation they are."""
    from orchestrator.settings import installation_root

    s = get_settings()
    database = s.database_url.split("@")[-1] if s.database_url else s.db_url
    err.print(
        f"[dim]installation {installation_root()}: var {s.var_dir.resolve()}, "
        f"database {database}, Redis {s.redis_url}, queue {s.queue_name}[/dim]",
        soft_wrap=True,
    )
    return s


def _api_view(name: str) -> dict[str, Any] | None:
    """An operator view from the API at KILN_URL when it answers (None: read locally)."""
    client = _client()
    try:
        view = client.ops_view(name)
    except httpx.TransportError:
        return None  # no API here: the installation's own settings say where to look
    except ApiError as exc:
        if exc.http_status == 404:
            return None  # an older API without operator views
        raise
    where = view.pop("installation", {})
    err.print(
        f"[dim]installation behind the API at {client.http.base_url}: instance "
        f"{where.get('instance')}, queue {where.get('queue')}[/dim]",
        soft_wrap=True,
    )
    return view


def _ops_context() -> Any:
    from orchestrator.context import Context

    return Context(_installation())


@app.command()
def workers(as_json: JsonFlag = False) -> None:
    """The build workers registered on this Kiln's queue."""
    from orchestrator.ops import views as ops

    view = _api_view("workers")
    rows = view["items"] if view is not None else ops.workers(_ops_context())
    if as_json:
        _json(rows)
        return
    table = [
        [
            w["name"],
            str(w["state"]),
            w["build"] or "",
            w["last_heartbeat"] or "",
            str(w["succeeded_jobs"]),
            str(w["failed_jobs"]),
        ]
        for w in rows
    ]
    print_table(out, ("name", "state", "build", "last heartbeat", "ok", "failed"), table)
    err.print(f"{len(rows)} worker(s)")


@app.command("queue")
def queue_command(as_json: JsonFlag = False) -> None:
    """Running and queued builds (from the database) and the Redis queue's own counts."""
    from orchestrator.ops import views as ops

    summary = _api_view("queue") or ops.queue_summary(_ops_context())
    if as_json:
        _json(summary)
        return
    rows = [
        [
            b["id"],
            b["project"],
            b["status"],
            b["phase"],
            b["worker"] or "",
            str(b["attempts"]),
            f"{b['age_s']:.0f}",
        ]
        for b in summary["builds"]
    ]
    print_table(out, ("id", "project", "status", "phase", "worker", "attempts", "age s"), rows)
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
    workers: Annotated[
        int | None, typer.Option(help="Serving processes (default KILN_SERVE_WORKERS).")
    ] = None,
) -> None:
    """Run the API and preview server (uvicorn, one process per CPU up to 4 by default)."""
    import uvicorn

    from orchestrator.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_format)
    _require_current_database()
    uvicorn.run(
        "api.main:app",
        host=host or settings.host,
        port=port or settings.port,
        workers=serving_processes(settings.serve_workers if workers is None else workers),
        proxy_headers=False,
        log_level="info",
        log_config=None,  # uvicorn's loggers go through Kiln's structured handler
    )


def serving_processes(setting: int) -> int:
    """How many API processes to run: the setting, or for 0 one per CPU, at most 4."""
    if setting > 0:
        return setting
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))


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

    engine = make_engine(_installation().db_url)
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

    engine = make_engine(_installation().db_url)
    try:
        state = schema_state(engine)
    finally:
        engine.dispose()
    out.print(f"database {state.describe()}")
    if not state.up_to_date:
        _fail("run `kiln db upgrade`")


@app.command("dev-worker")
def dev_worker() -> None:
    """Run a dev-session worker on its own (``kiln worker`` starts one beside it)."""
    from orchestrator.dev.manager import run

    run()


@image_app.command("build")
def image_build(
    force: Annotated[bool, typer.Option(help="Rebuild even if current.")] = False,
) -> None:
    """Make the sandbox image (from a registry if reachable, else from Debian packages)."""
    from orchestrator.context import Context
    from orchestrator.sandbox.image import (
        ImageRecipe,
        PackageSources,
        SandboxImageError,
        ensure_image,
    )

    ctx = Context(_installation())
    s = ctx.settings
    try:
        image_id = ensure_image(
            ctx.docker,
            ImageRecipe(tag=s.sandbox_image, node_major=s.node_major),
            sources=PackageSources(
                registry_url=s.npm_registry.rstrip("/"),
                ca_bundle=str(s.ca_bundle) if s.ca_bundle else "",
            ),
            work_dir=s.var_dir.resolve() / "cache" / "image",
            force=force,
            log=lambda line: err.print(f"[dim]{line}[/dim]"),
        )
    except SandboxImageError as exc:
        _fail(str(exc))
        return
    err.print(f"sandbox image {s.sandbox_image} ready ({image_id[:19]})")


@cache_app.command("ls")
def cache_ls(as_json: JsonFlag = False) -> None:
    """List the dependency layers, least recently used first."""
    import time

    from orchestrator.cache.layers import layer_store

    entries = sorted(layer_store(_installation()).entries(), key=lambda e: e.last_used)
    if as_json:
        _json(
            [
                {
                    "key": e.key,
                    "size_bytes": e.size_bytes,
                    "files": e.files,
                    "last_used": e.last_used,
                    "created": e.created,
                }
                for e in entries
            ]
        )
        return
    rows = [
        [
            e.key,
            f"{e.size_bytes / 1e6:.0f}",
            str(e.files),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.last_used)),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.created)),
        ]
        for e in entries
    ]
    print_table(out, ("key", "MB", "files", "last used", "created"), rows)
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

    s = _installation()
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
    for name, outcome in warm_templates(_installation()).items():
        out.print(f"{name:12} {outcome}")


@app.command()
def doctor(as_json: JsonFlag = False) -> None:
    """A full diagnostic: engine, runtimes, image, Redis, database, disk, proxy, workers."""
    from orchestrator.ops.doctor import run_checks

    _installation()
    checks = []
    for name, passed, detail in run_checks():
        checks.append({"check": name, "ok": passed, "detail": detail})
        if not as_json:
            mark = "[green]ok[/green]  " if passed else "[red]FAIL[/red]"
            out.print(f"{mark} {name:14} {detail}")
    if as_json:
        _json(checks)
    ok = all(c["ok"] for c in checks)
    raise typer.Exit(ExitCode.OK if ok else ExitCode.BUILD_FAILED)


def main() -> None:
    """Entry point of the ``kiln`` script: API errors become one red line and an exit code
    from the table in orchestrator/cli_output.py (2 refused, 3 unreachable, 4 busy, ...)."""
    try:
        app()
    except ApiError as exc:
        err.print(f"[red]error:[/red] {exc.api_code}: {escape(exc.message)}")
        sys.exit(exit_code_for(exc.http_status))
    except httpx.TransportError as exc:
        err.print(
            f"[red]error:[/red] cannot reach the Kiln API at {_client().http.base_url}: {exc} "
            "(is it running? set KILN_URL to its address)"
        )
        sys.exit(ExitCode.UNREACHABLE)
