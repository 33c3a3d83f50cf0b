"""docker-compose.yml and k8s/*.yaml name only settings mcdash reads (`Settings` fields, prefix
MCDASH_, case-insensitive as pydantic-settings reads them), with values it accepts, and each
mcdash process they run starts with the settings it gets. Nodes: test_deployment_nodes.py."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from unittest import mock

import pytest
from pydantic import ValidationError

from app.backups.infrastructure.storage import storage_from_settings
from app.settings import InsecureSetting, Settings
from tests.deployment import (
    COMPOSE_FILE,
    DEPLOYMENT_FILES,
    EXAMPLE_SECRET,
    EnvEntry,
    compose_entries,
    containers,
    effective_env,
    entries_of,
    is_mcdash_service,
    k8s_documents,
    k8s_entries,
    load_compose,
    load_documents,
    name,
    pod_template,
    relative,
)

FIELDS = {f"MCDASH_{field}".upper() for field in Settings.model_fields}
# MCDASH_* names that are not settings, and what reads them instead.
OTHER_NAMES = {
    "MCDASH_VERSION": "compose: the tag of the images it builds",
    "MCDASH_ADMIN_PASSWORD": "mcdash create-admin",
}
# A name in the text (comments too): `MCDASH_BACKUP_S3_*` stands for the names it begins.
_TOKEN = re.compile(r"(?<!\w)(?P<name>MCDASH_[A-Z0-9_]*[A-Z0-9])(?P<star>_?\*)?")


# ---------------------------------------------------------------- checks


def name_problems(text: str, entries: Iterable[EnvEntry]) -> list[str]:
    """MCDASH_* names that no setting has: variables (case-insensitive, like pydantic-settings)
    and names in the text, comments included."""
    known = FIELDS | set(OTHER_NAMES)
    problems = [
        f"{entry.where}: {entry.name} is no setting"
        for entry in entries
        if entry.name.upper().startswith("MCDASH_") and entry.name.upper() not in known
    ]
    for match in _TOKEN.finditer(text):
        word = match["name"]
        line = text.count("\n", 0, match.start()) + 1
        if match["star"]:
            prefix = word + "_"
            if not any(field.startswith(prefix) for field in known):
                problems.append(f"line {line}: no setting begins with {prefix}")
        elif word not in known:
            problems.append(f"line {line}: {word} is no setting")
    return problems


def load_settings(env: Mapping[str, str]) -> Settings:
    """Settings as a process with exactly these MCDASH_* variables reads them."""
    kept = {
        key: value for key, value in os.environ.items() if not key.upper().startswith("MCDASH_")
    }
    with mock.patch.dict(os.environ, {**kept, **env}, clear=True):
        return Settings(_env_file=None)


def refusal(env: Mapping[str, str]) -> str | None:
    try:
        load_settings(env)
    except (ValidationError, InsecureSetting) as exc:
        return " ".join(str(exc).split())
    return None


def value_problems(entries: Iterable[EnvEntry]) -> list[str]:
    problems = []
    for entry in entries:
        if entry.value is None or entry.name.upper() not in FIELDS:
            continue
        refused = refusal({entry.name: entry.value})
        if refused:
            problems.append(f"{entry.where}: {entry.name}={entry.value!r} is refused: {refused}")
    return problems


def startup_problems(env: Mapping[str, str]) -> list[str]:
    """What stops a process with these settings before it serves: Settings refusing one (an
    unknown log level and a reversed port range included), or no usable backup storage."""
    try:
        settings = load_settings(env)
    except (ValidationError, InsecureSetting) as exc:
        return [" ".join(str(exc).split())]
    problems = []
    try:
        storage_from_settings(settings)
    except (RuntimeError, ValueError) as exc:
        problems.append(f"backup storage: {exc}")
    return problems


# ---------------------------------------------------------------- the tests


@pytest.mark.parametrize("label", DEPLOYMENT_FILES)
def test_every_mcdash_name_is_a_setting(label: str) -> None:
    text = DEPLOYMENT_FILES[label].read_text()
    assert name_problems(text, entries_of(label, text)) == []


@pytest.mark.parametrize("label", DEPLOYMENT_FILES)
def test_every_literal_value_is_accepted(label: str) -> None:
    text = DEPLOYMENT_FILES[label].read_text()
    assert value_problems(entries_of(label, text)) == []


def _compose_workloads() -> dict[str, dict[str, str]]:
    compose = load_compose()
    return {
        f"compose:{service_name}": {
            entry.name: entry.value
            for entry in compose_entries({"services": {service_name: service}})
            if entry.value is not None
        }
        for service_name, service in compose["services"].items()
        if is_mcdash_service(service)
    }


def _k8s_workloads() -> dict[str, dict[str, str]]:
    """Each mcdash container's literal environment: its envFrom ConfigMaps and the example
    Secret (placeholders left out), then its own env."""
    docs = k8s_documents()
    sources = {
        (obj["kind"], name(obj)): {
            e.name: e.value for e in k8s_entries([obj]) if e.value is not None
        }
        for obj in [*docs, *load_documents(EXAMPLE_SECRET.read_text())]
        if obj["kind"] in ("ConfigMap", "Secret")
    }
    return {
        f"k8s:{obj['kind']}/{name(obj)}/{container['name']}": effective_env(obj, container, sources)
        for obj in docs
        for container in containers(pod_template(obj) or {})
        if "mcdash" in str(container.get("image", ""))
    }


WORKLOADS = {**_compose_workloads(), **_k8s_workloads()}


@pytest.mark.parametrize("workload", WORKLOADS)
def test_each_mcdash_process_starts_with_its_settings(workload: str) -> None:
    assert startup_problems(WORKLOADS[workload]) == []


# ---------------------------------------------------------------- the checks catch mistakes

BROKEN_COMPOSE = {
    "s3-endpoint-under-its-old-name": (
        "MCDASH_BACKUP_S3_ENDPOINT: ${MCDASH_BACKUP_S3_ENDPOINT:-minio:9000}",
        "MCDASH_S3_ENDPOINT: ${MCDASH_S3_ENDPOINT:-minio:9000}",
        "MCDASH_S3_ENDPOINT is no setting",
    ),
    "lowercase-unknown-name": (
        "MCDASH_NODE_NAME: a\n",
        "MCDASH_NODE_NAME: a\n      mcdash_nodes: a\n",
        "mcdash_nodes is no setting",
    ),
    "unknown-name-in-a-comment": (
        "# All credentials below",
        "# Set MCDASH_S3_BUCKET to change the bucket.\n# All credentials below",
        "MCDASH_S3_BUCKET is no setting",
    ),
    "backup-storage-minio": (
        "${MCDASH_BACKUP_STORAGE:-s3}",
        "${MCDASH_BACKUP_STORAGE:-minio}",
        "MCDASH_BACKUP_STORAGE='minio' is refused",
    ),
    "node-name-with-underscore": (
        "MCDASH_NODE_NAME: b\n",
        "MCDASH_NODE_NAME: node_b\n",
        "MCDASH_NODE_NAME='node_b' is refused",
    ),
    "rate-limit-per-fortnight": (
        "MCDASH_LOG_LEVEL: ${MCDASH_LOG_LEVEL:-info}",
        "MCDASH_LOG_LEVEL: ${MCDASH_LOG_LEVEL:-info}\n  MCDASH_RATE_LIMIT_AUTH: 5/fortnight",
        "MCDASH_RATE_LIMIT_AUTH='5/fortnight' is refused",
    ),
    "jwt-secret-short-literal": (
        "MCDASH_JWT_SECRET: ${MCDASH_JWT_SECRET:?set MCDASH_JWT_SECRET}",
        "MCDASH_JWT_SECRET: ${MCDASH_JWT_SECRET:-devsecret}",
        "MCDASH_JWT_SECRET='devsecret' is refused",
    ),
}


@pytest.mark.parametrize("case", BROKEN_COMPOSE)
def test_a_wrong_name_or_value_in_compose_fails(case: str) -> None:
    old, new, expected = BROKEN_COMPOSE[case]
    text = COMPOSE_FILE.read_text()
    assert old in text
    broken = text.replace(old, new, 1)
    entries = entries_of(relative(COMPOSE_FILE), broken)
    problems = name_problems(broken, entries) + value_problems(entries)
    assert any(expected in problem for problem in problems), problems


STOPPING = {
    "s3-endpoint-with-scheme": (
        {"MCDASH_BACKUP_STORAGE": "s3", "MCDASH_BACKUP_S3_ENDPOINT": "http://minio:9000"},
        "takes no scheme or path",
    ),
    "s3-without-endpoint": (
        {"MCDASH_BACKUP_STORAGE": "s3"},
        "MCDASH_BACKUP_S3_ENDPOINT is required",
    ),
    "log-level-verbose": ({"MCDASH_LOG_LEVEL": "verbose"}, "Input should be 'DEBUG'"),
    "port-range-reversed": (
        {"MCDASH_SERVER_PORT_RANGE_START": "25600", "MCDASH_SERVER_PORT_RANGE_END": "25565"},
        "(25600) is above MCDASH_SERVER_PORT_RANGE_END (25565)",
    ),
    "node-secret-31-bytes": ({"MCDASH_NODE_SECRET": "k3Jx9QzL2mW8vR4tY7uB1nC6hF0dG5a"}, "31 bytes"),
}


@pytest.mark.parametrize("case", STOPPING)
def test_settings_that_stop_a_process_fail(case: str) -> None:
    env, expected = STOPPING[case]
    problems = startup_problems(env)
    assert any(expected in problem for problem in problems), problems
