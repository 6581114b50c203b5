"""Fixtures for the server tests: the CLI in a temporary folder, and a third-party plugin."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import Butterflyfx


@pytest.fixture
def butterflyfx(tmp_path: Path) -> Iterator[Butterflyfx]:
    cli = Butterflyfx(tmp_path)
    try:
        yield cli
    finally:
        for server in cli.servers:
            server.destroy()


@pytest.fixture
def vault_plugin(tmp_path: Path) -> dict[str, str]:
    """A third-party plugin distribution, ``butterflyfx-vault``, with a secret in its section.

    Installed the way any distribution is seen: a ``.dist-info`` with an entry point in
    the ``butterflyfx`` group, on the path. Returns the environment that puts it there.
    """
    site = tmp_path / "site"
    dist_info = site / "butterflyfx_vault-2.3.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: butterflyfx-vault\nVersion: 2.3.0\n"
    )
    (dist_info / "entry_points.txt").write_text("[butterflyfx]\nvault = butterflyfx_vault\n")
    (site / "butterflyfx_vault.py").write_text(
        textwrap.dedent(
            '''
            """A plugin that keeps a token, as an auth or secrets plugin would."""
            from butterflyfx.core.config import StrictModel
            from butterflyfx.core.hookspecs import hookimpl


            class VaultSettings(StrictModel):
                address: str = "https://vault.internal"
                token: str | None = None


            @hookimpl
            def butterflyfx_config_model():
                return "vault", VaultSettings
            '''
        )
    )
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
