"""The client's substrate stories against a real ``butterflyfx serve``: create, get, list a
page at a time, update, invoke, divide, multiply, delete; answers are the shared models."""

from __future__ import annotations

from itertools import islice

import pytest

from butterflyfx.interface.client import NotFound
from butterflyfx.interface.machine.models import (
    DivisionBody,
    InvocationBody,
    SubstrateBody,
    SubstratePage,
)

AREA = "lambda **kw: kw.get('w', 0) * kw.get('h', 0)"


def test_a_substrate_is_created_read_invoked_updated_and_deleted(client):
    made = client.create_substrate("lambda", AREA, {"name": "area"})
    again = client.create_substrate("lambda", AREA, {"name": "area"})
    read = client.get_substrate(made.substrate_id)
    invoked = client.invoke(made.substrate_id, {"w": 6, "h": 7})
    updated = client.update_substrate(made.substrate_id, {"unit": "m2"})

    assert isinstance(made, SubstrateBody) and made.metadata == {"name": "area"}
    assert again == made  # content-addressed: the same expression is the same substrate
    assert read == made
    assert isinstance(invoked, InvocationBody) and invoked.result == 42
    assert updated.metadata == {"name": "area", "unit": "m2"} and updated.version == 2

    assert client.delete_substrate(made.substrate_id) is None
    with pytest.raises(NotFound) as gone:
        client.get_substrate(made.substrate_id)
    assert gone.value.status == 404


def test_divide_gives_nine_dimensions_and_multiply_rebuilds_the_substrate(client):
    made = client.create_substrate("lambda", "lambda **kw: kw.get('n', 0) + 1")
    other = client.create_substrate("lambda", "lambda **kw: kw.get('n', 0) + 2")

    division = client.divide(made.substrate_id)
    rebuilt = client.multiply(dimensions=division.dimensions)
    product = client.multiply(substrate_ids=[made.substrate_id, other.substrate_id])

    assert isinstance(division, DivisionBody) and len(division.dimensions) == 9
    assert rebuilt.substrate_id == made.substrate_id
    assert product.substrate_id not in {made.substrate_id, other.substrate_id}
    assert client.get_substrate(product.substrate_id) == product


def test_listing_walks_every_page_and_fetches_a_page_only_when_iteration_needs_it(client):
    for n in range(5):
        client.create_substrate("lambda", f"lambda **kw: {n} + 100")
    every = list(client.list_substrates(page_size=2))
    first_page = client.substrate_page(limit=2)

    before = client.server_stats().requests.total_requests
    three = list(islice(client.list_substrates(page_size=2), 3))
    after = client.server_stats().requests.total_requests

    assert isinstance(first_page, SubstratePage) and first_page.next_cursor
    assert len(every) >= 5 and len({s.substrate_id for s in every}) == len(every)
    assert [s.identity for s in every] == sorted(s.identity for s in every)
    assert three == every[:3]
    assert after - before == 3  # two pages of two, and the stats request itself
