"""graph.sql's statements run on PostgreSQL and answer there exactly as on SQLite.

The shared schema (storage.sqlite's migrations, which say they are PostgreSQL's too) is
created in a schema of its own on the PostgreSQL server this machine runs, the same
relationships are written to it and to a SQLite store, and graph.sql answers every
question over both. The project ships no PostgreSQL driver yet, so statements go through
``psql``: parameters are written into the text as literals (only integers and plain
strings occur) and rows come back as JSON, which keeps their types. Skipped when no
server answers (PGHOST, PGPORT, PGUSER and PGDATABASE say where; 127.0.0.1, postgres and
test by default).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from butterflyfx.core.graph import GraphDirection
from butterflyfx.kernel import Relationship
from butterflyfx.plugins.graph_sql import SqlGraph
from butterflyfx.plugins.storage_sqlite import SqliteStore
from butterflyfx.plugins.storage_sqlite.migrations import MIGRATIONS
from butterflyfx.plugins.storage_sqlite.rows import (
    identity_key,
    relationship_values,
    substrate_values,
)
from butterflyfx.testing.graph import node
from butterflyfx.testing.storage import make_substrate

TENANT = "acme"
DIRECTIONS: tuple[GraphDirection, ...] = ("out", "in", "both")
ENVIRONMENT = {
    "PGHOST": os.environ.get("PGHOST", "127.0.0.1"),
    "PGUSER": os.environ.get("PGUSER", "postgres"),
    "PGDATABASE": os.environ.get("PGDATABASE", "test"),
    "PGCONNECT_TIMEOUT": "3",
}


def psql(sql: str, schema: str | None = None) -> str:
    env = {**os.environ, **ENVIRONMENT}
    if schema is not None:
        env["PGOPTIONS"] = f"-c search_path={schema}"
    done = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"psql failed: {done.stderr.strip()}")
    return done.stdout


def literal(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        raise TypeError(f"no literal for {value!r} here")
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


class PostgresDatabase:
    """A :class:`~butterflyfx.core.store.SqlDatabase` over ``psql``, for this test only."""

    sql_dialect = "postgresql"

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.statements: list[str] = []

    async def sql_fetch(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        pieces = sql.split("?")
        assert len(pieces) == len(parameters) + 1, "one parameter per placeholder"
        text = pieces[0] + "".join(
            literal(value) + piece for value, piece in zip(parameters, pieces[1:], strict=True)
        )
        self.statements.append(sql)
        out = psql(f"SELECT row_to_json(t)::text FROM ({text}) AS t", self.schema)
        return [tuple(json.loads(line).values()) for line in out.splitlines() if line]


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    # Under BUTTERFLYFX_REQUIRE_SERVICES=1 (CI) a missing server is a failure, not a skip.
    missing = pytest.fail if os.environ.get("BUTTERFLYFX_REQUIRE_SERVICES") == "1" else pytest.skip
    if shutil.which("psql") is None:
        missing("psql is not installed")
    try:
        psql("SELECT 1")
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        missing(f"no PostgreSQL server answers: {error}")
    name = f"butterflyfx_graph_{uuid.uuid4().hex[:12]}"
    psql(f"CREATE SCHEMA {name}")
    try:
        for step in MIGRATIONS:
            for statement in step:
                psql(statement, name)
        yield name
    finally:
        psql(f"DROP SCHEMA {name} CASCADE")


def random_graph() -> tuple[list[int], list[Relationship]]:
    chance = random.Random(5)
    nodes = [node(letter) for letter in "ABCDEFGHI"]
    made: dict[int, Relationship] = {}
    for _ in range(20):
        source, target = chance.choice(nodes), chance.choice(nodes)
        kind = "recursion" if source == target else chance.choice(["dependency", "lineage"])
        relationship = Relationship.create(
            source, target, kind, bidirectional=chance.random() < 0.3,
            weight=chance.choice([None, 0.5, 2.0]), metadata={"n": len(made)},
        )  # fmt: skip
        made.setdefault(relationship.identity, relationship)
    return nodes, list(made.values())


def test_graph_sql_answers_on_postgresql_as_it_does_on_sqlite(schema, tmp_path):
    nodes, relationships = random_graph()
    substrates = [make_substrate(i, identity=identity) for i, identity in enumerate(nodes)]
    rows = []
    for substrate in substrates:
        values = ", ".join(
            "NULL" if value is None else literal(value)
            for value in substrate_values(TENANT, substrate)
        )
        rows.append(
            "INSERT INTO substrates (tenant, expression_type, expression_code, identity_key, "
            f"metadata, created_at, updated_at, version) VALUES ({values})"
        )
    for r in relationships:
        v = relationship_values(TENANT, r, identity_key(r.source), identity_key(r.target))
        weight = "NULL" if v["weight"] is None else literal(v["weight"])
        rows.append(
            "INSERT INTO relationships (tenant, identity_key, source_key, target_key, "
            "relationship_type, bidirectional, weight, metadata, created_at) VALUES ("
            f"{literal(TENANT)}, {v['key']}, {v['source']}, {v['target']}, {literal(v['type'])}, "
            f"{v['bidirectional']}, {weight}, {literal(v['metadata'])}, "
            f"{literal(v['created_at']) if v['created_at'] else 'NULL'})"
        )
    psql("; ".join(rows), schema)
    postgres = PostgresDatabase(schema)

    async def main() -> None:
        store = SqliteStore(tmp_path / "same.sqlite3", synchronous="normal")
        await store.open()
        try:
            for substrate in substrates:
                await store.put_substrate(TENANT, substrate)
            for relationship in relationships:
                await store.put_relationship(TENANT, relationship)
            on_sqlite = SqlGraph(store, node_budget=1000, first_rows=2)
            on_postgres = SqlGraph(postgres, node_budget=1000, first_rows=2)
            await on_postgres.open()
            for engine in (on_sqlite, on_postgres):
                assert engine.dialect in ("sqlite", "postgresql")
            for direction in DIRECTIONS:
                for start in nodes[::2]:
                    for types in (None, ["lineage", "recursion"]):
                        asked = dict(direction=direction, max_depth=3, types=types, limit=6,
                                     node_budget=1000)  # fmt: skip
                        there = await on_postgres.traverse(TENANT, start, **asked)
                        assert there == await on_sqlite.traverse(TENANT, start, **asked)
                    for target in nodes[1::3]:
                        for weighted in (False, True):
                            asked = dict(weighted=weighted, direction=direction, types=None,
                                         max_depth=4, node_budget=1000)  # fmt: skip
                            there = await on_postgres.shortest_path(TENANT, start, target, **asked)
                            here = await on_sqlite.shortest_path(TENANT, start, target, **asked)
                            assert there == here, (direction, start, target, weighted)
            for root in nodes[:3]:
                there = await on_postgres.subgraph(TENANT, root, depth=2, types=None, max_nodes=5)
                assert there == await on_sqlite.subgraph(
                    TENANT, root, depth=2, types=None, max_nodes=5
                )
        finally:
            await store.close()

    asyncio.run(main())
    ran = {statement.split(" ")[0] for statement in postgres.statements}
    assert ran == {"WITH", "SELECT"}  # recursive walks, and the plain reads
    assert sum(s.startswith("WITH RECURSIVE") for s in postgres.statements) > 20
