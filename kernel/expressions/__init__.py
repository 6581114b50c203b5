"""Expression languages: the built-in ``lambda`` and ``constant``, and room for more.

A language is any object with a ``name``, ``canonicalize(code, limits) -> str`` and
``compile(code, limits) -> CompiledExpression``; plugins add theirs through the core's
``expression_languages`` hook, and pass them here as ``languages``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ..errors import UnknownExpressionType
from ..identity import identity_from_canonical
from .compiled import CompiledExpression, ExpressionInfo, ParameterInfo
from .constant import ConstantLanguage
from .lambda_lang import LambdaLanguage
from .limits import DEFAULT_LIMITS, Limits


class ExpressionLanguage(Protocol):
    """What the kernel needs of an expression language."""

    name: str

    def canonicalize(self, code: str, limits: Limits) -> str:
        """The canonical text of ``code``; raise ``ExpressionRejected`` if it is not valid."""
        ...

    def compile(self, code: str, limits: Limits) -> CompiledExpression:
        """Check and compile ``code`` once, for many invocations."""
        ...


BUILTIN_LANGUAGES: Mapping[str, ExpressionLanguage] = {
    "lambda": LambdaLanguage(),
    "constant": ConstantLanguage(),
}


def _language(
    expression_type: str, languages: Mapping[str, ExpressionLanguage] | None
) -> ExpressionLanguage:
    table = BUILTIN_LANGUAGES if languages is None else languages
    language = table.get(expression_type) if isinstance(expression_type, str) else None
    if language is None:
        raise UnknownExpressionType(str(expression_type), list(table))
    return language


def compile_expression(
    expression_type: str,
    expression_code: str,
    limits: Limits = DEFAULT_LIMITS,
    languages: Mapping[str, ExpressionLanguage] | None = None,
) -> CompiledExpression:
    """Check and compile an expression once, for many invocations.

    Raises ``ExpressionRejected`` or ``UnknownExpressionType``.
    """
    return _language(expression_type, languages).compile(expression_code, limits)


def canonical_form(
    expression_type: str,
    expression_code: str,
    limits: Limits = DEFAULT_LIMITS,
    languages: Mapping[str, ExpressionLanguage] | None = None,
) -> str:
    """The canonical text of an expression, from which its identity is hashed."""
    return _language(expression_type, languages).canonicalize(expression_code, limits)


def substrate_identity(
    expression_type: str,
    expression_code: str,
    limits: Limits = DEFAULT_LIMITS,
    languages: Mapping[str, ExpressionLanguage] | None = None,
) -> int:
    """The 64-bit identity of an expression: BLAKE2b over its type and canonical form."""
    canonical = canonical_form(expression_type, expression_code, limits, languages)
    return identity_from_canonical(expression_type, canonical)


__all__ = [
    "BUILTIN_LANGUAGES",
    "DEFAULT_LIMITS",
    "CompiledExpression",
    "ExpressionInfo",
    "ExpressionLanguage",
    "Limits",
    "ParameterInfo",
    "canonical_form",
    "compile_expression",
    "substrate_identity",
]
