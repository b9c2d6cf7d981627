"""Dependency aliases that keep route signatures to one line."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from fastapi import Depends

from orchestrator.context import Context, api_context
from orchestrator.live.hub import BLOCK_MS, Hub
from orchestrator.live.redis_source import RedisSource


@lru_cache
def api_hub() -> Hub:
    """This API process's live fan-out (one Redis reader for every follower)."""
    settings = api_context().settings
    source = RedisSource(settings.redis_url, block_ms=BLOCK_MS)
    return Hub(source, queue_limit=settings.live_queue_limit)


CtxDep = Annotated[Context, Depends(api_context)]
HubDep = Annotated[Hub, Depends(api_hub)]
