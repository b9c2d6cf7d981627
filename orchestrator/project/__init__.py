"""What a submitted project is: checked files, package.json and lockfile facts, templates.

Pure (templates read the bundled folders). Imports only ``errors`` and ``settings``.
"""
