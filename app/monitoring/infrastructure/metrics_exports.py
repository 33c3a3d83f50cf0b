"""Prometheus exports of metrics history's processes: per-server and node gauges on a worker,
servers by state and node on the scheduler. Each is a snapshot replaced whole, so a stopped
server's series disappear with it instead of lingering at their last value."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence

import sqlalchemy as sa
from prometheus_client import REGISTRY, Gauge, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine

from app.monitoring.domain.metrics import MetricRecorded, NodeSample

QUEUE_DEPTH = Gauge("mcdash_job_queue_depth", "Jobs waiting in a node's RQ queue", ["queue"])

_SERVER_GAUGES = (
    ("mcdash_server_players", "Players online on a server"),
    ("mcdash_server_cpu_ratio", "CPU of a server's process tree, in cores"),
    ("mcdash_server_memory_bytes", "Resident memory of a server's process tree"),
    ("mcdash_server_tick_ms", "Milliseconds per tick, where the server reports it"),
)
_NODE_GAUGES = (
    ("mcdash_node_cpu_ratio", "CPU of a node's machine, 0 to 1"),
    ("mcdash_node_memory_used_bytes", "Memory used on a node's machine"),
    ("mcdash_node_memory_total_bytes", "Memory of a node's machine"),
    ("mcdash_node_disk_used_bytes", "Disk used where a node keeps its data"),
    ("mcdash_node_disk_total_bytes", "Disk size where a node keeps its data"),
    ("mcdash_node_servers_running", "Game servers running on a node"),
)


def _server_values(sample: MetricRecorded) -> tuple[float | None, ...]:
    return (sample.players_online, sample.cpu_percent / 100, sample.rss_bytes, sample.tick_ms)


def _node_values(sample: NodeSample) -> tuple[float, ...]:
    return (
        sample.cpu_percent / 100,
        sample.memory_used_bytes,
        sample.memory_total_bytes,
        sample.disk_used_bytes,
        sample.disk_total_bytes,
        sample.servers_running,
    )


class LatestSamples(Collector):
    """The latest flush of each node's collector (a test process may run several nodes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._servers: dict[str, Sequence[MetricRecorded]] = {}
        self._nodes: dict[str, NodeSample] = {}

    def update(self, node: str, servers: Sequence[MetricRecorded], sample: NodeSample) -> None:
        with self._lock:
            self._servers[node] = list(servers)
            self._nodes[node] = sample

    def forget(self, node: str) -> None:
        with self._lock:
            self._servers.pop(node, None)
            self._nodes.pop(node, None)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            servers = [s for samples in self._servers.values() for s in samples]
            nodes = list(self._nodes.values())
        for index, (name, doc) in enumerate(_SERVER_GAUGES):
            family = GaugeMetricFamily(name, doc, labels=["server_id", "name", "node"])
            for sample in servers:
                value = _server_values(sample)[index]
                if value is not None:
                    family.add_metric([str(sample.server_id), sample.name, sample.node], value)
            yield family
        for index, (name, doc) in enumerate(_NODE_GAUGES):
            family = GaugeMetricFamily(name, doc, labels=["node"])
            for node in nodes:
                family.add_metric([node.node], _node_values(node)[index])
            yield family

    def describe(self) -> Iterable[Metric]:
        return []


class ServersByState(Collector):
    """`mcdash_servers{state,node}` as the scheduler last counted them."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "mcdash_servers", "Servers by state and node", labels=["state", "node"]
        )
        for (state, node), count in sorted(self.counts.items()):
            family.add_metric([state, node], count)
        yield family

    def describe(self) -> Iterable[Metric]:
        return []


LATEST = LatestSamples()
SERVERS = ServersByState()
REGISTRY.register(LATEST)
REGISTRY.register(SERVERS)


async def count_servers(engine: AsyncEngine) -> None:
    """Refresh `mcdash_servers` from the servers table (each state and node that has any)."""
    query = sa.text("SELECT status, node, count(*) FROM servers GROUP BY status, node")
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    SERVERS.counts = {(row[0], row[1]): int(row[2]) for row in rows}


def serve_process_metrics(listen: str | None) -> None:
    """/metrics of a process that serves no HTTP of its own (the scheduler, a relay), on
    `listen` (host:port) when it is set."""
    if not listen:
        return
    host, port = listen.rsplit(":", 1)
    start_http_server(int(port), addr=host)
