"""What ``kiln watch`` shows, pure: a project's builds and dev session, folded from its feed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class BuildRow:
    """One build as the feed last described it."""

    id: str
    status: str
    phase: str
    at: str  # the id of the last event about it (stream ids are time-ordered)
    duration_ms: int | None = None
    error: str | None = None
    preview_url: str | None = None


@dataclass
class FeedView:
    """The newest builds of a project and the dev session's last word."""

    project: str
    limit: int = 15
    builds: dict[str, BuildRow] = field(default_factory=dict)
    dev: str = "no dev session"
    notice: str = ""

    def apply(self, event_id: str, event: str, data: dict[str, Any]) -> None:
        """Fold one feed event into the view."""
        if event == "build":
            row = self.builds.get(data["id"])
            if row is None:
                row = self.builds[data["id"]] = BuildRow(data["id"], "", "", event_id)
            row.status, row.phase, row.at = data["status"], data["phase"], event_id
        elif event == "build_end":
            row = self.builds.setdefault(
                data["id"], BuildRow(data["id"], data.get("status", ""), "done", event_id)
            )
            row.status = data.get("status", row.status)
            row.duration_ms = data.get("duration_ms")
            row.preview_url = data.get("preview_url")
            error = data.get("error") or {}
            row.error = error.get("code")
            row.at = event_id
        elif event == "status":
            self.dev = f"dev session {data.get('status')} (revision {data.get('revision', 0)})"
        elif event == "hmr":
            self.dev = (
                f"dev session revision {data.get('revision')} applied "
                f"({data.get('kind')}, {data.get('latency_ms')} ms)"
            )
        elif event == "error" and "last_id" in data:
            self.notice = f"reconnecting: {data.get('message')}"
            return
        elif event == "error":
            where = f" in {data['file']}" if data.get("file") else ""
            self.dev = f"dev session error{where}: {data.get('message')}"
        self.notice = ""
        if len(self.builds) > self.limit:
            oldest = min(self.builds.values(), key=lambda r: _order(r.at))
            del self.builds[oldest.id]

    def rows(self) -> list[BuildRow]:
        """Builds, the most recently active first."""
        return sorted(self.builds.values(), key=lambda r: _order(r.at), reverse=True)


def _order(event_id: str) -> tuple[int, int]:
    ms, seq = event_id.split("-")
    return int(ms), int(seq)
