"""What a submitted project is: checked files, package.json and lockfile facts, templates,
the environment (Node, package manager) it asks for.

Pure (templates read the bundled folders). Imports only ``errors`` and ``settings``.
"""
