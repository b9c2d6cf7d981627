"""Builds' events as they happen: Redis streams, their archive, following them over SSE.

Imports ``errors``, ``records`` and ``storage``.
"""
