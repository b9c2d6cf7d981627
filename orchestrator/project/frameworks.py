"""Which well-known framework a project is, when it is not a plain static Vite app.

Pure: ``detect(manifest, files)`` reads package.json's dependencies and the names of the
project's top-level files. Kiln uses the answer only after a build wrote no publishable
folder, to say what the project is and what to change; it never refuses a project up
front on it (a SvelteKit app on adapter-static, a TanStack Start app in SPA mode build
static files, and detection from names alone can be wrong).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

SVELTEKIT_ADAPTERS = (
    "@sveltejs/adapter-static",
    "@sveltejs/adapter-auto",
    "@sveltejs/adapter-node",
    "@sveltejs/adapter-vercel",
    "@sveltejs/adapter-netlify",
    "@sveltejs/adapter-cloudflare",
)
TANSTACK_START = (
    "@tanstack/react-start",
    "@tanstack/solid-start",
    "@tanstack/vue-start",
    "@tanstack/start",
)
ASTRO_SERVER_ADAPTERS = (
    "@astrojs/node",
    "@astrojs/vercel",
    "@astrojs/netlify",
    "@astrojs/cloudflare",
)


@dataclass(frozen=True)
class Framework:
    """A framework a project uses, what to change for static output, and where that goes."""

    name: str  # "SvelteKit (adapter-auto)", shown to the user
    advice: str  # what to change so the build writes static files with an index.html
    config_file: str  # where that change goes, for the diagnosis
    # The folder the framework writes its static files to once configured that way (a
    # convention, tried after dist/ and Vite's build.outDir); None when that is dist/.
    static_folder: str | None = None


def dependencies(manifest: Mapping[str, object]) -> set[str]:
    """Every package named in dependencies, devDependencies or peerDependencies."""
    names: set[str] = set()
    for field in ("dependencies", "devDependencies", "peerDependencies"):
        section = manifest.get(field)
        if isinstance(section, dict):
            names.update(str(name) for name in section)
    return names


def _config(files: Collection[str], stem: str, default_ext: str = "js") -> str:
    """The project's ``<stem>.config.*`` file name, or the usual one when it has none."""
    for ext in ("ts", "js", "mjs", "mts", "cjs", "cts"):
        if f"{stem}.config.{ext}" in files:
            return f"{stem}.config.{ext}"
    return f"{stem}.config.{default_ext}"


def _sveltekit(deps: set[str], files: Collection[str]) -> Framework | None:
    if "@sveltejs/kit" not in deps:
        return None
    adapter = next((a for a in SVELTEKIT_ADAPTERS if a in deps), None)
    config = _config(files, "svelte")
    prerender = (
        "and `export const prerender = true` (or `export const ssr = false` for a "
        "single-page app) in src/routes/+layout.js"
    )
    if adapter == "@sveltejs/adapter-static":
        return Framework(
            "SvelteKit (adapter-static)",
            "adapter-static writes build/ (its `pages` option); give it "
            f"`fallback: 'index.html'` in {config} for a single-page app, {prerender}",
            config,
            "build",
        )
    short = adapter.removeprefix("@sveltejs/") if adapter else "no adapter"
    return Framework(
        f"SvelteKit ({short})",
        f"SvelteKit with {short} builds a server, not static files: use "
        f"@sveltejs/adapter-static in {config} (`adapter({{ fallback: 'index.html' }})` for "
        f"a single-page app) {prerender}; Kiln then publishes build/",
        config,
        "build",
    )


def _tanstack_start(deps: set[str], files: Collection[str]) -> Framework | None:
    if not any(name in deps for name in TANSTACK_START):
        return None
    config = _config(files, "vite", "ts")
    return Framework(
        "TanStack Start",
        "TanStack Start builds a server, not static files: turn on its SPA mode in "
        f"{config}, `tanstackStart({{ spa: {{ enabled: true, prerender: {{ outputPath: "
        "'/index.html' } } })` (or prerender the pages), and Kiln publishes dist/client; or "
        "use TanStack Router with plain Vite",
        config,
        "dist/client",
    )


def _react_router(deps: set[str], files: Collection[str]) -> Framework | None:
    if "@react-router/dev" in deps:
        config = _config(files, "react-router", "ts")
        return Framework(
            "React Router (framework mode)",
            f"React Router's framework mode renders on a server by default: set `ssr: false` "
            f"in {config}, and Kiln publishes build/client",
            config,
            "build/client",
        )
    if "@remix-run/dev" in deps:
        config = _config(files, "vite", "ts")
        return Framework(
            "Remix",
            f"Remix renders on a server by default: use its SPA mode, `remix({{ ssr: false }})` "
            f"in {config}, and Kiln publishes build/client",
            config,
            "build/client",
        )
    return None


def _nuxt(deps: set[str], files: Collection[str]) -> Framework | None:
    if "nuxt" not in deps:
        return None
    return Framework(
        "Nuxt",
        "`nuxt build` builds a server: make the build script `nuxt generate` (static "
        "pages, or `ssr: false` in nuxt.config for a single-page app), and Kiln publishes "
        ".output/public",
        _config(files, "nuxt", "ts"),
        ".output/public",
    )


def _astro(deps: set[str], files: Collection[str]) -> Framework | None:
    # Astro without an adapter writes static pages to dist/: only a server adapter is news.
    if "astro" not in deps or not any(name in deps for name in ASTRO_SERVER_ADAPTERS):
        return None
    config = _config(files, "astro", "mjs")
    return Framework(
        "Astro (server output)",
        f"Astro with a server adapter renders on a server: remove the adapter and set "
        f"`output: 'static'` in {config}; Astro then writes dist/",
        config,
    )


def _next(deps: set[str], files: Collection[str]) -> Framework | None:
    if "next" not in deps:
        return None
    config = _config(files, "next", "js")
    return Framework(
        "Next.js",
        f"Next.js is not a Vite app and builds a server by default: set `output: 'export'` "
        f"in {config} for static files (Kiln publishes out/), or move the app to Vite",
        config,
        "out",
    )


# In order: a SvelteKit or Start app may also list packages of the ones after it.
RECOGNISERS: tuple[Callable[[set[str], Collection[str]], Framework | None], ...] = (
    _sveltekit,
    _tanstack_start,
    _react_router,
    _nuxt,
    _astro,
    _next,
)


def detect(manifest: Mapping[str, object], files: Collection[str]) -> Framework | None:
    """The non-static framework the project uses, or None for a plain Vite (or unknown) app.

    ``files`` are the names of the project's top-level files (``svelte.config.js``, …).
    """
    deps = dependencies(manifest)
    for recognise in RECOGNISERS:
        found = recognise(deps, files)
        if found is not None:
            return found
    return None
