"""Unit tests for orchestrator.records.migrations.repair.plan_repair (pure)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from orchestrator.records.migrations import repair, schema_0001

BUILD = schema_0001.build_table(sa.MetaData())
BUILD_INDEXES = frozenset(n for n, (t, _c) in schema_0001.INDEXES.items() if t == "build")


def facts_of(table: sa.Table, **changes: object) -> repair.TableFacts:
    """The facts of a database that has exactly ``table``, with ``changes`` applied."""
    facts: dict[str, Any] = {
        "columns": {c.name: bool(c.nullable) for c in table.columns},
        "indexes": BUILD_INDEXES,
        "unique": frozenset(repair.expected_unique(table)),
    }
    facts.update(changes)
    return repair.TableFacts(**facts)


def test_a_table_made_by_create_all_needs_nothing() -> None:
    needed = repair.plan_repair(BUILD, schema_0001.INDEXES, facts_of(BUILD))
    assert not needed.alters_table and needed.add_indexes == []


def test_a_table_upgraded_by_add_missing_columns_gets_what_it_lacks() -> None:
    columns = {c.name: bool(c.nullable) for c in BUILD.columns} | {"attempts": True}
    facts = facts_of(
        BUILD,
        columns=columns,
        indexes=BUILD_INDEXES - {"ix_build_input_digest"},
        unique=frozenset(),
    )
    needed = repair.plan_repair(BUILD, schema_0001.INDEXES, facts)
    assert needed.not_null == ["attempts"]
    assert needed.add_unique == [("idempotency_key",)]
    assert needed.add_indexes == ["ix_build_input_digest"]
    assert needed.add_columns == [] and needed.alters_table


def test_a_unique_index_counts_as_the_unique_constraint() -> None:
    facts = facts_of(BUILD, unique=frozenset({("idempotency_key",)}))
    assert repair.plan_repair(BUILD, schema_0001.INDEXES, facts).add_unique == []


def test_a_missing_not_null_column_is_added_then_made_not_null() -> None:
    columns = {c.name: bool(c.nullable) for c in BUILD.columns if c.name != "attempts"}
    needed = repair.plan_repair(BUILD, schema_0001.INDEXES, facts_of(BUILD, columns=columns))
    assert needed.add_columns == ["attempts"] and needed.not_null == ["attempts"]
    assert "attempts" in schema_0001.FILL["build"]  # existing rows get a value first


def test_only_the_tables_own_indexes_are_planned() -> None:
    generation = schema_0001.generation_table(sa.MetaData())
    facts = repair.TableFacts(
        columns={c.name: bool(c.nullable) for c in generation.columns},
        indexes=frozenset(),
        unique=frozenset(),
    )
    assert repair.plan_repair(generation, schema_0001.INDEXES, facts).add_indexes == []
