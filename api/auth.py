"""The bearer token (``KILN_API_TOKEN``) that the API and the dashboard's data need when set.

Open without it: previews (shared links), the dashboard's static files (they hold no
data), ``/healthz`` (load balancers) and the API docs. Browsers' EventSource and WebSocket
cannot send headers, so ``?access_token=`` is accepted too.
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

PROTECTED_PREFIXES = ("/api/", "/metrics")


def presented_token(scope: Scope) -> str | None:
    """The token a request carries: its bearer header, else ``access_token`` in the query."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return credentials.strip()
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return query.get("access_token", [None])[0]


def needs_token(path: str, host: str, preview_domain: str) -> bool:
    """True for the API's data routes on the API host (never for preview hosts)."""
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host
    if hostname.endswith("." + preview_domain):
        return False
    return path.startswith(PROTECTED_PREFIXES)


class TokenGate:
    """ASGI middleware: refuse protected requests without the right token (401)."""

    def __init__(self, app: ASGIApp, *, token: str, preview_domain: str) -> None:
        self.app, self.token, self.preview_domain = app, token.encode(), preview_domain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.token:
            await self.app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        if not needs_token(scope["path"], host, self.preview_domain):
            await self.app(scope, receive, send)
            return
        given = (presented_token(scope) or "").encode()
        if hmac.compare_digest(given, self.token):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401, "reason": "unauthorized"})
            return
        body = json.dumps(
            {
                "error": {
                    "code": "unauthorized",
                    "message": "this Kiln needs its API token: send Authorization: Bearer "
                    "<KILN_API_TOKEN>",
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b"Bearer"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
