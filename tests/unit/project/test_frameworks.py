"""Unit tests for orchestrator.project.frameworks: which framework from package.json and files."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.project.frameworks import dependencies, detect

REACT_ROUTER = "React Router (framework mode)"


def pkg(**sections: dict[str, str]) -> dict[str, Any]:
    return {"name": "app", **sections}


def test_a_plain_vite_app_is_no_framework() -> None:
    manifest = pkg(dependencies={"react": "^19"}, devDependencies={"vite": "^7"})
    assert detect(manifest, ["vite.config.js", "index.html"]) is None


def test_dependencies_reads_every_section_and_ignores_junk() -> None:
    manifest = {"dependencies": {"a": "1"}, "devDependencies": {"b": "1"}, "peerDependencies": 3}
    assert dependencies(manifest) == {"a", "b"}


@pytest.mark.parametrize(
    "adapter", ["@sveltejs/adapter-auto", "@sveltejs/adapter-node", "@sveltejs/adapter-vercel"]
)
def test_sveltekit_on_a_server_adapter_is_told_to_use_adapter_static(adapter: str) -> None:
    manifest = pkg(devDependencies={"@sveltejs/kit": "^2", adapter: "^3", "vite": "^6"})
    found = detect(manifest, ["svelte.config.js", "vite.config.ts"])
    assert found is not None
    short = adapter.removeprefix("@sveltejs/")
    assert found.name == f"SvelteKit ({short})"
    assert "@sveltejs/adapter-static" in found.advice
    assert "fallback: 'index.html'" in found.advice
    assert "export const prerender = true" in found.advice and "ssr = false" in found.advice
    assert (found.config_file, found.static_folder) == ("svelte.config.js", "build")


def test_sveltekit_on_adapter_static_is_pointed_at_build_and_the_fallback() -> None:
    manifest = pkg(devDependencies={"@sveltejs/kit": "^2", "@sveltejs/adapter-static": "^3"})
    found = detect(manifest, ["svelte.config.ts"])
    assert found is not None and found.name == "SvelteKit (adapter-static)"
    assert found.config_file == "svelte.config.ts"
    assert "fallback: 'index.html'" in found.advice and found.static_folder == "build"


@pytest.mark.parametrize(
    "package",
    ["@tanstack/react-start", "@tanstack/start", "@tanstack/solid-start", "@tanstack/vue-start"],
)
def test_tanstack_start_is_told_about_spa_mode(package: str) -> None:
    found = detect(pkg(dependencies={package: "^1"}), ["vite.config.ts"])
    assert found is not None and found.name == "TanStack Start"
    assert "spa: { enabled: true" in found.advice and "outputPath: '/index.html'" in found.advice
    assert "TanStack Router with plain Vite" in found.advice
    assert (found.config_file, found.static_folder) == ("vite.config.ts", "dist/client")


def test_tanstack_router_alone_is_a_plain_vite_app() -> None:
    assert detect(pkg(dependencies={"@tanstack/react-router": "^1"}), []) is None


@pytest.mark.parametrize(
    ("deps", "name", "needle", "folder"),
    [
        (
            {"@react-router/dev": "^7"},
            "React Router (framework mode)",
            "ssr: false",
            "build/client",
        ),
        ({"@remix-run/dev": "^2"}, "Remix", "ssr: false", "build/client"),
        ({"nuxt": "^3"}, "Nuxt", "nuxt generate", ".output/public"),
        ({"astro": "^5", "@astrojs/node": "^9"}, "Astro (server output)", "output: 'static'", None),
        ({"next": "^15"}, "Next.js", "output: 'export'", "out"),
    ],
)
def test_other_server_frameworks(
    deps: dict[str, str], name: str, needle: str, folder: str | None
) -> None:
    found = detect(pkg(dependencies=deps), [])
    assert found is not None
    assert (found.name, found.static_folder) == (name, folder)
    assert needle in found.advice


def test_astro_without_a_server_adapter_builds_static_files() -> None:
    assert detect(pkg(dependencies={"astro": "^5"}), ["astro.config.mjs"]) is None


def test_the_projects_own_config_file_is_named() -> None:
    found = detect(pkg(dependencies={"next": "^15"}), ["next.config.mjs"])
    assert found is not None and found.config_file == "next.config.mjs"
    assert "next.config.mjs" in found.advice
