"""The metrics part of the monitoring context: its messages and handlers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.monitoring.domain.metrics import MetricsHistory, MetricsWindow, Series, metrics_window
from app.servers.application.messages import GetNode, GetServer
from app.shared.bus import MessageBus, Query
from app.shared.domain import Clock, DomainEvent, NotFound
from app.shared.security import Principal
from app.shared.wiring import Handler


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsView:
    window: MetricsWindow
    series: Series


@dataclass(frozen=True, slots=True, kw_only=True)
class GetServerMetrics(Query[MetricsView]):
    """A server's history in buckets of `step` seconds; NotFound for servers not visible."""

    actor: Principal
    server_id: uuid.UUID
    start: datetime | None = None
    end: datetime | None = None
    step: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetNodeMetrics(Query[MetricsView]):
    """A node's history (operators and admins): its machine and how many servers it ran."""

    actor: Principal
    node: str
    start: datetime | None = None
    end: datetime | None = None
    step: int | None = None


async def handle_get_server_metrics(
    query: GetServerMetrics, *, bus: MessageBus, metrics: MetricsHistory, clock: Clock
) -> MetricsView:
    window = metrics_window(now=clock.now(), start=query.start, end=query.end, step=query.step)
    await bus.handle(GetServer(actor=query.actor, server_id=query.server_id))
    return MetricsView(window=window, series=await metrics.server_series(query.server_id, window))


async def handle_get_node_metrics(
    query: GetNodeMetrics, *, bus: MessageBus, metrics: MetricsHistory, clock: Clock
) -> MetricsView:
    """A node is known while the servers context knows it, and after, while it has history."""
    window = metrics_window(now=clock.now(), start=query.start, end=query.end, step=query.step)
    try:
        await bus.handle(GetNode(actor=query.actor, name=query.node))
    except NotFound:
        if not await metrics.has_node(query.node):
            raise
    return MetricsView(window=window, series=await metrics.node_series(query.node, window))


MESSAGES: dict[type[Any], Handler] = {
    GetServerMetrics: handle_get_server_metrics,
    GetNodeMetrics: handle_get_node_metrics,
}
EVENT_HANDLERS: list[tuple[type[DomainEvent], Handler]] = []
