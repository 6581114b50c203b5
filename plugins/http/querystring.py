"""Reading query parameters: each malformed one is a 400 naming it, an unknown one too."""

from __future__ import annotations

from collections.abc import Iterable

from werkzeug.datastructures import MultiDict

from butterflyfx.core.problems import invalid

# More digits than any ceiling could need; past it a number is refused without parsing it.
MAX_DIGITS = 18


def refuse_unknown(args: MultiDict[str, str], known: Iterable[str]) -> None:
    """A parameter this endpoint does not take is a mistake (``max_node=5``), not a no-op."""
    allowed = set(known)
    for name in args:
        if name not in allowed:
            shown = name[:64]
            raise invalid(
                shown,
                f"{shown!r} is not a parameter of this endpoint; it takes "
                f"{', '.join(sorted(allowed))}",
                status=400,
            )


def whole_number(args: MultiDict[str, str], name: str) -> int | None:
    """The parameter as a whole number of 0 or more, or None when absent; the service
    checks its range (a value over a ceiling is a 422 naming the ceiling)."""
    raw = args.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > MAX_DIGITS:
        raise invalid(name, f"{name} must be a whole number, not {raw[:32]!r}", status=400)
    return int(raw)


def name_list(args: MultiDict[str, str], name: str) -> list[str] | None:
    """A comma-separated list (``types=dependency,sibling``), or None when absent."""
    raw = args.get(name)
    if raw is None:
        return None
    names = [part.strip() for part in raw.split(",") if part.strip()]
    if not names:
        raise invalid(
            name, f"{name} names no type: give one or more, separated by commas", status=400
        )
    return names


def required(args: MultiDict[str, str], name: str) -> str:
    value = args.get(name)
    if value is None or not value.strip():
        raise invalid(name, f"{name} is required", status=400)
    return value.strip()
