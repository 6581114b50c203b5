"""``butterflyfx copy --from A.toml --to B.toml``: every substrate, invocation total and
relationship of the store config A names into the store config B names.

Only the storage contract (:class:`~butterflyfx.core.store.SubstrateStore`) is used, so it
copies between any two storage plugins: one SQLite file to PostgreSQL, plain PostgreSQL to a
partitioned schema, PostgreSQL to Redis. Tenants come from ``--tenant`` or, when none is
named, from the source's optional ``tenants()`` (:class:`~butterflyfx.core.store.TenantListing`).

Per tenant, in batches: substrates in identity order (``list_substrates`` then
``put_substrates``), their invocation totals (brought up to the source's: the difference
in counts is added, so a second run adds nothing), then relationships (``all_relationships``
then ``put_relationships``). An end a relationship needs that the target lacks (written to
the source during the copy) is copied first; one the source itself no longer has skips the
relationship, counted. It is idempotent: rerun it after an interruption, or to pick up what
was written to the source since. It never deletes from the target, so what was deleted from
the source after a first run stays there: copy into a new schema, file or prefix, from a
source that takes no writes, for an exact copy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from butterflyfx.core.commands import CommandError
from butterflyfx.core.config import read_config
from butterflyfx.core.plugins import await_maybe, call
from butterflyfx.core.store import StoreUnavailable, SubstrateStore, TenantListing
from butterflyfx.kernel import InvocationStats, Relationship, Substrate

DEFAULT_BATCH = 1000
MAX_BATCH = 5000  # one batch is one statement or script; SQLite takes up to 32,766 parameters


@dataclass
class TenantCopy:
    """What copying one tenant did."""

    tenant: str
    substrates: int = 0
    substrates_new: int = 0
    invocation_totals: int = 0
    relationships: int = 0
    relationships_new: int = 0
    relationships_skipped: int = 0

    def add(self, other: TenantCopy) -> None:
        for name in (
            "substrates", "substrates_new", "invocation_totals",
            "relationships", "relationships_new", "relationships_skipped",
        ):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def counts(self) -> str:
        text = (
            f"{self.substrates} substrates ({self.substrates_new} new), "
            f"{self.invocation_totals} invocation totals, "
            f"{self.relationships} relationships ({self.relationships_new} new)"
        )
        if self.relationships_skipped:
            text += (
                f", {self.relationships_skipped} relationships skipped "
                "(an end was deleted from the source meanwhile)"
            )
        return text


# -- copying ---------------------------------------------------------------------------------


async def copy_tenant(
    source: SubstrateStore, target: SubstrateStore, tenant: str, *, batch: int = DEFAULT_BATCH
) -> TenantCopy:
    """Copy one tenant's substrates, invocation totals and relationships; see the module."""
    done = TenantCopy(tenant)
    # Totals are read one substrate at a time (the contract has no batch read of them):
    # skipped when the tenant's sums already agree, as on a second run.
    wanted, held = await asyncio.gather(
        source.invocation_totals(tenant), target.invocation_totals(tenant)
    )
    invoked = wanted.count > held.count
    after: int | None = None
    while page := await source.list_substrates(tenant, limit=batch, after=after):
        after = page[-1].identity
        await _put_substrates(target, tenant, page, done)
        if invoked:
            done.invocation_totals += await _copy_invocations(source, target, tenant, page)
    after = None
    while relationships := await source.all_relationships(tenant, limit=batch, after=after):
        after = relationships[-1].identity
        await _put_relationships(source, target, tenant, relationships, done)
    return done


async def _put_substrates(
    target: SubstrateStore, tenant: str, substrates: Sequence[Substrate], done: TenantCopy
) -> None:
    answers = await target.put_substrates(tenant, substrates)
    done.substrates += len(answers)
    done.substrates_new += sum(created for _, created in answers)


async def _copy_invocations(
    source: SubstrateStore, target: SubstrateStore, tenant: str, page: Sequence[Substrate]
) -> int:
    """Bring the target's totals of ``page`` up to the source's; how many changed."""
    identities = [substrate.identity for substrate in page]
    theirs = await asyncio.gather(*(source.invocation_stats(tenant, i) for i in identities))
    invoked = {i: stats for i, stats in zip(identities, theirs, strict=True) if stats}
    ours = await asyncio.gather(*(target.invocation_stats(tenant, i) for i in invoked))
    missing: dict[int, InvocationStats] = {}
    for (identity, wanted), held in zip(invoked.items(), ours, strict=True):
        held = held or InvocationStats()
        if held.count >= wanted.count:
            continue  # copied already (or counted on the target since): nothing to add
        missing[identity] = InvocationStats(
            wanted.count - held.count,
            max(0, wanted.errors - held.errors),
            max(0.0, wanted.total_ms - held.total_ms),
            wanted.last_invoked_at,
        )
    if missing:
        await target.add_invocations(tenant, missing)
    return len(missing)


async def _put_relationships(
    source: SubstrateStore,
    target: SubstrateStore,
    tenant: str,
    relationships: Sequence[Relationship],
    done: TenantCopy,
) -> None:
    ends = list(dict.fromkeys(e for r in relationships for e in (r.source, r.target)))
    present = set(await target.get_substrates(tenant, ends))
    absent = [end for end in ends if end not in present]
    if absent:  # written to the source after its substrates were copied
        found = await source.get_substrates(tenant, absent)
        if found:
            await _put_substrates(target, tenant, list(found.values()), done)
        present.update(found)
    kept = [r for r in relationships if r.source in present and r.target in present]
    done.relationships_skipped += len(relationships) - len(kept)
    answers = await target.put_relationships(tenant, kept)
    done.relationships += len(answers)
    done.relationships_new += sum(created for _, created in answers)


async def tenants_to_copy(source: SubstrateStore, named: Sequence[str] | None) -> list[str]:
    if named:
        return list(dict.fromkeys(named))
    if not isinstance(source, TenantListing):
        raise CommandError(
            f"the source store ({type(source).__name__}) cannot list its tenants; "
            "name them with --tenant T (once per tenant)"
        )
    return await source.tenants()


# -- the command -------------------------------------------------------------------------------


async def open_store(config_file: Path, role: str) -> tuple[SubstrateStore, str]:
    """The store the config file's storage plugin gives, opened; and that plugin's name."""
    from butterflyfx.core.context import ServerContext  # the server's machinery: when run

    ctx = ServerContext.build(read_config(config_file, os.environ))
    for implementation in reversed(ctx.plugins.hook.butterflyfx_storage.get_hookimpls()):
        plugin = implementation.plugin_name
        try:
            store = await await_maybe(call(implementation, ctx=ctx))
            if store is None:
                continue
            await store.open()
        except Exception as error:
            raise CommandError(
                f"cannot open the {role} store ({plugin}, from {config_file}): "
                f"{type(error).__name__}: {error}"
            ) from error
        return store, plugin
    raise CommandError(f"{config_file} loads no storage plugin: nothing to copy {role}")


async def copy_between(args: argparse.Namespace) -> int:
    source_file, target_file = Path(args.source), Path(args.target)
    source, source_plugin = await open_store(source_file, "source")
    try:
        target, target_plugin = await open_store(target_file, "target")
    except BaseException:
        await source.close()
        raise
    total = TenantCopy("")
    try:
        tenants = await tenants_to_copy(source, args.tenant)
        for tenant in tenants:
            done = await copy_tenant(source, target, tenant, batch=args.batch)
            print(f"{tenant}: {done.counts()}", flush=True)
            total.add(done)
    except CommandError:
        raise
    except Exception as error:  # a store gone away (StoreUnavailable) or refusing a write
        reason = str(error) if isinstance(error, StoreUnavailable) else repr(error)
        raise CommandError(
            f"the copy stopped: {reason}; run it again to go on (it skips what is copied)"
        ) from error
    finally:
        await asyncio.gather(source.close(), target.close())
    print(
        f"copied {len(tenants)} tenant{'' if len(tenants) == 1 else 's'} from {source_plugin} "
        f"({source_file}) to "
        f"{target_plugin} ({target_file}): {total.counts()}",
        flush=True,
    )
    return 0


def run_copy(args: argparse.Namespace) -> int:
    from .logs import configure_logging

    configure_logging("warning")  # stdout is for the counts
    if not 1 <= args.batch <= MAX_BATCH:
        raise CommandError(f"--batch must be 1 to {MAX_BATCH}, not {args.batch}")
    return asyncio.run(copy_between(args))


def add_copy_command(commands: Any) -> None:
    """Add ``copy`` to the CLI's subcommands (``commands`` is argparse's subparsers)."""
    parser = commands.add_parser(
        "copy",
        help="copy every substrate, invocation total and relationship from one config's "
        "store into another's",
        description="Copy the store config FROM names into the store config TO names, "
        "tenant by tenant, in batches, through the storage contract alone (any two storage "
        "plugins). Idempotent: a second run copies only what is new. Prints the counts.",
    )
    parser.add_argument("--from", dest="source", metavar="FILE", required=True,
                        help="TOML config of the store to copy from")  # fmt: skip
    parser.add_argument("--to", dest="target", metavar="FILE", required=True,
                        help="TOML config of the store to copy into")  # fmt: skip
    parser.add_argument(
        "--tenant", action="append", metavar="T",
        help="copy this tenant (repeat for more); default: every tenant of the source",
    )  # fmt: skip
    parser.add_argument(
        "--batch", type=int, default=DEFAULT_BATCH, metavar="N",
        help=f"substrates or relationships per write (default {DEFAULT_BATCH})",
    )  # fmt: skip
    parser.set_defaults(run=run_copy)
