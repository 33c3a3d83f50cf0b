"""Fan-out of Redis pub/sub channels to local WebSocket viewers over one Redis connection.

A message that arrives after a quiet spell is handed on at once; those that follow within
`batch_seconds` of it are handed on together, one `Batch` a channel, at the end of that window,
and so on while they keep coming. Each batch goes to every one of the channel's sinks: a
`Subscription` (a bounded queue that a task reads) or a live feed that pushes to its socket at
once (app/shared/fanout.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import structlog
from prometheus_client import Counter, Gauge
from redis.asyncio import Redis

log = structlog.get_logger(__name__)

VIEWERS = Gauge("mcdash_websocket_connections", "Open WebSocket viewers", ["channel"])
DROPPED = Counter("mcdash_websocket_slow_viewers_total", "Viewers dropped for falling behind")


BATCH_SECONDS = 0.005


class Batch:
    """Messages of one channel, in the order published; encoded once for all its viewers."""

    __slots__ = ("_encoded", "items")

    def __init__(self, items: Sequence[str]) -> None:
        self.items = items
        self._encoded: dict[Callable[[Sequence[str]], Any], Any] = {}

    def encoded[T](self, encode: Callable[[Sequence[str]], T]) -> T:
        """`encode(items)`, computed by the first viewer that asks and shared with the rest."""
        try:
            return self._encoded[encode]  # type: ignore[no-any-return]
        except KeyError:
            result = self._encoded[encode] = encode(self.items)
            return result


class Sink(Protocol):
    def deliver(self, batch: Batch) -> None: ...


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

    def deliver(self, batch: Batch) -> None:
        for data in batch.items:
            self.offer(data)

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

    def __init__(self, redis: Redis, *, batch_seconds: float = BATCH_SECONDS) -> None:
        self._pubsub = redis.pubsub(ignore_subscribe_messages=True)
        self._sinks: dict[str, set[Sink]] = defaultdict(set)
        self._lock = asyncio.Lock()
        self._active = asyncio.Event()
        self._batch_seconds = batch_seconds
        self._pending: dict[str, list[str]] = {}
        self._flush: asyncio.TimerHandle | None = None

    async def subscribe(self, channel: str, *, size: int, kind: str) -> Subscription:
        subscription = Subscription(channel, size)
        await self.attach(channel, subscription, kind=kind)
        return subscription

    async def unsubscribe(self, subscription: Subscription, *, kind: str) -> None:
        await self.detach(subscription.channel, subscription, kind=kind)

    async def attach(self, channel: str, sink: Sink, *, kind: str) -> None:
        """Hand `sink` every batch of `channel` published from now on."""
        async with self._lock:
            if not self._sinks[channel]:
                await self._pubsub.subscribe(channel)
            self._sinks[channel].add(sink)
            self._active.set()
        VIEWERS.labels(kind).inc()

    async def detach(self, channel: str, sink: Sink, *, kind: str) -> None:
        VIEWERS.labels(kind).dec()
        sinks = self._sinks.get(channel)
        if sinks is None or sink not in sinks:
            return
        sinks.discard(sink)  # at once: no batch reaches it after this
        async with self._lock:
            if not sinks and self._sinks.get(channel) is sinks:
                del self._sinks[channel]
                await self._pubsub.unsubscribe(channel)

    async def run(self) -> None:
        try:
            while True:
                if not self._sinks:
                    self._active.clear()
                    await self._active.wait()
                try:
                    message = await self._pubsub.get_message(timeout=1.0)
                except Exception:
                    log.warning("pubsub_read_failed", exc_info=True)
                    await asyncio.sleep(0.5)
                    continue
                if message is not None:
                    self._add(message["channel"], message["data"])
        finally:
            if self._flush is not None:
                self._flush.cancel()
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    def _add(self, channel: str, data: str) -> None:
        if self._flush is None:  # quiet until now: at once, and batch what follows
            self._flush = asyncio.get_running_loop().call_later(self._batch_seconds, self._deliver)
            self._hand_on(channel, [data])
            return
        pending = self._pending.get(channel)
        if pending is None:
            self._pending[channel] = [data]
        else:
            pending.append(data)

    def _deliver(self) -> None:
        """The window's end: what came in it, and another window if anything did."""
        pending, self._pending, self._flush = self._pending, {}, None
        if pending:
            self._flush = asyncio.get_running_loop().call_later(self._batch_seconds, self._deliver)
        for channel, items in pending.items():
            self._hand_on(channel, items)

    def _hand_on(self, channel: str, items: list[str]) -> None:
        batch = Batch(items)
        for sink in tuple(self._sinks.get(channel, ())):
            try:
                sink.deliver(batch)
            except Exception:
                log.warning("websocket_deliver_failed", channel=channel, exc_info=True)
