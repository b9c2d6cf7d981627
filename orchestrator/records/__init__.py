"""The records: builds and generations (SQLModel), their states, the store and database.

Imports only ``errors``, ``settings`` and ``project``.
"""
