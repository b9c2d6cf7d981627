"""The install phase's only way out: an allowlisting CONNECT proxy on an internal network.

- ``policy``: which hosts, ports and addresses a sandbox may reach (pure).
- ``proxy``: the asyncio CONNECT proxy that applies the policy.
- ``network``: the internal Docker network install containers sit on.
- ``firewall``: host rules that keep that network away from everything but the proxy.
- ``service``: starting all of it from a worker.
"""
