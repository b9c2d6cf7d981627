"""Kiln: builds untrusted Vite projects in sandbox containers and serves their previews.

The packages, lowest first; each imports only from those above it in this list:

- ``errors``, ``settings``, ``logs``: the error tree, configuration, logging.
- ``project``: what a submitted project is (input checks, package.json and lockfile
  facts, dependency sources, templates). Pure.
- ``records``: the build and generation records, their states, the database.
- ``storage``: where sources and artifacts are kept, publishing a ``dist/``.
- ``live``: builds' event streams in Redis, and following them.
- ``sandbox``: running one step in a hardened container (steps, the Docker runner,
  workspaces, the egress proxy, the sandbox image).
- ``cache``: dependency layers and resolutions on disk, their keys and eviction.
- ``codegen``: the model client, prompts, answer schema and edits. A library.
- ``context``: the wiring of settings, database, Redis and Docker for one process.
- ``builds``: a build's life (plan, install strategy, pipeline, lifecycle, diagnostics,
  the generation job, reuse, recovery, the queue's jobs).
- ``ops``: operating a Kiln (workers, janitor, maintenance, doctor, metrics, admission).
- ``service``: what the API and the CLI ask of Kiln; ``cli`` and ``client`` on top.
"""
