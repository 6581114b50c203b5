"""The kernel's typed errors: every way a substrate operation can fail has one."""

from __future__ import annotations


class KernelError(Exception):
    """Base of every error the kernel raises on purpose."""


class InvalidSubstrateId(KernelError, ValueError):
    """A string that is not a substrate id (``0x`` and up to 16 hex digits)."""


class UnknownExpressionType(KernelError, ValueError):
    """An ``expression_type`` no registered language handles."""

    def __init__(self, expression_type: str, known: list[str]) -> None:
        self.expression_type = expression_type
        self.known = sorted(known)
        super().__init__(
            f"unknown expression_type {expression_type!r}; known types: {', '.join(self.known)}"
        )


class ExpressionRejected(KernelError, ValueError):
    """An expression refused before it ever runs, with the position of the offence.

    ``line`` and ``column`` are 1-based and count characters; both are None when the
    reason concerns the whole text (its length, for instance).
    """

    def __init__(self, reason: str, line: int | None = None, column: int | None = None) -> None:
        self.reason = reason
        self.line = line
        self.column = column
        where = f" at line {line}, column {column}" if line is not None else ""
        super().__init__(f"{reason}{where}")


class EvaluationLimitExceeded(KernelError):
    """An invocation stopped because it would pass one of the runtime limits."""

    def __init__(self, limit: str, value: int | float, detail: str) -> None:
        self.limit = limit
        self.value = value
        self.detail = detail
        super().__init__(f"{detail} (limit {limit} = {value})")


class EvaluationError(KernelError):
    """An ordinary failure while evaluating: division by zero, a wrong type, a missing key."""

    def __init__(self, error_type: str, message: str) -> None:
        self.error_type = error_type
        self.message = message
        super().__init__(f"{error_type}: {message}")


class InconsistentDimensions(KernelError, ValueError):
    """Dimensions given to ``multiply`` that do not describe one substrate."""

    def __init__(self, dimension: str, reason: str) -> None:
        self.dimension = dimension
        self.reason = reason
        super().__init__(f"dimension {dimension}: {reason}")


class InvalidRelationship(KernelError, ValueError):
    """A relationship with an unknown type or malformed ends."""
