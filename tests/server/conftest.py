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


def install_plugin(site: Path, distribution: str, version: str, name: str, source: str) -> None:
    """Install a one-module plugin distribution the way any is seen: a ``.dist-info`` with
    an entry point in the ``butterflyfx`` group, and the module, in folder ``site``."""
    module = distribution.replace("-", "_")
    dist_info = site / f"{module}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
    )
    (dist_info / "entry_points.txt").write_text(f"[butterflyfx]\n{name} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))


def on_path(site: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


@pytest.fixture
def vault_plugin(tmp_path: Path) -> dict[str, str]:
    """A third-party plugin, ``butterflyfx-vault`` 2.3.0, with a secret in its section;
    returns the environment that installs it."""
    install_plugin(
        tmp_path / "vault-site", "butterflyfx-vault", "2.3.0", "vault",
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
        ''',
    )  # fmt: skip
    return on_path(tmp_path / "vault-site")


@pytest.fixture
def licence_plugin(tmp_path: Path) -> dict[str, str]:
    """A third-party plugin, ``licence``, whose startup fails as a real dependency would."""
    install_plugin(
        tmp_path / "licence-site", "butterflyfx-licence", "0.9.0", "licence",
        '''
        from butterflyfx.core.hookspecs import hookimpl


        @hookimpl
        async def butterflyfx_startup(ctx):
            raise ConnectionRefusedError("the licence server did not answer")
        ''',
    )  # fmt: skip
    return on_path(tmp_path / "licence-site")
