"""Every operation in the server's OpenAPI document has a client method, and every method
in the client's route table names an operation the document has; both clients have them."""

from __future__ import annotations

import httpx

from butterflyfx.interface.client import ROUTES, AsyncButterflyFX, ButterflyFX

METHODS = {"get", "post", "put", "patch", "delete"}


def test_the_route_table_and_the_openapi_document_name_the_same_operations(server):
    spec = httpx.get(f"{server.url}/api/v1/openapi.json", timeout=30.0).json()
    documented = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
        if method in METHODS
    }

    assert documented - set(ROUTES) == set(), "operations the client cannot call"
    assert set(ROUTES) - documented == set(), "client routes the server does not document"


def test_each_route_names_a_method_of_both_clients():
    for name in ROUTES.values():
        assert callable(getattr(ButterflyFX, name, None)), name
        assert callable(getattr(AsyncButterflyFX, name, None)), name
