"""Fan-out of Redis pub/sub channels to local WebSocket viewers over one Redis connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

import structlog
from prometheus_client import Counter, Gauge
from redis.asyncio import Redis

log = structlog.get_logger(__name__)

VIEWERS = Gauge("mcdash_websocket_connections", "Open WebSocket viewers", ["channel"])
DROPPED = Counter("mcdash_websocket_slow_viewers_total", "Viewers dropped for falling behind")


class Subscription:
    """A viewer's bounded queue; when it overflows the viewer is marked too slow, not waited for."""

    def __init__(self, channel: str, size: int) -> None:
        self.channel = channel
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=size)
        self.overflowed = asyncio.Event()

    def offer(self, data: str) -> None:
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            DROPPED.inc()
            self.overflowed.set()

    async def next(self) -> str | None:
        """The next message, or None once the viewer has fallen too far behind.

        A queue can only overflow while it holds messages, so a viewer waiting on an empty
        queue is never the one to drop: checking before each get is enough, and a message
        costs one queue get rather than a task per wait.
        """
        if self.overflowed.is_set():
            return None
        return await self.queue.get()


class PubSubHub:
    """One subscriber connection per API process, however many viewers watch a channel."""

    def __init__(self, redis: Redis) -> None:
        self._pubsub = redis.pubsub(ignore_subscribe_messages=True)
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self._lock = asyncio.Lock()
        self._active = asyncio.Event()

    async def subscribe(self, channel: str, *, size: int, kind: str) -> Subscription:
        subscription = Subscription(channel, size)
        async with self._lock:
            if not self._subscribers[channel]:
                await self._pubsub.subscribe(channel)
            self._subscribers[channel].add(subscription)
            self._active.set()
        VIEWERS.labels(kind).inc()
        return subscription

    async def unsubscribe(self, subscription: Subscription, *, kind: str) -> None:
        VIEWERS.labels(kind).dec()
        async with self._lock:
            viewers = self._subscribers.get(subscription.channel)
            if viewers is None:
                return
            viewers.discard(subscription)
            if not viewers:
                del self._subscribers[subscription.channel]
                await self._pubsub.unsubscribe(subscription.channel)

    async def run(self) -> None:
        try:
            while True:
                if not self._subscribers:
                    self._active.clear()
                    await self._active.wait()
                try:
                    message = await self._pubsub.get_message(timeout=1.0)
                except Exception:
                    log.warning("pubsub_read_failed", exc_info=True)
                    await asyncio.sleep(0.5)
                    continue
                if message is None:
                    continue
                channel = message["channel"]
                data = message["data"]
                for subscription in tuple(self._subscribers.get(channel, ())):
                    subscription.offer(data)
        finally:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
