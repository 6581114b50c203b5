"""What the HTTP tests say to the API, in a few words: paths, a seed substrate, checks."""

from __future__ import annotations

from typing import Any

import orjson

API = "/api/v1"
MULTIPLY_XY = "lambda **kw: kw.get('x', 0) * kw.get('y', 0)"
SEED_SUBSTRATE = {
    "expression_type": "lambda",
    "expression_code": MULTIPLY_XY,
    "metadata": {"name": "multiply_substrate", "description": "Multiplies x and y"},
}


async def body(response: Any) -> Any:
    """The response body parsed as JSON, independently of the app's own JSON provider."""
    return orjson.loads(await response.get_data())


async def create(client: Any, code: str = MULTIPLY_XY, **fields: Any) -> dict[str, Any]:
    """Create a lambda substrate and return its JSON."""
    response = await client.post(
        f"{API}/substrates", json={"expression_type": "lambda", "expression_code": code, **fields}
    )
    assert response.status_code in (200, 201), await response.get_data()
    return await body(response)  # type: ignore[no-any-return]


async def problem(response: Any, status: int) -> dict[str, Any]:
    """Assert ``response`` is an RFC 9457 problem with ``status``; return its body."""
    data = await response.get_data()
    assert response.status_code == status, data
    assert response.headers["Content-Type"] == "application/problem+json"
    parsed: dict[str, Any] = orjson.loads(data)
    assert parsed["status"] == status
    assert parsed["type"].startswith("https://butterflyfx.dev/problems/")
    assert parsed["title"] and parsed["detail"]
    assert parsed["instance"].startswith("/")
    assert "Traceback" not in data.decode()
    return parsed


async def relate(
    client: Any,
    source_id: str,
    target_id: str,
    relationship_type: str = "dependency",
    **fields: Any,
) -> dict[str, Any]:
    """Relate two substrates and return the relationship's JSON."""
    response = await client.post(
        f"{API}/relationships",
        json={"source_id": source_id, "target_id": target_id,
              "relationship_type": relationship_type, **fields},
    )  # fmt: skip
    assert response.status_code in (200, 201), await response.get_data()
    return await body(response)  # type: ignore[no-any-return]


async def named(client: Any, *names: str) -> dict[str, str]:
    """One substrate per name, ``metadata.name`` set to it; name -> substrate_id."""
    ids = {}
    for name in names:
        made = await create(client, f"lambda **kw: kw.get('{name}', 0)", metadata={"name": name})
        ids[name] = made["substrate_id"]
    return ids
