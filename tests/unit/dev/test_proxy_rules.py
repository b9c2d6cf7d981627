"""Unit tests for orchestrator.dev.proxy_rules: what the dev host lets through."""

from __future__ import annotations

import json

import pytest

from orchestrator.dev import proxy_rules as rules


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/src/App.tsx", True),
        ("/@fs/workspace/node_modules/react/index.js", True),
        ("/@fs/workspace", True),
        ("/@fs/etc/passwd", False),
        ("/@fs/workspace/../etc/passwd", False),
        ("/@fs/workspace/%2e%2e/etc/passwd", False),
        ("/@fs/workspace/%252e%252e/etc/shadow", False),
        ("/@fs/workspacex/secret", False),
        ("/@fs//proc/self/environ", False),
        ("/x/@fs/etc/passwd", False),
        ("/src/%00", False),
    ],
)
def test_fs_paths_outside_the_project_are_refused(path: str, allowed: bool) -> None:
    assert rules.fs_path_allowed(path) is allowed


def test_only_the_exact_origin_is_allowed() -> None:
    own = "http://dev--shop.preview.localhost:8000"
    assert rules.origin_allowed(own, own)
    assert rules.origin_allowed(own + "/", own)
    assert not rules.origin_allowed(None, own)
    assert not rules.origin_allowed("null", own)
    assert not rules.origin_allowed("http://dev--shop.preview.localhost:8001", own)
    assert not rules.origin_allowed("http://dev--shop.preview.localhost.evil.com:8000", own)
    assert not rules.origin_allowed("http://latest--shop.preview.localhost:8000", own)


def test_forwarded_headers_drop_hop_by_hop_and_fix_the_host() -> None:
    raw = [
        (b"host", b"evil.example"),
        (b"connection", b"keep-alive"),
        (b"accept-encoding", b"gzip"),
        (b"sec-websocket-key", b"x"),
        (b"accept", b"text/html"),
    ]
    assert rules.request_headers(raw, "dev--p.preview.localhost") == {
        "accept": "text/html",
        "host": "dev--p.preview.localhost",
    }


def test_the_hook_goes_right_after_head() -> None:
    page = b"<!doctype html><html><HEAD lang=en><title>x</title></head></html>"
    injected = rules.inject_hook(page)
    assert injected.startswith(b"<!doctype html><html><HEAD lang=en>" + rules.HOOK_TAG)
    assert rules.inject_hook(b"<p>no head</p>") == rules.HOOK_TAG + b"<p>no head</p>"


@pytest.mark.parametrize(
    ("message", "allowed"),
    [
        ({"type": "custom", "event": "vite:invoke", "data": {"name": "fetchModule"}}, False),
        ({"type": "custom", "event": "vite:client:connect"}, True),
        ({"type": "ping"}, True),
    ],
)
def test_vite_invoke_never_reaches_vite(message: dict[str, object], allowed: bool) -> None:
    assert rules.client_message_allowed(json.dumps(message)) is allowed


def test_non_json_messages_are_dropped() -> None:
    assert not rules.client_message_allowed("not json")
    assert not rules.client_message_allowed(b"\xff\xfe")
    assert not rules.client_message_allowed("[1, 2]")
