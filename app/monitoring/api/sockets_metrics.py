"""`/api/v2/ws/metrics` (admins): a system snapshot every metrics_socket_interval_seconds.

The database part (nodes, servers by state, unprocessed events) comes from the bus; this
process's request rate (the delta of mcdash_http_requests_total over the period), relay lag
(mcdash_event_relay_lag_seconds) and open viewers (mcdash_websocket_connections) from its
Prometheus registry.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fastapi import APIRouter, WebSocket
from prometheus_client.metrics import MetricWrapperBase

from app.monitoring.application.sockets_metrics import GetSystemSnapshot
from app.shared.observability import REQUESTS
from app.shared.principals import WatchedSocket
from app.shared.realtime import VIEWERS
from app.shared.relay import RELAY_LAG
from app.shared.security import Permission
from app.shared.websockets import drain, open_socket, serve

router = APIRouter(tags=["websockets"])


def _samples(metric: MetricWrapperBase, suffix: str = "") -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in metric.collect()
        for sample in family.samples
        if sample.name.endswith(suffix)
    ]


def requests_total() -> float:
    return sum(value for _, value in _samples(REQUESTS, "_total"))


def viewers() -> dict[str, int]:
    return {labels["channel"]: int(value) for labels, value in _samples(VIEWERS)}


def relay_lag() -> float:
    return sum(value for _, value in _samples(RELAY_LAG))


async def _snapshots(websocket: WebSocket, socket: WatchedSocket) -> None:
    app = websocket.app
    interval = float(app.state.settings.metrics_socket_interval_seconds)
    before, since = requests_total(), time.monotonic()
    while True:
        snapshot: dict[str, Any] = await app.state.bus.handle(
            GetSystemSnapshot(actor=socket.principal)
        )
        now, total = time.monotonic(), requests_total()
        snapshot["requests_per_second"] = round((total - before) / max(now - since, 1e-6), 3)
        before, since = total, now
        snapshot["relay"]["lag_seconds"] = relay_lag()
        snapshot["viewers"] = viewers()
        snapshot["type"] = "snapshot"
        snapshot["at"] = time.time()
        await websocket.send_text(json.dumps(snapshot))
        await asyncio.sleep(interval)


@router.websocket("/api/v2/ws/metrics")
async def metrics_socket(websocket: WebSocket) -> None:
    socket = await open_socket(websocket, Permission.ADMIN_ALL)
    if socket is None:
        return
    await serve(websocket, socket, _snapshots(websocket, socket), drain(websocket, socket))
