"""The human face of the API: ``butterflyfx substrate|rel|query|graph|events ...`` on the client.

Each command calls the HTTP API through :class:`butterflyfx.interface.client.ButterflyFX`
and prints a table (or, with ``--json``, the API's JSON); ``events`` prints the tenant's
events as they happen. See docs/cli.md.
"""

from .commands import HUMAN_COMMANDS, add_human_commands

__all__ = ["HUMAN_COMMANDS", "add_human_commands"]
