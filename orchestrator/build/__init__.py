"""The build: its plan, install strategy, package managers and pipeline."""
