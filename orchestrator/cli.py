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
) -> None:
    """Submit a project folder (or a template) and follow its build to the preview URL."""
    if directory is None and template is None:
        _fail("give a project folder or --template NAME", 2)
    client = _client()
    if directory is not None:
        if not (directory / "package.json").is_file():
            _fail(f"{directory} has no package.json", 2)
        reply = client.submit_dir(directory, project=project, template=template)
    else:
        reply = client.submit_files({}, template=template, project=project)
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
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Run the API and preview server (uvicorn)."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "api.main:app",
        host=host or settings.host,
        port=port or settings.port,
        proxy_headers=False,
        log_level="info",
    )


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Stop when the queue is empty.")] = False,
) -> None:
    """Run a build worker (an RQ worker on Kiln's queue)."""
    from orchestrator.worker import run_worker

    run_worker(burst=burst)


@image_app.command("build")
def image_build(
    force: Annotated[bool, typer.Option(help="Rebuild even if current.")] = False,
) -> None:
    """Make the sandbox image (from a registry if reachable, else from Debian packages)."""
    from orchestrator.context import Context
    from orchestrator.sandbox_image import SandboxImageError, ensure_image

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


@app.command()
def doctor() -> None:
    """Check Docker, Redis, the database and the sandbox image."""
    from orchestrator.doctor import run_checks

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
        err.print(f"[red]error:[/red] {exc.code}: {exc.message}")
        sys.exit(1)
    except httpx.TransportError as exc:
        err.print(
            f"[red]error:[/red] cannot reach the Kiln API at {_client().http.base_url}: {exc}"
        )
        sys.exit(1)
