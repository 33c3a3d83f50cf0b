"""Metrics history: what a node samples of each server and of itself, the levels it is kept at,
and which window of which level a chart's request reads."""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Protocol

from app.shared.domain import InvalidInput

RAW, MINUTE, HOUR = 0, 60, 3600
RESOLUTIONS = (RAW, MINUTE, HOUR)
MAX_POINTS = 2000
MIN_STEP, MAX_STEP = 1, 7 * 86400
DEFAULT_RANGE = timedelta(hours=1)
# The default step: the finest of these that keeps a chart under DEFAULT_POINTS.
STEP_LADDER = (10, 30, 60, 300, 900, 3600, 6 * 3600, 86400)
DEFAULT_POINTS = 500
SERVER_SERIES = ("cpu_percent", "rss_bytes", "players_online", "disk_bytes", "tick_ms", "tps")
NODE_SERIES = (
    "cpu_percent",
    "memory_used_bytes",
    "memory_total_bytes",
    "disk_used_bytes",
    "disk_total_bytes",
    "servers_running",
)

# Redis channels of MetricRecorded (JSON): every server's samples, one server's, every node's.
SERVERS_CHANNEL = "metrics:servers"
SERVER_CHANNEL = "metrics:server:{server_id}"
NODES_CHANNEL = "metrics:nodes"


class InvalidMetricsWindow(InvalidInput):
    slug = "invalid-metrics-window"
    title = "Invalid metrics window"


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsWindow:
    """A half-open time range [start, end) read in buckets of `step` seconds."""

    start: datetime
    end: datetime
    step: int

    @property
    def resolution(self) -> int:
        """The coarsest stored level finer than the step: raw, 1-minute or 1-hour rollups."""
        return RAW if self.step < MINUTE else (MINUTE if self.step < HOUR else HOUR)

    @property
    def points(self) -> int:
        return math.ceil((self.end - self.start).total_seconds() / self.step)


def metrics_window(
    *, now: datetime, start: datetime | None, end: datetime | None, step: int | None
) -> MetricsWindow:
    """The window a request asks for; 422 for a reversed or empty range, or too many points."""
    end = end or now
    start = start or end - DEFAULT_RANGE
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidMetricsWindow("from and to need a time zone (e.g. 2024-05-01T12:00:00Z)")
    if start >= end:
        raise InvalidMetricsWindow("from must be before to", start=str(start), end=str(end))
    seconds = (end - start).total_seconds()
    if step is None:
        step = next((s for s in STEP_LADDER if seconds / s <= DEFAULT_POINTS), STEP_LADDER[-1])
    if not MIN_STEP <= step <= MAX_STEP:
        raise InvalidMetricsWindow(f"step must be from {MIN_STEP} to {MAX_STEP} seconds")
    window = MetricsWindow(start=start, end=end, step=step)
    if window.points > MAX_POINTS:
        raise InvalidMetricsWindow(
            f"{window.points} points asked for, at most {MAX_POINTS}: a larger step or a "
            "shorter range",
            points=window.points,
            max_points=MAX_POINTS,
        )
    return window


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    """Bucket start times (Unix seconds) and, per series, one value (or None) for each."""

    times: list[float]
    values: dict[str, list[float | None]]


class MetricsHistory(Protocol):
    async def server_series(self, server_id: uuid.UUID, window: MetricsWindow) -> Series: ...
    async def node_series(self, node: str, window: MetricsWindow) -> Series: ...
    async def has_node(self, node: str) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricRecorded:
    """A server's sample as it is written to history; published live, never stored as an event."""

    server_id: uuid.UUID
    name: str
    node: str
    at: float
    state: str
    samples: int
    cpu_percent: float
    cpu_percent_max: float
    rss_bytes: int
    rss_bytes_max: int
    players_online: float
    players_max: int
    disk_bytes: int | None = None
    tick_ms: float | None = None
    tick_ms_max: float | None = None
    tps: float | None = None

    def as_dict(self) -> dict[str, object]:
        fields = {name: getattr(self, name) for name in self.__slots__}
        return {"type": "MetricRecorded", **fields, "server_id": str(self.server_id)}

    def to_json(self) -> str:
        return json.dumps(self.as_dict())


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSample:
    node: str
    at: float
    cpu_percent: float
    memory_used_bytes: int
    memory_total_bytes: int
    disk_used_bytes: int
    disk_total_bytes: int
    servers_running: int

    def to_json(self) -> str:
        return json.dumps({"type": "NodeMetricRecorded", **asdict(self)})


@dataclass(slots=True)
class SampleWindow:
    """The status samples of one server since the last flush: their sums, maxima and count."""

    state: str = "running"
    count: int = 0
    cpu_sum: float = 0.0
    cpu_max: float = 0.0
    rss_sum: int = 0
    rss_max: int = 0
    players_sum: int = 0
    players_max: int = 0

    def add(self, *, state: str, cpu_percent: float, rss_bytes: int, players: int) -> None:
        self.state = state
        self.count += 1
        self.cpu_sum += cpu_percent
        self.cpu_max = max(self.cpu_max, cpu_percent)
        self.rss_sum += rss_bytes
        self.rss_max = max(self.rss_max, rss_bytes)
        self.players_sum += players
        self.players_max = max(self.players_max, players)

    def recorded(
        self,
        *,
        server_id: uuid.UUID,
        name: str,
        node: str,
        at: float,
        disk_bytes: int | None,
        tick_ms: float | None,
        tick_ms_max: float | None,
        tps: float | None,
    ) -> MetricRecorded:
        n = max(self.count, 1)
        return MetricRecorded(
            server_id=server_id,
            name=name,
            node=node,
            at=at,
            state=self.state,
            samples=self.count,
            cpu_percent=round(self.cpu_sum / n, 2),
            cpu_percent_max=self.cpu_max,
            rss_bytes=self.rss_sum // n,
            rss_bytes_max=self.rss_max,
            players_online=round(self.players_sum / n, 2),
            players_max=self.players_max,
            disk_bytes=disk_bytes,
            tick_ms=tick_ms,
            tick_ms_max=tick_ms_max,
            tps=tps,
        )
