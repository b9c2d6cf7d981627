"""Unit tests for orchestrator.builds.output_folder: the probe's answer, candidates, messages."""

from __future__ import annotations

import pytest

from orchestrator.builds.output_folder import (
    MISSING_OUTPUT,
    PROBE_MARKER,
    PROBE_SCRIPT,
    Candidate,
    candidates,
    inside_workspace,
    missing_output_message,
    probe_limits,
    probe_step,
    reported_out_dir,
)
from orchestrator.errors import BuildError
from orchestrator.project.frameworks import detect
from orchestrator.sandbox.step import Limits

SVELTEKIT = detect({"devDependencies": {"@sveltejs/kit": "2", "@sveltejs/adapter-auto": "3"}}, [])


def test_the_probe_runs_offline_and_prints_the_marker_it_is_read_by() -> None:
    step = probe_step()
    assert step.network is False and step.argv[:3] == ["node", "--input-type=module", "-e"]
    assert f'"{PROBE_MARKER}"' in PROBE_SCRIPT
    assert "\n" not in step.argv[3] and "resolveConfig" in step.argv[3]
    assert probe_limits(Limits(600, 2048, 2.0)) == Limits(120, 2048, 2.0)
    assert probe_limits(Limits(30, 512, 1.0)) == Limits(30, 512, 1.0)


def test_the_last_report_wins_and_junk_is_ignored() -> None:
    lines = [
        "vite v7 loading config",
        f"{PROBE_MARKER}not json",
        f"{PROBE_MARKER}[1, 2]",
        f'{PROBE_MARKER}{{"outDir": 3}}',
        f'{PROBE_MARKER}{{"outDir": "out"}}',
        f'  {PROBE_MARKER}{{"outDir": "build"}}  ',
    ]
    assert reported_out_dir(lines) == "build"
    assert reported_out_dir(["nothing here"]) is None


@pytest.mark.parametrize(
    ("reported", "clean"),
    [
        ("build", "build"),
        ("./build/", "build"),
        ("a/../www", "www"),
        ("dist\\client", "dist/client"),
    ],
)
def test_folders_inside_the_workspace_are_cleaned(reported: str, clean: str) -> None:
    assert inside_workspace(reported) == clean


@pytest.mark.parametrize(
    "reported", ["../../escape", "..", "/etc", "/workspace/dist", "a/../../b", "", ".", "x" * 201]
)
def test_folders_outside_or_the_workspace_itself_are_unsafe(reported: str) -> None:
    with pytest.raises(BuildError) as caught:
        inside_workspace(reported)
    assert caught.value.code == "unsafe_output"


def test_candidates_put_build_out_dir_first_then_dist_then_the_framework_folder() -> None:
    found = candidates("public/app", SVELTEKIT)
    assert [c.folder for c in found] == ["public/app", "dist", "build"]
    assert found[0].why == "build.outDir of the Vite config"
    assert [c.folder for c in candidates("dist", None)] == ["dist"]
    assert [c.folder for c in candidates(None, None)] == ["dist"]


def test_the_message_names_every_folder_looked_in_and_the_frameworks_advice() -> None:
    looked = candidates(".svelte-kit/output/client", SVELTEKIT)
    message = missing_output_message(looked, SVELTEKIT)
    assert MISSING_OUTPUT in message
    for folder in (".svelte-kit/output/client/", "dist/", "build/"):
        assert folder in message
    assert "SvelteKit (adapter-auto)" in message and "@sveltejs/adapter-static" in message


def test_without_a_framework_the_message_says_what_kiln_publishes() -> None:
    message = missing_output_message([Candidate("dist", "Kiln's default")], None)
    assert message.startswith("the build finished but wrote no index.html in dist/")
    assert "build.outDir" in message
