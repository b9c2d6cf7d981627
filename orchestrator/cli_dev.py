"""``kiln dev``: start a dev session, push or watch a folder, follow its events, stop it.

It only talks HTTP to the API (as the rest of the CLI does).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from httpx_sse import connect_sse

from orchestrator.cli_output import ExitCode
from orchestrator.client import ApiError, KilnClient, tar_project
from orchestrator.project.upload import SKIP_DIRS
from orchestrator.settings import get_settings

dev_app = typer.Typer(
    help="Dev sessions: a live Vite dev server with hot reload.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
ProjectOpt = Annotated[str, typer.Option("--project", "-p", help="The project (its slug).")]
FolderArg = Annotated[Path, typer.Argument(help="The project folder.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the JSON body instead.")]


def _client() -> KilnClient:
    return KilnClient(os.environ.get("KILN_URL") or get_settings().api_url, timeout=60)


def _answer(response: httpx.Response) -> Any:
    """The JSON body of a success; an error answer raises ApiError (``kiln``'s exit-code
    table in orchestrator/cli_output.py then applies)."""
    if response.is_success:
        return response.json() if response.content else {}
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "http_error", f"HTTP {response.status_code}: {response.text[:300]}"
    raise ApiError(response.status_code, code, message)


def local_files(root: Path) -> dict[str, bytes]:
    """The folder's files as a push sends them (no node_modules, .git, dist or links)."""
    files: dict[str, bytes] = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in names:
            path = Path(folder, name)
            if not path.is_symlink() and path.is_file():
                files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def changes(local: dict[str, bytes], remote: dict[str, str]) -> dict[str, Any]:
    """The PATCH file map that makes the session's files equal the folder's."""
    batch: dict[str, Any] = {
        path: {"base64": base64.b64encode(data).decode()}
        for path, data in local.items()
        if remote.get(path) != hashlib.sha256(data).hexdigest()
    }
    batch.update({path: None for path in remote if path not in local})
    return batch


def _push(client: KilnClient, project: str, root: Path) -> dict[str, Any] | None:
    remote = _answer(client.http.get(f"/api/v1/projects/{project}/dev/files"))["files"]
    batch = changes(local_files(root), remote)
    if not batch:
        return None
    return dict(
        _answer(client.http.patch(f"/api/v1/projects/{project}/dev/files", json={"files": batch}))
    )


@dev_app.command("start")
def start(
    project: ProjectOpt,
    directory: Annotated[Path | None, typer.Argument(help="Project folder.")] = None,
    *,
    from_build: Annotated[str | None, typer.Option("--from", help="A build's source.")] = None,
    template: Annotated[str | None, typer.Option(help="A bundled template.")] = None,
    node: Annotated[
        str | None, typer.Option(help="Node major (default: .nvmrc, engines, else 22).")
    ] = None,
    root: Annotated[
        str | None, typer.Option(help="The app's folder in the project (front, apps/web).")
    ] = None,
) -> None:
    """Start (or find) the project's session; prints its URL once it is ready."""
    client = _client()
    url = f"/api/v1/projects/{project}/dev"
    asked = {k: v for k, v in (("node", node), ("root", root)) if v}
    if directory is not None:
        response = client.http.post(
            url,
            content=tar_project(directory),
            headers={"Content-Type": "application/gzip"},
            params=asked or None,
        )
    else:
        body: dict[str, Any] = (
            {"from_build": from_build} if from_build else {"template": template or "react-ts"}
        )
        response = client.http.post(url, json=body | asked)
    session = _answer(response)
    for event, data in _events(client, project):
        if event == "log":
            typer.echo(data.get("text", ""), err=True)
        if event == "status" and data.get("status") in ("ready", "failed", "stopped"):
            session = _answer(client.http.get(url))
            break
    if session["status"] != "ready":
        typer.echo(
            f"session {session['status']}: {(session.get('error') or {}).get('message')}", err=True
        )
        raise typer.Exit(ExitCode.BUILD_FAILED)
    typer.echo(session["url"])


@dev_app.command("push")
def push(project: ProjectOpt, directory: FolderArg = Path(".")) -> None:
    """Send what changed in the folder since the session's files."""
    reply = _push(_client(), project, directory)
    typer.echo("nothing changed" if reply is None else f"revision {reply['revision']}")


@dev_app.command("watch")
def watch(project: ProjectOpt, directory: FolderArg = Path(".")) -> None:
    """Push each local save as it happens and print each hmr and error event."""
    from watchfiles import watch as watch_files

    client = _client()
    _push(client, project, directory)

    since = int(time.time() * 1000)

    def show() -> None:
        for event, data in _events(client, project, since_ms=since):
            line = describe(event, data)
            if line:
                typer.echo(line)

    threading.Thread(target=show, daemon=True).start()
    skip = tuple(f"/{d}/" for d in SKIP_DIRS)
    for _batch in watch_files(
        directory, watch_filter=lambda _c, p: not any(s in p + "/" for s in skip)
    ):
        reply = _push(client, project, directory)
        if reply is not None:
            typer.echo(
                f"pushed revision {reply['revision']}"
                + (" (restarting)" if reply.get("restart") else "")
            )


def describe(event: str, data: dict[str, Any]) -> str | None:
    """One line for an ``hmr``, ``error`` or ``status`` event (None for others)."""
    if event == "hmr":
        paths = " ".join(data.get("paths", []))
        return f"hmr r{data['revision']} {data['kind']} {data['latency_ms']} ms {paths}"
    if event == "error":
        where = ":".join(str(data[k]) for k in ("file", "line", "column") if k in data)
        first = (data.get("message") or "").strip().splitlines()
        return f"error r{data['revision']} {where} {first[0] if first else ''}".rstrip()
    if event == "status":
        return f"status {data['status']}"
    return None


@dev_app.command("ls")
def list_sessions(as_json: JsonOpt = False) -> None:
    """Every dev session: project, status, revision, URL."""
    body = _answer(_client().http.get("/api/v1/dev/sessions"))
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    for session in body["items"]:
        name, status, revision = session["project"], session["status"], session["revision"]
        typer.echo(f"{name:<24} {status:<11} r{revision:<5} {session['url']}")


@dev_app.command("status")
def status(project: ProjectOpt, as_json: JsonOpt = False) -> None:
    """The session's status, URL, revision and warnings."""
    session = _answer(_client().http.get(f"/api/v1/projects/{project}/dev"))
    if as_json:
        typer.echo(json.dumps(session, indent=2))
        return
    typer.echo(f"{session['project']}: {session['status']} r{session['revision']} {session['url']}")
    if session.get("vite_version"):
        typer.echo(f"vite {session['vite_version']}")
    for warning in session.get("warnings") or []:
        typer.echo(f"warning: {warning}")
    if session.get("error"):
        typer.echo(f"error: {session['error'].get('code')}: {session['error'].get('message')}")


@dev_app.command("logs")
def logs(
    project: ProjectOpt,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep following.")] = False,
) -> None:
    """The dev server's output (and Kiln's lines about the session)."""
    for event, data in _events(_client(), project, until_quiet=not follow):
        if event == "log":
            typer.echo(data.get("text", ""))


@dev_app.command("stop")
def stop(project: ProjectOpt) -> None:
    """Stop the session (its container is gone within 5 s)."""
    session = _answer(_client().http.delete(f"/api/v1/projects/{project}/dev"))
    typer.echo(f"{project}: {session['status']}")


def _events(
    client: KilnClient, project: str, *, since_ms: int = 0, until_quiet: bool = False
) -> Any:
    """(event, data) of the session's stream (from ``since_ms`` on, by event id); with
    ``until_quiet`` it stops once the history is read and nothing comes for 2 s."""
    timeout = httpx.Timeout(30, read=2.0 if until_quiet else None)
    url = f"/api/v1/projects/{project}/dev/events"
    with connect_sse(client.http, "GET", url, timeout=timeout) as source:
        try:
            for sse in source.iter_sse():
                if not sse.data or int((sse.id or "0-0").split("-")[0]) < since_ms:
                    continue
                yield sse.event, json.loads(sse.data)
                if sse.event == "end":
                    return
        except httpx.ReadTimeout:
            return
