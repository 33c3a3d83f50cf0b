"""What the metrics e2e tests share: scrapes of /metrics and the worker's agent URL."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from app.shared.nodes import node_key

FAST_METRICS = {
    "MCDASH_METRICS_INTERVAL_SECONDS": "1",
    "MCDASH_METRICS_DISK_INTERVAL_SECONDS": "10",
}


def agent_url(redis_url: str, node: str = "local") -> str:
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        url = redis.hget(node_key(node), "url")
    finally:
        redis.close()
    assert url, f"node {node} advertises no agent"
    return str(url).rstrip("/")


def samples(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample name a /metrics endpoint exports now, with its labels and values."""
    text = httpx.get(url, timeout=10).text
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return found


def declared(url: str) -> set[str]:
    """Metric families an endpoint declares (HELP/TYPE), also those with no series right now."""
    text = httpx.get(url, timeout=10).text
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        if family.type == "counter":  # the parser drops a counter's _total from its name
            names.add(f"{family.name}_total")
    return names


def wait_for_sample(
    url: str, metric: str, labels: dict[str, str] | None = None, timeout: float = 30
) -> float:
    labels = labels or {}
    deadline = time.monotonic() + timeout
    while True:
        try:
            for found, value in samples(url).get(metric, []):
                if all(found.get(key) == wanted for key, wanted in labels.items()):
                    return value
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} exported no {metric} {labels} in {timeout} s"
        time.sleep(0.3)
