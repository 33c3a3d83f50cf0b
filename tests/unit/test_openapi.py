"""The published schema documents every problem an operation can answer, as problem+json."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.main import create_app
from app.settings import Settings
from app.shared.openapi import PROBLEM_REF
from app.shared.problems import PROBLEM_JSON


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return create_app(Settings(jwt_secret="unit-test-secret-0123456789-abcdef")).openapi()


def operation(schema: dict[str, Any], label: str) -> dict[str, Any]:
    method, path = label.split(" ", 1)
    found: dict[str, Any] = schema["paths"][path][method.lower()]
    return found


def codes(schema: dict[str, Any], label: str) -> set[int]:
    return {int(code) for code in operation(schema, label)["responses"]}


def every_operation(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
    ]


def test_fastapis_validation_error_is_replaced_by_the_problem(schema):
    assert "HTTPValidationError" not in str(schema)
    assert {"Problem", "ValidationIssue"} <= set(schema["components"]["schemas"])
    problem = schema["components"]["schemas"]["Problem"]["properties"]
    assert {"type", "title", "status", "detail", "instance", "request_id", "errors"} <= set(problem)


def test_every_error_response_is_a_problem_with_a_reason(schema):
    for label, op in every_operation(schema):
        for code, response in op["responses"].items():
            if int(code) >= 400 and label != "GET /ready":  # its 503 is the readiness body
                assert response["content"] == {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}, (
                    label,
                    code,
                )
                assert response["description"], (label, code)


@pytest.mark.parametrize(
    ("label", "expected", "absent"),
    [
        ("GET /api/v2/servers/{server_id}", {401, 403, 404, 422, 429}, {413, 415}),
        ("POST /api/v2/servers/", {401, 403, 409, 413, 415, 422, 429, 502}, {404}),
        ("POST /api/v2/auth/login", {401, 413, 415, 422, 429}, {403, 404}),
        ("GET /api/v2/users/me", {401, 403, 429}, {404, 422}),
        ("GET /api/v2/versions/{server_type}", {401, 403, 422, 429, 502}, {404}),
        (
            "PUT /api/v2/servers/{server_id}/files/{file_path}",
            {400, 409, 412, 413, 415, 428},
            set(),
        ),
        ("GET /api/v2/backups/{backup_id}/download", {404, 409, 410, 429}, {413}),
        ("POST /api/v2/servers/{server_id}/console", {403, 409, 429, 503}, set()),
        ("POST /api/v2/groups/{group_id}/players", {409, 503}, set()),
        ("PUT /api/v2/groups/{group_id}", {409, 412}, set()),
        ("GET /health", set(), {401, 429}),
    ],
    ids=[
        "path-id-read",
        "create-server",
        "public-login",
        "no-path-no-input",
        "enum-path",
        "file-edit",
        "backup-download",
        "console",
        "add-player",
        "group-if-match",
        "health",
    ],
)
def test_each_operation_names_the_problems_it_can_answer(schema, label, expected, absent):
    assert expected <= codes(schema, label)
    assert not absent & codes(schema, label)


def test_every_json_body_has_an_example_in_its_media_type(schema):
    for label, op in every_operation(schema):
        content = op.get("requestBody", {}).get("content", {})
        for media_type in {"application/json", "text/plain"} & set(content):
            assert "example" in content[media_type], (label, media_type)


@pytest.mark.parametrize(
    ("label", "media_type"),
    [
        ("GET /api/v2/servers/{server_id}/files/{file_path}/download", "*/*"),
        ("GET /api/v2/backups/{backup_id}/download", "application/octet-stream"),
    ],
    ids=["file-download-any-type", "backup-download-octet-stream"],
)
def test_downloads_declare_what_they_send(schema, label, media_type):
    assert set(operation(schema, label)["responses"]["200"]["content"]) == {media_type}


def test_mkdir_documents_its_201_without_a_body(schema):
    created = operation(schema, "POST /api/v2/servers/{server_id}/files/mkdir")["responses"]["201"]
    assert "content" not in created


def test_readiness_documents_its_own_503_body(schema):
    not_ready = operation(schema, "GET /ready")["responses"]["503"]["content"]["application/json"]
    assert not_ready["schema"]["$ref"].endswith("/ReadinessResponse")


@pytest.mark.parametrize(
    ("before", "published"),
    [
        ("18446744073709551615-18446744073709551615", True),
        ("00-000", True),
        ("9999999999999999999-0", True),
        ("99999999999999999999-0", False),
        ("18446744073709551616-0", False),
        ("0-18446744073709551616", False),
    ],
    ids=[
        "before-largest",
        "before-leading-zeros",
        "before-19-nines",
        "before-99999999999999999999-0",
        "before-2**64",
        "before-sequence-2**64",
    ],
)
def test_the_published_console_line_id_is_what_the_api_takes(schema, before, published):
    """The API refuses ids past 64 bits; the schema said only "20 digits", so it published them."""
    parameters = operation(schema, "GET /api/v2/servers/{server_id}/logs")["parameters"]
    pattern = next(p for p in parameters if p["name"] == "before")["schema"]["pattern"]
    assert bool(re.fullmatch(pattern, before)) is published


@pytest.mark.parametrize(
    ("label", "code", "header"),
    [
        ("GET /api/v2/servers/{server_id}", "401", "WWW-Authenticate"),
        ("POST /api/v2/auth/login", "401", "WWW-Authenticate"),
        ("GET /api/v2/groups/", "429", "Retry-After"),
    ],
    ids=["401-read", "401-login", "429-list"],
)
def test_problems_document_their_headers(schema, label, code, header):
    assert header in operation(schema, label)["responses"][code]["headers"]
