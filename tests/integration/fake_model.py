"""A scripted OpenAI-compatible model server for the code-generation tests.

A real HTTP server (``http.server`` in a thread) serving ``POST /v1/chat/completions``.
Each test scripts the replies in order (an answer, a 429, invalid JSON, ...); every
request is recorded with its arrival time so tests can check what Kiln sent and when.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted HTTP answer."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # a slow model


@dataclass
class Request:
    """One request the server received."""

    at: float
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def text(self) -> str:
        """All message contents, joined (what the model was shown)."""
        return "\n".join(m.get("content", "") for m in self.body.get("messages", []))


def completion(
    content: str, model: str = "fake-model", usage: tuple[int, int] = (1200, 340)
) -> Reply:
    """A chat.completion reply whose message content is ``content``."""
    return Reply(
        200,
        {
            "id": f"chatcmpl-{time.time_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": usage[0],
                "completion_tokens": usage[1],
                "total_tokens": sum(usage),
            },
        },
    )


def answer(files: dict[str, str], delete: list[str] | None = None, summary: str = "done") -> Reply:
    """A structured answer writing ``files`` and deleting ``delete``."""
    body = {
        "summary": summary,
        "files": [{"path": p, "content": c} for p, c in files.items()],
        "delete": delete or [],
    }
    return completion(json.dumps(body))


def rate_limited(retry_after: str = "1") -> Reply:
    """A 429 with a Retry-After header, as OpenAI sends it."""
    body = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit"}}
    return Reply(429, body, {"Retry-After": retry_after})


class FakeModel:
    """The server, its script and what it received."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake.lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    fake.requests.append(Request(time.monotonic(), headers, body))
                    reply = fake.replies.pop(0) if fake.replies else None
                if self.path.rstrip("/") != "/v1/chat/completions":
                    reply = Reply(404, {"error": {"message": f"no route {self.path}"}})
                if reply is None:
                    reply = Reply(
                        500, {"error": {"message": "the test script has no more replies"}}
                    )
                time.sleep(reply.delay_s)
                data = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeModel:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def script(self, *replies: Reply) -> None:
        """Replace the script and forget earlier requests (one test at a time)."""
        with self.lock:
            self.replies = list(replies)
            self.requests = []
