"""The PostgreSQL server tests reach and a schema of a test's own there: kept where the
tests beside it import them from, now living in :mod:`butterflyfx.testing.services` so a
third-party plugin's tests (through the pytest plugin) get the same."""

from __future__ import annotations

from butterflyfx.testing.services import POSTGRES_DSN, postgres_schema

__all__ = ["POSTGRES_DSN", "postgres_schema"]
