"""quart-schema's OpenAPI document, adjusted: problem media type, bodiless 204s, plain ids."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quart_schema import OpenAPIProvider
from quart_schema.openapi import QUART_SCHEMA_OPERATION_ID_ATTRIBUTE

from butterflyfx.interface.machine.models import NoContent, NotModified, ProblemBody

from .json import PROBLEM_JSON


class ButterflyOpenAPI(OpenAPIProvider):
    def build_response_object(
        self, model: type[Any], headers_model: type[Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if model is NoContent or model is NotModified:
            return {"description": model.__doc__}, {}
        response, definitions = super().build_response_object(model, headers_model)
        if model is ProblemBody:
            response["content"] = {PROBLEM_JSON: response["content"]["application/json"]}
        return response, definitions

    def operation_id(self, method: str, path: str, func: Callable[..., Any]) -> str | None:
        """The handler's own name (``get_substrate``), which already says what it does."""
        return str(getattr(func, QUART_SCHEMA_OPERATION_ID_ATTRIBUTE, func.__name__))
