"""What webhook deliveries go through outside the process: DNS, HTTP, the RQ queue, the counter."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Mapping, Sequence

import httpx
from prometheus_client import Counter
from redis import Redis

from app.monitoring.application.webhooks_ports import Sent
from app.shared.jobqueue import json_queue
from app.shared.nodes import WEBHOOK_QUEUE, NodeJob

DELIVERIES = Counter(
    "mcdash_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retrying, failed)",
    ["outcome"],
)
_RESOLVE_TIMEOUT = 5.0


class DnsResolver:
    """getaddrinfo off the event loop, bounded in time."""

    async def resolve(self, host: str, port: int) -> list[str]:
        try:
            infos = await asyncio.wait_for(
                asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM),
                timeout=_RESOLVE_TIMEOUT,
            )
        except (OSError, TimeoutError):
            return []
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


class HttpWebhookSender:
    """Posts without following redirects (a redirect could lead to a private address)."""

    def __init__(self, http: httpx.AsyncClient, timeout: float, *, concurrency: int = 50) -> None:
        self._http = http
        self._timeout = timeout
        self._slots = asyncio.Semaphore(concurrency)

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> Sent:
        async with self._slots:
            try:
                async with asyncio.timeout(self._timeout * 2):
                    response = await self._http.post(
                        url,
                        content=body,
                        headers=dict(headers),
                        timeout=self._timeout,
                        follow_redirects=False,
                    )
            except (httpx.TimeoutException, TimeoutError):
                return Sent(error=f"timed out after {self._timeout:g} s")
            except httpx.HTTPError as exc:
                return Sent(error=f"{type(exc).__name__}: {exc}"[:500])
        if response.is_redirect:
            return Sent(status=response.status_code, error="redirects are not followed")
        if not response.is_success:
            return Sent(status=response.status_code, error=f"HTTP {response.status_code}")
        return Sent(status=response.status_code)


class RqDeliveryQueue:
    """Queues deliveries on the shared low-priority queue every node worker listens to last."""

    def __init__(self, redis: Redis, *, job_timeout: int) -> None:
        self._redis = redis
        self._job_timeout = job_timeout

    async def enqueue(self, delivery_ids: Sequence[uuid.UUID]) -> None:
        await asyncio.to_thread(self._enqueue, list(delivery_ids))

    def _enqueue(self, delivery_ids: list[uuid.UUID]) -> None:
        queue = json_queue(WEBHOOK_QUEUE, self._redis)
        with self._redis.pipeline() as pipe:
            for delivery_id in delivery_ids:
                queue.enqueue(
                    NodeJob.DELIVER_WEBHOOK.value,
                    str(delivery_id),
                    ttl=24 * 3600,
                    result_ttl=600,
                    failure_ttl=24 * 3600,
                    job_timeout=self._job_timeout,
                    description=f"webhook delivery {delivery_id}",
                    pipeline=pipe,
                )
            pipe.execute()


class PrometheusOutcomes:
    def count(self, outcome: str) -> None:
        DELIVERIES.labels(outcome).inc()
