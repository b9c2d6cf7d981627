"""The WebSocket's messages, pure: what a client may send, what the server answers.

Client → server: ``{"subscribe": {"build": ID | "project": P, "after": EVENT_ID?}}``,
``{"unsubscribe": {"build": ID} | {"project": P}}``, ``{"ping": ANY}``.
Server → client: ``{"channel", "id", "event", "data"}`` (the SSE events, same ids),
``{"error": {"code", "message"}, "channel"?}`` and ``{"pong": ANY}`` / ``{"ping": ms}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from orchestrator.errors import InputError
from orchestrator.live.events import Event
from orchestrator.live.feed import check_project
from orchestrator.live.logbus import check_event_id

MAX_MESSAGE_CHARS = 4096
BUILD_ID = re.compile(r"[0-9a-f]{1,64}")


@dataclass(frozen=True)
class Request:
    """One parsed client message."""

    action: str  # subscribe | unsubscribe | ping
    kind: str = ""  # build | project
    target: str = ""
    after: str | None = None
    ping: Any = None

    @property
    def channel(self) -> str:
        """The channel name frames carry: ``build:ID`` or ``project:P``."""
        return f"{self.kind}:{self.target}"


def parse_request(text: str) -> Request:
    """Parse a client message; InputError says what is wrong with it."""
    action, body = _action_and_body(text)
    if action == "ping":
        return Request("ping", ping=body)
    if action not in ("subscribe", "unsubscribe"):
        raise InputError(f"unknown message {action[:40]!r}")
    if not isinstance(body, dict):
        raise InputError(f"{action} takes an object")
    kind, target = _channel_of(action, body)
    return Request(action, kind, target, _after(body))


def _action_and_body(text: str) -> tuple[str, Any]:
    """The one ``{action: body}`` pair a message must be."""
    if len(text) > MAX_MESSAGE_CHARS:
        raise InputError(f"message longer than {MAX_MESSAGE_CHARS} characters")
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        raise InputError("message is not JSON") from None
    if not isinstance(message, dict) or len(message) != 1:
        raise InputError('send one of {"subscribe": ...}, {"unsubscribe": ...}, {"ping": ...}')
    return next(iter(message.items()))


def _check_build_id(build_id: str) -> None:
    if not BUILD_ID.fullmatch(build_id):
        raise InputError(f"invalid build id {build_id[:70]!r}")


# What a (un)subscribe may name, and how its value is checked.
_CHANNEL_KINDS: dict[str, Callable[[str], object]] = {
    "build": _check_build_id,
    "project": check_project,
}


def _channel_of(action: str, body: dict[str, Any]) -> tuple[str, str]:
    """The ``(kind, target)`` a (un)subscribe names: exactly one build or project."""
    kinds = [k for k in _CHANNEL_KINDS if k in body]
    if len(kinds) != 1 or set(body) - {*_CHANNEL_KINDS, "after"}:
        raise InputError(f'{action} takes {{"build": ID}} or {{"project": P}}, and "after"')
    kind = kinds[0]
    target = body[kind]
    if not isinstance(target, str):
        raise InputError(f"{kind} must be a string")
    _CHANNEL_KINDS[kind](target)
    return kind, target


def _after(body: dict[str, Any]) -> str | None:
    """The checked event id a subscription resumes after, if any."""
    after = body.get("after")
    if after is not None and not isinstance(after, str):
        raise InputError("after must be an event id string")
    return check_event_id(after)


def event_frame(channel: str, event: Event) -> str:
    """An event as a WebSocket frame (an error before any event has a null id); the data's
    JSON is the event's, encoded once for every follower."""
    head = json.dumps({"channel": channel, "id": event.id or None, "event": event.event})
    return f'{head[:-1]}, "data": {event.data_json}}}'


def error_frame(code: str, message: str, channel: str | None = None) -> dict[str, Any]:
    """A bad request's answer; the socket stays open."""
    frame: dict[str, Any] = {"error": {"code": code, "message": message}}
    if channel is not None:
        frame["channel"] = channel
    return frame


def origin_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """May a WebSocket from ``origin`` connect? Non-browser clients send no Origin; a page on
    the API's own host may; any other origin only when listed exactly."""
    if origin is None:
        return True
    origin = origin.rstrip("/")
    if origin in allowed:
        return True
    return host is not None and urlsplit(origin).netloc.lower() == host.lower()
