"""Alembic migrations of Kiln's database: ``env.py``, the frozen schemas, ``versions/``.

Run through ``orchestrator.records.db`` (``kiln db upgrade``), which finds this folder
from the installed package. Imports only SQLAlchemy, Alembic and ``records.models``.
"""
