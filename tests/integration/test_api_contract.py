"""Schemathesis over every operation of /openapi.json, as an admin (issue 9, the API's contract).

Explicit examples, the coverage phase's boundary cases, then fuzzed data, both schema-valid and
not; bounded and derandomized, so a run takes about a minute and repeats exactly. Every response
must be no server error, documented (status, content type, headers) and match its schema; a
schema-valid request is never refused by the request validators. The only server errors allowed
are the 502/503 of UPSTREAM (Mojang's and Paper's URLs point at a closed port) and of ONE_NODE
(a move needs a second node online).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from app.main import create_app
from app.settings import Settings
from tests.conftest import _reset
from tests.contract import FRESH, Seeds, closed_port, serve_in_thread

# Operations that reach Mojang or Paper, and what for; unreachable here, they answer 502 or 503.
UPSTREAM = {
    "GET /api/v2/versions/{server_type}": "Mojang's and Paper's version lists",
    "POST /api/v2/servers/": "the version list, to check a vanilla or paper version",
    "PUT /api/v2/servers/{server_id}": "the version list, to check a new version",
    "POST /api/v2/servers/{server_id}/version": "the version list, to check the target version",
    "POST /api/v2/groups/{group_id}/players": "Mojang's profile API, for an online player",
}
# Operations that need a second node, and the problem they answer with here, where one runs.
ONE_NODE = {"POST /api/v2/servers/{server_id}/move": (503, "urn:mcdash:problem:node-offline")}
EXAMPLES_PER_OPERATION = 40  # fuzzed cases; examples and coverage cases come on top
JWT_SECRET = "integration-test-secret-0123456789"


@dataclass
class Contract:
    url: str
    seeds: Seeds
    calls: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    by_operation: dict[str, Counter[int]] = field(default_factory=dict)


@pytest.fixture(scope="module")
async def contract(database_url, redis_url, tmp_path_factory):
    await _reset(database_url, redis_url)
    upstream = f"http://127.0.0.1:{closed_port()}"
    configured = Settings(
        database_url=database_url,
        redis_url=redis_url,
        data_dir=tmp_path_factory.mktemp("contract") / "data",
        jwt_secret=JWT_SECRET,
        rate_limit_auth="100000/minute",
        rate_limit_login_username="100000/minute",
        rate_limit_api_general="1000000/minute",
        rate_limit_console="100000/minute",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        log_json=True,
        log_level="ERROR",
        mojang_manifest_url=f"{upstream}/mc/game/version_manifest_v2.json",
        paper_api_url=f"{upstream}/v3",
        mojang_profile_api_url=upstream,
        mojang_timeout_seconds=2,
        fabric_meta_url=upstream,
        forge_maven_url=upstream,
        forge_promotions_url=upstream,
        neoforge_maven_url=upstream,
        safety_backup_timeout_seconds=2,  # no worker takes the backup a version change waits for
        server_port_range_start=20000,  # the fresh servers of FRESH each take a port
        server_port_range_end=40000,
        placement_memory_ratio=10.0,  # the fuzzer creates many servers with large heaps
    )
    with serve_in_thread(create_app(configured), configured) as url:
        run = Contract(url=url, seeds=Seeds(url))
        yield run
    print(f"\ncontract run: {run.calls.total()} requests, statuses {sorted(run.statuses.items())}")
    for label, codes in sorted(run.by_operation.items()):
        print(label, sorted(codes.items()))


def load_schema() -> Any:
    """The document the app serves at /openapi.json (built without starting the app)."""
    document = create_app(Settings(jwt_secret=JWT_SECRET)).openapi()
    loaded = schemathesis.openapi.from_dict(document)
    loaded.config.phases.update(phases=["examples", "coverage", "fuzzing"])
    loaded.config.generation.update(modes=list(schemathesis.GenerationMode))
    return loaded


def _problem_type(response: Any) -> str | None:
    try:
        return str(response.json().get("type"))
    except ValueError:
        return None


def no_server_error_but_upstreams(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code in (502, 503) and case.operation.label in UPSTREAM:
        return None
    expected = ONE_NODE.get(case.operation.label)
    if expected is not None and (response.status_code, _problem_type(response)) == expected:
        return None
    return not_a_server_error(ctx, response, case)


def schema_valid_input_is_not_refused_by_validation(
    ctx: Any, response: Any, case: Any
) -> bool | None:
    """A 400/422 to a schema-valid request must be a rule the schema cannot state (a taken name,
    a port outside the range), never the validators disagreeing with the published schema."""
    if case.meta and not case.meta.generation.mode.is_positive:
        return None
    if response.status_code in (400, 422):
        problem = response.json()
        assert not problem.get("errors"), f"schema-valid input refused: {problem['detail']}"
    if case.operation.definition.raw.get("security"):
        assert response.status_code != 401, "the admin's token was refused"
    return None


def method_checks_outside_file_paths(ctx: Any, response: Any, case: Any) -> bool | None:
    """405 with an Allow of exactly the documented methods. Not under /files/: there every path
    is also a file path (PUT .../files/notes.txt/history writes the file notes.txt/history),
    so no method is undeclared for it."""
    if "/files" in case.operation.path:
        return None
    unsupported_method(ctx, response, case)
    return allow_header_conformance(ctx, response, case)


CHECKS = [
    no_server_error_but_upstreams,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    method_checks_outside_file_paths,
    schema_valid_input_is_not_refused_by_validation,
]
# Event streams never end, so a generated call to one would wait for the server to stop; their
# contract (authentication, bounds, problem+json) is tests/integration/test_sse_params.py and
# tests/e2e/test_sse_*.py.
schema = load_schema().exclude(path_regex=r"/stream$")


def test_the_schema_under_test_is_the_one_served(contract):
    served = httpx.get(f"{contract.url}/openapi.json").json()
    assert served == schema.raw_schema


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_its_contract(case, contract):
    label = case.operation.label
    contract.calls[label] += 1
    if contract.calls[label] % 2 == 0 and case.path_parameters:
        fresh = FRESH.get(label)
        real = fresh(contract.seeds) if fresh else contract.seeds.kept
        case.path_parameters = {
            name: real.get(name, value) for name, value in case.path_parameters.items()
        }
    token = (
        contract.seeds.fresh_token()
        if label == "POST /api/v2/auth/logout"
        else contract.seeds.headers["Authorization"].removeprefix("Bearer ")
    )
    response = case.call(base_url=contract.url, headers={"Authorization": f"Bearer {token}"})
    contract.statuses[response.status_code] += 1
    contract.by_operation.setdefault(label, Counter())[response.status_code] += 1
    case.validate_response(response, checks=CHECKS)
