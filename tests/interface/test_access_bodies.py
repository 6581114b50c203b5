"""The access bodies the client shares with the auth plugins say what the server's core says."""

from __future__ import annotations

from typing import get_args

from butterflyfx.core.auth import ACTIONS, TIERS
from butterflyfx.interface.machine.access import CreateApiKey, Scope, Tier


def test_a_new_key_documents_the_tiers_and_scopes_the_server_knows():
    assert get_args(Tier) == TIERS
    assert get_args(Scope) == ACTIONS


def test_a_new_key_takes_tier_scopes_and_name_and_nothing_else():
    assert tuple(CreateApiKey.model_fields) == ("tier", "scopes", "name")
    assert CreateApiKey.model_config.get("extra") == "forbid"
