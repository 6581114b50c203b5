"""The ButterflyFX kernel: pure substrate math, standard library only, no I/O."""

from .dimensions import (
    DIMENSIONS,
    FIBONACCI_SEQUENCE,
    Dimension,
    Division,
    InvocationStats,
    SubstrateFacts,
    divide,
    rebuild,
)
from .errors import (
    EvaluationError,
    EvaluationLimitExceeded,
    ExpressionRejected,
    InconsistentDimensions,
    InvalidRelationship,
    InvalidSubstrateId,
    KernelError,
    UnknownExpressionType,
)
from .expressions import (
    BUILTIN_LANGUAGES,
    DEFAULT_LIMITS,
    CompiledExpression,
    ExpressionInfo,
    ExpressionLanguage,
    Limits,
    ParameterInfo,
    canonical_form,
    compile_expression,
    substrate_identity,
)
from .identity import format_id, identity_from_canonical, parse_id, relationship_identity
from .json_values import JSONValue, to_json_value
from .manifold import ManifoldPoint, manifold_point
from .multiply import multiply
from .product import compose_product
from .relationship import (
    RELATIONSHIP_TYPES,
    SELF_LOOP_TYPES,
    Relationship,
    normalize_relationship_type,
)
from .substrate import Substrate, format_timestamp, parse_timestamp

__all__ = [
    "BUILTIN_LANGUAGES",
    "DEFAULT_LIMITS",
    "DIMENSIONS",
    "FIBONACCI_SEQUENCE",
    "RELATIONSHIP_TYPES",
    "SELF_LOOP_TYPES",
    "CompiledExpression",
    "Dimension",
    "Division",
    "InvocationStats",
    "ManifoldPoint",
    "Relationship",
    "Substrate",
    "SubstrateFacts",
    "compose_product",
    "divide",
    "format_timestamp",
    "manifold_point",
    "multiply",
    "normalize_relationship_type",
    "parse_timestamp",
    "rebuild",
    "EvaluationError",
    "EvaluationLimitExceeded",
    "ExpressionInfo",
    "ExpressionLanguage",
    "ExpressionRejected",
    "InconsistentDimensions",
    "InvalidRelationship",
    "InvalidSubstrateId",
    "JSONValue",
    "KernelError",
    "Limits",
    "ParameterInfo",
    "UnknownExpressionType",
    "canonical_form",
    "compile_expression",
    "format_id",
    "identity_from_canonical",
    "parse_id",
    "relationship_identity",
    "substrate_identity",
    "to_json_value",
]
