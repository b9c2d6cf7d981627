"""Dependency aliases that keep route signatures to one line."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from orchestrator.context import Context, api_context

CtxDep = Annotated[Context, Depends(api_context)]
