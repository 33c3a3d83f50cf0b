"""The API's own contract: every problem response documented once, as application/problem+json.

Routes declare what their handlers raise beyond the rules below with `responses=problems(...)`;
`install_openapi` adds what follows from the shape of each operation: 401/403 where a bearer
token is required, 404 where the path names something, 400/413/415 where there is a body, 422 where
there is input, 429 on every /api/ route (api_general), and it replaces FastAPI's
`HTTPValidationError` by the real 422 body. Request body examples are lifted to the media type,
where /docs takes them from.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from app.shared.problems import PROBLEM_JSON

PROBLEM_REF = "#/components/schemas/Problem"
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}

WHY = {
    400: "The body cannot be read: not UTF-8, or not a well-formed form",
    401: "No valid bearer access token: missing, expired, revoked, or its user may not sign in",
    403: "The token's user lacks the permission this operation needs",
    404: "Something the path names does not exist, or is not yours to see",
    413: "The body passes this operation's limit (`limit`, in bytes); nothing was processed",
    415: "The body's Content-Type is not one this operation takes",
    422: "Invalid input: a parameter or the body breaks its schema (`errors`) or a rule (`field`)",
    429: "Rate limited: retry after `retry_after` seconds (also the Retry-After header)",
}


def _content() -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}


HEADERS = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
}


class ValidationIssue(BaseModel):
    loc: list[str] = Field(description="where: body, query, path or header, then the field")
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem; some errors add fields of their own besides those named here."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:mcdash:problem:server-not-found",
                    "title": "Not found",
                    "status": 404,
                    "detail": "server 0b8f... not found",
                    "instance": "/api/v2/servers/0b8f...",
                    "request_id": "5f0c2e1a9b7d4c3e",
                }
            ]
        },
    )

    type: str = Field(description="a stable URN naming the kind of problem")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    instance: str | None = Field(default=None, description="the request path")
    request_id: str | None = Field(default=None, description="also the X-Request-ID header")
    errors: list[ValidationIssue] | None = Field(
        default=None, description="422: each invalid input"
    )
    field: str | None = Field(default=None, description="the input that broke a rule")
    reason: str | None = Field(default=None, description="a stable word for why")
    limit: int | None = Field(default=None, description="the bound that was passed")
    retry_after: int | None = Field(default=None, description="429: seconds to wait")
    allowed_range: list[int] | None = Field(default=None, description="the bounds of a number")


def problems(why: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for the problems a route's handlers raise, each with why it happens."""
    return {code: {"description": text, "content": _content()} for code, text in why.items()}


def install_openapi(app: FastAPI) -> None:
    """Post-process FastAPI's schema once, the first time it is asked for."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            document_problems(schema)
            lift_examples(schema)
        return app.openapi_schema  # type: ignore[return-value]  # set by generate()

    app.openapi = openapi  # type: ignore[method-assign]


def _operations(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (path, operation)
        for path, item in schema.get("paths", {}).items()
        for method, operation in item.items()
        if method in _METHODS
    ]


def _enumerated(schema: dict[str, Any]) -> bool:
    """A path parameter of fixed values (an enum) names no resource that could be missing."""
    return "enum" in schema or "$ref" in schema


def _applicable(path: str, operation: dict[str, Any]) -> list[int]:
    """The problems that follow from the operation's shape."""
    parameters = operation.get("parameters", [])
    codes = []
    if operation.get("security"):
        codes += [401, 403]
    if any(p["in"] == "path" and not _enumerated(p.get("schema", {})) for p in parameters):
        codes.append(404)
    if "requestBody" in operation:
        codes += [400, 413, 415]
    if parameters or "requestBody" in operation:
        codes.append(422)
    if path.startswith("/api/"):
        codes.append(429)
    return codes


def document_problems(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION:
        components.pop(name, None)
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    for path, operation in _operations(schema):
        responses = operation.setdefault("responses", {})
        for code in _applicable(path, operation):
            entry = responses.setdefault(str(code), {})
            specific = entry.get("description")
            if specific in (None, "Validation Error"):
                entry["description"] = WHY[code]
            elif WHY[code] not in specific:
                entry["description"] = f"{WHY[code]}; or {specific}"
            entry["content"] = _content()
        for code, entry in responses.items():
            if int(code) >= 400 and "content" not in entry:
                entry["content"] = _content()
            if int(code) in HEADERS:
                entry["headers"] = HEADERS[int(code)]
            entry.setdefault("description", HTTPStatus(int(code)).phrase)


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        resolved: dict[str, Any] = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return resolved
    return node


def lift_examples(schema: dict[str, Any]) -> None:
    """Give each request body media type the first example of its schema, for /docs."""
    for _, operation in _operations(schema):
        content = operation.get("requestBody", {}).get("content", {})
        for media in content.values():
            target = _resolve(schema, media.get("schema", {}))
            if "anyOf" in target:  # an optional body: Model | None
                target = next((_resolve(schema, o) for o in target["anyOf"] if "$ref" in o), target)
            examples = target.get("examples")
            if examples and "example" not in media:
                media["example"] = examples[0]
