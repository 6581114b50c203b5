"""Every failure a client can cause, as an RFC 9457 problem with a stable ``type``.

Services raise :class:`ProblemError`; :func:`problem_for` also turns the kernel's typed
errors into problems, so every interface (HTTP today, others later) answers alike. A
store that is away (:class:`~butterflyfx.core.store.StoreUnavailable`) is no client's
fault either, but it has a problem too: 503 ``unavailable`` with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from butterflyfx.kernel import (
    EvaluationError,
    EvaluationLimitExceeded,
    ExpressionRejected,
    InconsistentDimensions,
    InvalidRelationship,
    InvalidSubstrateId,
    UnknownExpressionType,
)

from .store import StoreUnavailable

TYPE_BASE = "https://butterflyfx.dev/problems/"


@dataclass(frozen=True)
class Problem:
    status: int
    slug: str
    title: str
    detail: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # sent with the response

    @property
    def type(self) -> str:
        return TYPE_BASE + self.slug

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class ProblemError(Exception):
    """An error that already knows the problem it becomes."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        # Who was refused, when the guard knew (a 403 or 429 after authentication): for
        # the access log's tenant and subject, never for the answer.
        self.principal: Any = None
        super().__init__(problem.detail)


def not_found(kind: str, ident: str, field_name: str | None = None) -> ProblemError:
    extra: dict[str, Any] = {"field": field_name} if field_name else {}
    return ProblemError(
        Problem(404, "not-found", f"{kind.capitalize()} not found", f"no {kind} {ident}", extra)
    )


def invalid(field_name: str, detail: str, status: int = 422, **extra: Any) -> ProblemError:
    slug = "bad-request" if status == 400 else "validation-failed"
    title = "Bad request" if status == 400 else "Validation failed"
    return ProblemError(Problem(status, slug, title, detail, {"field": field_name, **extra}))


def store_unavailable(store: str, retry_after: int) -> Problem:
    """503: ``store`` cannot be reached now; the client may retry after ``retry_after`` s.
    Only the store's name is told: where it runs and why it failed go to the log."""
    return Problem(
        503, "unavailable", "Service unavailable",
        f"{store} cannot be reached right now; retry after {retry_after} s",
        {"store": store, "retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )  # fmt: skip


def problem_for(error: BaseException, field_name: str | None = None) -> Problem | None:
    """The problem for a kernel or core error, or None if the server failed (a 500)."""
    if isinstance(error, ProblemError):
        return error.problem
    if isinstance(error, StoreUnavailable):
        return store_unavailable(error.store, error.retry_after)
    where = {"field": field_name} if field_name else {}
    if isinstance(error, InvalidSubstrateId):
        return Problem(400, "invalid-id", "Invalid substrate id", str(error), where)
    if isinstance(error, UnknownExpressionType):
        return Problem(
            422, "unknown-expression-type", "Unknown expression type", str(error),
            {"field": "expression_type", "known_types": error.known},
        )  # fmt: skip
    if isinstance(error, ExpressionRejected):
        return Problem(
            422, "expression-rejected", "Expression rejected", str(error),
            {"field": field_name or "expression_code", "reason": error.reason,
             "line": error.line, "column": error.column},
        )  # fmt: skip
    if isinstance(error, EvaluationLimitExceeded):
        return Problem(
            422, "limit-exceeded", "Evaluation limit exceeded", str(error),
            {"limit": error.limit, "limit_value": error.value},
        )  # fmt: skip
    if isinstance(error, EvaluationError):
        return Problem(
            422, "evaluation-error", "Evaluation failed", str(error),
            {"error_type": error.error_type},
        )  # fmt: skip
    if isinstance(error, InconsistentDimensions):
        return Problem(
            422, "inconsistent-dimensions", "Inconsistent dimensions", str(error),
            {"field": field_name or "dimensions", "dimension": error.dimension},
        )  # fmt: skip
    if isinstance(error, InvalidRelationship):
        return Problem(422, "invalid-relationship", "Invalid relationship", str(error), where)
    return None
