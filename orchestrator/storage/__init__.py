"""Where builds' sources and artifacts are kept, and publishing a checked ``dist/``.

``layout`` knows every derived path; ``artifacts`` checks and publishes output and
resolves preview paths. Imports only ``errors`` and ``settings``.
"""
