"""Unit tests for orchestrator.project.lockfiles' YAML reading (the matching rules are
tested with the environment choice, tests/unit/project/test_environment.py)."""

from __future__ import annotations

from pathlib import Path

import yaml

from orchestrator.project.lockfiles import SAFE_LOADER, load_yaml

ROOT = Path(__file__).resolve().parents[3]
PNPM_LOCK = ROOT / "benchmarks" / "projects" / "lockfiles" / "lovable-style" / "pnpm-lock.yaml"


def test_a_lockfile_reads_as_pure_python_pyyaml_reads_it() -> None:
    raw = PNPM_LOCK.read_bytes()
    assert load_yaml(raw) == yaml.load(raw.decode(), Loader=yaml.SafeLoader)


def test_only_safe_yaml_is_read() -> None:
    assert issubclass(SAFE_LOADER, yaml.constructor.SafeConstructor)  # never the full loader
    assert load_yaml(b"a: !!python/object/apply:os.system ['true']\n") is None
    assert load_yaml(b"- a list\n") is None  # a mapping or nothing
    assert load_yaml(b"\xff\xfe") is None


def test_the_same_lockfile_is_parsed_once() -> None:
    raw = b"lockfileVersion: '9.0'\nimporters:\n  .: {}\n"
    assert load_yaml(raw) is load_yaml(bytes(raw))
