"""What a table that ``add_missing_columns`` upgraded lacks, and how to make up for it.

Before Alembic, Kiln added new columns to old tables with a bare ``ALTER TABLE ADD
COLUMN``: no index (``ix_build_input_digest``), no unique constraint (the
``idempotency_key`` that ``BuildStore.add_idempotent`` relies on) and no NOT NULL
(``attempts``). ``plan_repair`` compares what a database has with a frozen table (pure);
``read_facts`` and ``apply_repair`` do the I/O inside a migration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from alembic.operations import Operations
from sqlalchemy.engine import Connection, Inspector


@dataclass(frozen=True)
class TableFacts:
    """What a database has of one table."""

    columns: dict[str, bool]  # name -> nullable
    indexes: frozenset[str]
    unique: frozenset[tuple[str, ...]]  # column sets under a unique constraint or index


@dataclass
class Repair:
    """What one table needs to match its frozen definition."""

    table: str
    add_columns: list[str] = field(default_factory=list)
    not_null: list[str] = field(default_factory=list)
    add_unique: list[tuple[str, ...]] = field(default_factory=list)
    add_indexes: list[str] = field(default_factory=list)

    @property
    def alters_table(self) -> bool:
        """True when the table itself changes (columns or constraints, not just indexes)."""
        return bool(self.add_columns or self.not_null or self.add_unique)


def expected_unique(table: sa.Table) -> list[tuple[str, ...]]:
    """The column sets of ``table``'s unique constraints."""
    return [
        tuple(c.name for c in constraint.columns)
        for constraint in table.constraints
        if isinstance(constraint, sa.UniqueConstraint)
    ]


def plan_repair(
    table: sa.Table, indexes: dict[str, tuple[str, tuple[str, ...]]], facts: TableFacts
) -> Repair:
    """What ``facts`` lacks of ``table`` and its ``indexes`` (name -> (table, columns))."""
    repair = Repair(table.name)
    for column in table.columns:
        if column.name not in facts.columns:
            repair.add_columns.append(column.name)
        if not column.nullable and facts.columns.get(column.name, True):
            repair.not_null.append(column.name)
    repair.add_unique = [u for u in expected_unique(table) if u not in facts.unique]
    repair.add_indexes = [
        name
        for name, (owner, _columns) in indexes.items()
        if owner == table.name and name not in facts.indexes
    ]
    return repair


def read_facts(inspector: Inspector, table: str) -> TableFacts:
    """What the database behind ``inspector`` has of ``table``."""
    columns = {c["name"]: bool(c["nullable"]) for c in inspector.get_columns(table)}
    indexes = inspector.get_indexes(table)
    unique = {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)}
    unique |= {tuple(str(c) for c in i["column_names"]) for i in indexes if i["unique"]}
    return TableFacts(
        columns=columns,
        indexes=frozenset(str(i["name"]) for i in indexes),
        unique=frozenset(unique),
    )


def release_duplicate_keys(connection: Connection, table: str, columns: tuple[str, ...]) -> int:
    """Null all but the oldest row's value of each duplicated unique value; returns how many.

    Without the constraint two racing submits could store one Idempotency-Key twice; the
    first build keeps it, as ``add_idempotent`` would have answered.
    """
    if columns != ("idempotency_key",):
        return 0
    rows = connection.execute(
        sa.text(
            f'SELECT id, idempotency_key FROM "{table}" WHERE idempotency_key IN '
            f'(SELECT idempotency_key FROM "{table}" WHERE idempotency_key IS NOT NULL '
            "GROUP BY idempotency_key HAVING COUNT(*) > 1) ORDER BY created_at, id"
        )
    ).all()
    seen: set[str] = set()
    released = 0
    for build_id, key in rows:
        if key in seen:
            connection.execute(
                sa.text(f'UPDATE "{table}" SET idempotency_key = NULL WHERE id = :id'),
                {"id": build_id},
            )
            released += 1
        seen.add(key)
    return released


def create_table(
    op: Operations, frozen: sa.Table, indexes: dict[str, tuple[str, tuple[str, ...]]]
) -> None:
    """Create ``frozen`` as it is defined, with its unique constraints and its indexes."""
    unique = [sa.UniqueConstraint(*columns) for columns in expected_unique(frozen)]
    columns = [
        sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
        for c in frozen.columns
    ]
    op.create_table(frozen.name, *columns, *unique)
    for name, (table, indexed) in indexes.items():
        if table == frozen.name:
            op.create_index(name, table, list(indexed))


def apply_repair(
    op: Operations,
    frozen: sa.Table,
    repair: Repair,
    indexes: dict[str, tuple[str, tuple[str, ...]]],
    fill: dict[str, object],
) -> None:
    """Bring one existing table to ``frozen``: columns, NOT NULL, unique, indexes."""
    connection = op.get_bind()
    for name in repair.add_columns:
        column = frozen.c[name]
        op.add_column(frozen.name, sa.Column(name, column.type, nullable=True))
    for name in repair.not_null:
        if name in fill:
            connection.execute(
                sa.update(sa.table(frozen.name, sa.column(name)))
                .where(sa.column(name).is_(None))
                .values({name: fill[name]})
            )
    for columns in repair.add_unique:
        release_duplicate_keys(connection, frozen.name, columns)
    if repair.alters_table and connection.dialect.name == "sqlite":
        # SQLite cannot alter a column or add a constraint: copy the rows into the frozen
        # table's exact definition (the copy drops the old indexes; they come back below).
        with op.batch_alter_table(frozen.name, copy_from=frozen, recreate="always"):
            pass
        repair.add_indexes = sorted(n for n, (t, _c) in indexes.items() if t == frozen.name)
    elif repair.alters_table:
        for name in repair.not_null:
            op.alter_column(
                frozen.name,
                name,
                existing_type=frozen.c[name].type,
                nullable=False,
                server_default=None,  # the bare ALTER TABLE left a DEFAULT that 0001 has not
            )
        for columns in repair.add_unique:
            # The name PostgreSQL gives the constraint of a fresh table.
            op.create_unique_constraint(
                f"{frozen.name}_{'_'.join(columns)}_key", frozen.name, list(columns)
            )
    for name in repair.add_indexes:
        table, columns = indexes[name]
        op.create_index(name, table, list(columns))
