"""The records: builds and generations (SQLModel), their states, the store and database.

Imports only ``errors``, ``settings`` and ``project`` (and SQLModel, SQLAlchemy, Alembic).
``migrations/`` holds the Alembic environment and revisions that ``db.upgrade`` runs.
"""
