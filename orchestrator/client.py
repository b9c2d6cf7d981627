"""A small HTTP client for Kiln's API, used by the CLI (and handy in scripts and tests)."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse

from orchestrator.errors import ErrorCode, KilnError
from orchestrator.project.upload import Selection, select_files


class ApiError(KilnError):
    """Raised when the API answers with an error body (or not at all).

    ``api_code`` is the code the server sent; ``code`` is that code as an ``ErrorCode``
    (``http_error`` for one this client does not know, e.g. from a newer server).
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        try:
            known = ErrorCode(code)
        except ValueError:
            known = ErrorCode.HTTP_ERROR
        super().__init__(message, code=known)
        self.http_status = status
        self.api_code = code


def tar_project(root: Path, selection: Selection | None = None) -> bytes:
    """A gzipped tarball of a project folder: the files ``select_files`` keeps."""
    selection = selection or select_files(root)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for relative in selection.files:
            archive.add(root / relative, arcname=relative, recursive=False)
    return buffer.getvalue()


class KilnClient:
    """Talks to one Kiln API."""

    def __init__(self, base_url: str, timeout: float = 30.0, token: str | None = None) -> None:
        token = os.environ.get("KILN_API_TOKEN") if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, headers=headers)

    def _json(self, response: httpx.Response) -> Any:
        if response.is_success:
            return response.json()
        try:
            error = response.json()["error"]
            raise ApiError(response.status_code, error["code"], error["message"])
        except (ValueError, KeyError, TypeError):
            raise ApiError(
                response.status_code, ErrorCode.HTTP_ERROR, response.text[:300]
            ) from None

    def submit_files(self, files: dict[str, str], **fields: Any) -> dict[str, Any]:
        """Submit a JSON file map (with optional template, project, limits)."""
        body = {"files": files, **{k: v for k, v in fields.items() if v is not None}}
        return self._json(self.http.post("/api/v1/builds", json=body))  # type: ignore[no-any-return]

    def submit_dir(
        self,
        folder: Path,
        selection: Selection | None = None,
        env: dict[str, str] | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """Submit a project folder as a tarball (``env``: build settings, sent as a header so
        that no value lands in a URL or an access log)."""
        query = {k: v for k, v in params.items() if v is not None}
        headers = {"Content-Type": "application/gzip"}
        if env:
            headers["Kiln-Env"] = json.dumps(env)  # ASCII: json escapes the rest
        response = self.http.post(
            "/api/v1/builds", content=tar_project(folder, selection), params=query, headers=headers
        )
        return self._json(response)  # type: ignore[no-any-return]

    def generate(self, prompt: str, **fields: Any) -> dict[str, Any]:
        """Ask for a generated build (template, base_build, project, limits are optional)."""
        body = {"prompt": prompt, **{k: v for k, v in fields.items() if v is not None}}
        return self._json(self.http.post("/api/v1/generate", json=body))  # type: ignore[no-any-return]

    def ops_view(self, name: str) -> dict[str, Any]:
        """An operator's read-only view (``queue``, ``workers``) as the API's Kiln sees it."""
        return self._json(self.http.get(f"/api/v1/ops/{name}", timeout=5))  # type: ignore[no-any-return]

    def templates(self) -> list[dict[str, Any]]:
        """The bundled templates (name, description)."""
        return self._json(self.http.get("/api/v1/templates"))["items"]  # type: ignore[no-any-return]

    def build(self, build_id: str) -> dict[str, Any]:
        """One build's record."""
        return self._json(self.http.get(f"/api/v1/builds/{build_id}"))  # type: ignore[no-any-return]

    def builds(self, **filters: Any) -> list[dict[str, Any]]:
        """Builds, newest first."""
        query = {k: v for k, v in filters.items() if v is not None}
        return self._json(self.http.get("/api/v1/builds", params=query))["items"]  # type: ignore[no-any-return]

    def cancel(self, build_id: str) -> dict[str, Any]:
        """Ask for a build to be cancelled."""
        return self._json(self.http.post(f"/api/v1/builds/{build_id}/cancel"))  # type: ignore[no-any-return]

    def retry(self, build_id: str) -> dict[str, Any]:
        """Start a new build of an ended build's source; returns the submit reply."""
        return self._json(self.http.post(f"/api/v1/builds/{build_id}/retry"))  # type: ignore[no-any-return]

    def logs(self, build_id: str) -> str:
        """The build's log so far, as plain text."""
        response = self.http.get(f"/api/v1/builds/{build_id}/logs")
        if not response.is_success:
            self._json(response)
        return response.text

    def log_events(self, build_id: str) -> list[dict[str, Any]]:
        """Every event of the build so far: ``{"id", "event", "data"}`` dicts, oldest first."""
        response = self.http.get(f"/api/v1/builds/{build_id}/logs", params={"format": "ndjson"})
        if not response.is_success:
            self._json(response)
        return [json.loads(line) for line in response.text.splitlines() if line]

    def _sse(
        self, path: str, last_event_id: str | None
    ) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """One connection to an SSE route: (id, event, data) until the server closes it."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        with connect_sse(
            self.http, "GET", path, headers=headers, timeout=httpx.Timeout(30.0, read=None)
        ) as source:
            if not source.response.is_success:
                source.response.read()
                self._json(source.response)
            for sse in source.iter_sse():
                if not sse.data:
                    continue  # a keep-alive comment (httpx-sse reports it as an empty event)
                yield sse.id, sse.event, json.loads(sse.data)

    def project_events(
        self, project: str, last_event_id: str | None = None, *, retry_s: float = 1.0
    ) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Follow a project's feed forever: (id, event, data). Like an EventSource, it
        reconnects with the last id after an ``error`` event or a dropped connection."""
        while True:
            try:
                for event_id, event, data in self._sse(
                    f"/api/v1/projects/{project}/events", last_event_id
                ):
                    yield event_id, event, data
                    if event == "error" and "last_id" in data:  # the server cut us; resume
                        last_event_id = data["last_id"] or last_event_id
                        break
                    last_event_id = event_id or last_event_id
            except httpx.TransportError:
                pass
            time.sleep(retry_s)

    def events(
        self, build_id: str, last_event_id: str | None = None
    ) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Follow a build's SSE stream: (id, event, data) until ``end``."""
        for item in self._sse(f"/api/v1/builds/{build_id}/events", last_event_id):
            yield item
            if item[1] == "end":
                return
