"""What a plugin's own tests need, shipped with the server: ``butterflyfx.testing``.

- Conformance suites, one class each to subclass in a test file, providing one fixture
  (each module docstring shows how): :mod:`.storage` for stores, :mod:`.graph` for graph
  engines, :mod:`.auth` for authentication plugins.
- A pytest plugin, :mod:`.pytest_plugin`, which pytest loads wherever the server is
  installed: fixtures for a real ``butterflyfx serve`` (``butterflyfx_server``), a
  PostgreSQL schema and a Redis key prefix of a test's own.
- :mod:`.services` (the test PostgreSQL and Redis, skipping or failing when they do not
  answer) and :mod:`.process` (a free port, waiting for a server to answer).
"""

try:
    import pytest
except ImportError:  # pytest is a test dependency; importing this package must not need it
    pass
else:
    # Plain asserts in the suites then explain their failures the way test files do.
    pytest.register_assert_rewrite(
        "butterflyfx.testing.storage", "butterflyfx.testing.auth", "butterflyfx.testing.graph"
    )
