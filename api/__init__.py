"""Kiln's HTTP layer: thin FastAPI routes over orchestrator.service, and the preview host."""
