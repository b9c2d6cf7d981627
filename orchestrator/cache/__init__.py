"""Build caches: shared dependency layers, dependency resolutions and identical-input reuse.

``keys`` is pure (what a cache entry is keyed by, and whether a project may use one);
``layers`` and ``resolutions`` keep entries on disk; ``reuse`` answers an identical
submit with an earlier artifact; ``gc`` evicts least recently used entries; ``warm``
prepares the bundled templates' layers when a worker starts.
"""
