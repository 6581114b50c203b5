"""Conformance suites for plugin authors: :mod:`butterflyfx.testing.storage` for stores.

Subclass the suite in a test file and provide its one fixture; the module docstring of
each suite shows how.
"""

try:
    import pytest
except ImportError:  # pytest is a test dependency; importing this package must not need it
    pass
else:
    # Plain asserts in the suites then explain their failures the way test files do.
    pytest.register_assert_rewrite("butterflyfx.testing.storage", "butterflyfx.testing.auth")
