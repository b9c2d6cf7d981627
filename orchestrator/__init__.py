"""Kiln's library: build pipeline, sandbox, queue, storage, log bus, settings and CLI."""
