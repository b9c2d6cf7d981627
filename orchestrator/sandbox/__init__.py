"""Running one step of a build in a hardened container, and what that needs.

- ``step``: what one container run is (command, phase, network, limits). Pure.
- ``protocol``: the ``StepRunner`` seam every build talks to, and ``StepResult``.
- ``runner``: container arguments and the Docker runner (output, limits, cancel).
- ``fake``: a scripted ``StepRunner`` for tests (no Docker), like httpx's MockTransport.
- ``workspace``: each build's own size-limited filesystem.
- ``egress``: the install phase's only way out (proxy, network, firewall).
- ``image``: making the sandbox image.

Imports ``errors``, ``settings`` and ``records`` (for the phase names).
"""
