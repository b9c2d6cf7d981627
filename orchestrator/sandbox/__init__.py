"""Running one step of a build in a hardened container, and what that needs.

- ``step``: what one container run is (command, phase, network, limits). Pure.
- ``runner``: container arguments and the Docker runner (output, limits, cancel).
- ``workspace``: each build's own size-limited filesystem.
- ``egress``: the install phase's only way out (proxy, network, firewall).
- ``image``: making the sandbox image.

Imports ``errors``, ``settings`` and ``records`` (for the phase names).
"""
