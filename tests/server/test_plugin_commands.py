"""Plugins add subcommands to ``butterflyfx`` through ``butterflyfx_commands``: they exist
when the config loads the plugin, run with the config's context, and fail like built-ins."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from butterflyfx.core.commands import CommandError
from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.server import cli


class Count:
    help = "count the substrates of a tenant"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--tenant", required=True)

    async def run(self, args: argparse.Namespace, ctx: Any) -> int:
        if args.tenant == "nobody":
            raise CommandError(f"no tenant {args.tenant!r} here")
        print(f"{args.tenant} in {ctx.data_dir}")
        return 0


class Counting:
    @hookimpl
    def butterflyfx_commands(self) -> dict[str, Any]:
        return {"count": Count()}


class Greedy:
    @hookimpl
    def butterflyfx_commands(self) -> dict[str, Any]:
        return {"serve": Count()}


def config(tmp_path: Path, *plugins: str) -> str:
    path = tmp_path / "butterflyfx.toml"
    path.write_text(f"plugins = {list(plugins)!r}\n", encoding="utf-8")
    return str(path)


def test_a_plugins_command_runs_with_the_configs_data_folder(tmp_path, capsys):
    chosen = config(tmp_path, "storage.memory", "counting")
    argv = ["count", "--tenant", "acme", "--config", chosen, "--data-dir", str(tmp_path / "d")]
    assert cli.main(argv, plugins={"counting": Counting()}) == 0
    assert capsys.readouterr().out == f"acme in {tmp_path / 'd'}\n"


def test_a_command_error_is_one_line_on_stderr_and_exit_code_2(tmp_path, capsys):
    chosen = config(tmp_path, "storage.memory", "counting")
    argv = ["count", "--tenant", "nobody", "--config", chosen]
    assert cli.main(argv, plugins={"counting": Counting()}) == 2
    assert capsys.readouterr().err == "butterflyfx: no tenant 'nobody' here\n"


def test_help_lists_the_commands_of_the_plugins_the_config_loads(tmp_path, capsys):
    chosen = config(tmp_path, "storage.memory", "counting")
    with pytest.raises(SystemExit):
        cli.main(["--help", "--config", chosen], plugins={"counting": Counting()})
    assert "count the substrates of a tenant" in capsys.readouterr().out


def test_without_the_plugin_in_the_config_its_command_does_not_exist(tmp_path, capsys):
    chosen = config(tmp_path, "storage.memory")
    with pytest.raises(SystemExit) as stopped:
        cli.main(["count", "--tenant", "a", "--config", chosen], plugins={"counting": Counting()})
    assert stopped.value.code == 2
    assert "invalid choice: 'count'" in capsys.readouterr().err


def test_a_plugin_may_not_take_a_built_in_commands_name(tmp_path, capsys):
    chosen = config(tmp_path, "storage.memory", "greedy")
    assert cli.main(["x", "--config", chosen], plugins={"greedy": Greedy()}) == 2
    assert "plugin 'greedy': the command 'serve' is taken" in capsys.readouterr().err


def test_a_config_that_does_not_load_is_the_error_a_plugin_command_reports(tmp_path, capsys):
    broken = tmp_path / "broken.toml"
    broken.write_text("plugins = [", encoding="utf-8")
    assert cli.main(["count", "--config", str(broken)]) == 2
    assert str(broken) in capsys.readouterr().err
