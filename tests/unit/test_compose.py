"""docker-compose.yml runs nodes for real: the API keeps no server data and reaches each
worker's agent on the compose network; each worker has its own volume and game ports."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deployment import (
    Obj,
    compose_command,
    compose_environment,
    compose_literal,
    is_compose_worker,
    is_mcdash_service,
    load_compose,
)

COMPOSE = load_compose()
PROMETHEUS = Path(__file__).resolve().parents[2] / "ops" / "prometheus.yml"
SERVICES: dict[str, Obj] = COMPOSE["services"]
WORKERS = {
    key: svc for key, svc in SERVICES.items() if is_mcdash_service(svc) and is_compose_worker(svc)
}
OTHERS = {
    key: svc for key, svc in SERVICES.items() if is_mcdash_service(svc) and key not in WORKERS
}
_REQUIRED = re.compile(r"^\$\{(?P<var>\w+):\?[^}]*\}$")


def env(service: Obj) -> dict[str, str | None]:
    return {key: compose_literal(raw) for key, raw in compose_environment(service).items()}


def port_range(text: str) -> range:
    first, _, last = text.partition("-")
    return range(int(first), int(last or first) + 1)


def published(service: Obj) -> list[tuple[range, range]]:
    """(host ports, container ports) of each `ports` entry, short or long syntax."""
    pairs = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            target = port_range(str(entry["target"]))
            pairs.append((port_range(str(entry.get("published", entry["target"]))), target))
            continue
        parts = str(entry).split("/")[0].split(":")
        pairs.append(
            (port_range(parts[-2] if len(parts) > 1 else parts[-1]), port_range(parts[-1]))
        )
    return pairs


def mounts(service: Obj) -> dict[str, str]:
    """Container path -> source (a named volume or a host path) of each mount."""
    found = {}
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            found[entry["target"]] = str(entry.get("source", ""))
        else:
            source, target = str(entry).split(":")[:2]
            found[target] = source
    return found


def test_there_are_workers_and_an_api() -> None:
    assert len(WORKERS) >= 1
    assert {"api", "relay", "scheduler"} <= set(OTHERS)


def test_the_relay_dispatches_the_events_in_its_own_process_and_is_scraped() -> None:
    relays = [key for key, svc in OTHERS.items() if compose_command(svc)[:2] == ["mcdash", "relay"]]
    assert relays == ["relay"]
    assert env(SERVICES["api"]).get("MCDASH_RELAY_ENABLED") == "false"
    assert env(SERVICES["relay"]).get("MCDASH_RELAY_ENABLED") in (None, "true")
    _, _, port = str(env(SERVICES["relay"]).get("MCDASH_RELAY_METRICS_LISTEN")).rpartition(":")
    assert port in [str(p) for p in SERVICES["relay"].get("expose", [])]
    scraped = [
        target
        for job in yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    assert f"relay:{port}" in scraped


@pytest.mark.parametrize("service", sorted(OTHERS))
def test_api_scheduler_and_migrate_have_no_volume(service: str) -> None:
    assert mounts(SERVICES[service]) == {}


@pytest.mark.parametrize("service", sorted(WORKERS))
def test_each_worker_keeps_its_data_on_its_own_volume(service: str) -> None:
    data_dir = env(WORKERS[service]).get("MCDASH_DATA_DIR") or "/data"
    source = mounts(WORKERS[service]).get(data_dir)
    assert source in COMPOSE.get("volumes", {}), f"{service}: {data_dir} is no named volume"
    others = [
        key for key, svc in SERVICES.items() if key != service and source in mounts(svc).values()
    ]
    assert others == []


@pytest.mark.parametrize("service", sorted(WORKERS))
def test_each_worker_advertises_an_agent_the_api_reaches(service: str) -> None:
    worker = WORKERS[service]
    values = env(worker)
    host, _, port = str(values.get("MCDASH_NODE_LISTEN")).rpartition(":")
    url = urlsplit(str(values.get("MCDASH_NODE_URL")))
    assert host == "0.0.0.0", "listening on loopback, the agent is out of the API's reach"
    assert url.hostname in (service, worker.get("hostname")), url
    assert url.port == int(port)
    assert str(port) in [str(item) for item in worker.get("expose", [])]
    assert all(int(port) not in container for _, container in published(worker))


@pytest.mark.parametrize("service", sorted(WORKERS))
def test_each_worker_publishes_exactly_its_game_ports(service: str) -> None:
    values = env(WORKERS[service])
    game = range(
        int(values.get("MCDASH_SERVER_PORT_RANGE_START") or 25565),
        int(values.get("MCDASH_SERVER_PORT_RANGE_END") or 25665) + 1,
    )
    pairs = published(WORKERS[service])
    assert [container for _, container in pairs] == [game]
    assert all(host == container for host, container in pairs), (
        "a server's port is what players dial"
    )


def test_workers_game_ports_do_not_overlap() -> None:
    taken = [port for svc in WORKERS.values() for pair in published(svc) for port in pair[0]]
    assert len(taken) == len(set(taken))


@pytest.mark.parametrize("name", ["MCDASH_JWT_SECRET", "MCDASH_NODE_SECRET"])
def test_the_api_and_every_worker_need_the_same_secret(name: str) -> None:
    """Each is `${NAME:?...}`: compose refuses to start without it, and there is one."""
    for service in ["api", "relay", *WORKERS]:
        raw = str(compose_environment(SERVICES[service]).get(name))
        match = _REQUIRED.match(raw)
        assert match, f"{service}: {name}={raw!r} is not required"
        assert match["var"] == name


@pytest.mark.parametrize("service", ["api", "relay", "scheduler", *sorted(WORKERS)])
def test_backups_go_to_the_minio_of_this_file(service: str) -> None:
    values = env(SERVICES[service])
    host, _, port = str(values.get("MCDASH_BACKUP_S3_ENDPOINT")).partition(":")
    bucket_init = env(SERVICES["minio-init"]).get("MCDASH_BACKUP_S3_BUCKET")
    assert values.get("MCDASH_BACKUP_STORAGE") == "s3"
    assert host == "minio"
    assert port == "9000"
    assert values.get("MCDASH_BACKUP_S3_SECURE") == "false"
    assert values.get("MCDASH_BACKUP_S3_BUCKET") == bucket_init
