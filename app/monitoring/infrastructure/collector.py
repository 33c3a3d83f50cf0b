"""A node's metrics collector: the servers context's status samples of each running server
(taken once, for both), with disk use on a slower cadence and tick time where the server
reports it, flushed every metrics interval as one batch to history, Redis and Prometheus."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psutil
import structlog
from redis.asyncio import Redis

from app.monitoring.domain.metrics import (
    NODES_CHANNEL,
    SERVER_CHANNEL,
    SERVERS_CHANNEL,
    MetricRecorded,
    NodeSample,
    SampleWindow,
)
from app.monitoring.domain.metrics_tick import (
    TickQuestion,
    TickReading,
    TickSchedule,
    read_answers,
    tick_questions,
)
from app.monitoring.infrastructure.metrics_exports import LATEST, QUEUE_DEPTH
from app.monitoring.infrastructure.metrics_store import MetricsStore
from app.servers.application.messages import ListActiveNodeServers
from app.servers.domain.ports import SampleHook, ServerRuntime
from app.settings import Settings
from app.shared.bus import MessageBus
from app.shared.nodes import queue_names

log = structlog.get_logger(__name__)
TICK_EVERY_INTERVALS = 3  # a server that answers is asked every third flush, not every one
TICK_ANSWER_SECONDS = 5.0
TICK_PROBES_AT_ONCE = 8
IDENTIFY_SECONDS = 60.0  # a server the servers context does not list is looked for this often


class SampleHooks(Protocol):
    after_sample: list[SampleHook]


class SampledServers(Protocol):
    """What the collector needs of a node's supervisor."""

    @property
    def hooks(self) -> SampleHooks: ...

    @property
    def managed(self) -> Mapping[uuid.UUID, Any]: ...

    def path(self, server_id: uuid.UUID) -> Path: ...

    async def converse(
        self, server_id: uuid.UUID, command: str, *, answer: Callable[[str], bool], within: float
    ) -> str: ...


@dataclass(frozen=True, slots=True)
class Identity:
    name: str
    questions: tuple[TickQuestion, ...]


def directory_bytes(path: Path) -> int:
    """Bytes allocated under `path`, without following links (what `du -s` counts)."""
    total = 0
    stack = [str(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_blocks * 512
                    except OSError:
                        continue
        except OSError:
            continue
    return total


class MetricsCollector:
    def __init__(
        self,
        *,
        node: str,
        servers: SampledServers,
        store: MetricsStore,
        redis: Redis,
        bus: MessageBus,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._node = node
        self._servers = servers
        self._store = store
        self._redis = redis
        self._bus = bus
        self._settings = settings
        self._clock = clock
        self._windows: dict[uuid.UUID, SampleWindow] = {}
        self._identities: dict[uuid.UUID, Identity] = {}
        self._disk: dict[uuid.UUID, int] = {}
        self._ticks: dict[uuid.UUID, tuple[float, TickReading]] = {}
        self._tick_schedules: dict[uuid.UUID, TickSchedule] = {}
        self._probes: set[asyncio.Task[None]] = set()
        self._identified_at = float("-inf")
        self._looked_for: set[uuid.UUID] = set()
        self._probe_slots = asyncio.Semaphore(TICK_PROBES_AT_ONCE)
        self._data_dir = settings.resolved_data_dir
        servers.hooks.after_sample.append(self.observe)

    def observe(self, server_id: uuid.UUID, runtime: ServerRuntime) -> None:
        """The servers context's sample of one server (its sampler's hook): kept until flushed."""
        self._windows.setdefault(server_id, SampleWindow()).add(
            state=runtime.state,
            cpu_percent=runtime.cpu_percent or 0.0,
            rss_bytes=runtime.rss_bytes or 0,
            players=runtime.players_online,
        )

    async def run(self) -> None:
        disks = asyncio.create_task(self._sample_disks())
        try:
            while True:
                await asyncio.sleep(self._settings.metrics_interval_seconds)
                try:
                    await self.flush()
                except Exception:
                    log.exception("metrics_flush_failed", node=self._node)
        finally:
            disks.cancel()
            for probe in list(self._probes):
                probe.cancel()
            LATEST.forget(self._node)

    async def flush(self) -> list[MetricRecorded]:
        """One batch: a row per running server sampled since the last flush, and the node's."""
        now = self._clock()
        windows, self._windows = self._windows, {}
        running = set(self._servers.managed)
        self._forget_gone(running)
        unknown = running - self._identities.keys()
        if unknown - self._looked_for or (
            unknown and now - self._identified_at >= IDENTIFY_SECONDS
        ):
            self._identified_at, self._looked_for = now, unknown
            await self._identify()
        recorded = []
        for server_id, window in windows.items():
            if server_id not in running or window.count == 0:
                continue
            identity = self._identities.get(server_id, Identity(name=str(server_id), questions=()))
            tick = self._ticks.get(server_id)
            fresh = tick[1] if tick and now - tick[0] <= self._tick_freshness() else None
            recorded.append(
                window.recorded(
                    server_id=server_id,
                    name=identity.name,
                    node=self._node,
                    at=now,
                    disk_bytes=self._disk.get(server_id),
                    tick_ms=fresh.tick_ms if fresh else None,
                    tick_ms_max=fresh.tick_ms_max if fresh else None,
                    tps=fresh.tps if fresh else None,
                )
            )
            if window.state == "running":
                self._ask_tick(server_id, identity, now)
        node = await asyncio.to_thread(self._node_sample, now, len(running))
        await self._store.write(recorded, node)
        LATEST.update(self._node, recorded, node)
        await self._publish(recorded, node)
        return recorded

    def _forget_gone(self, running: set[uuid.UUID]) -> None:
        for known in (self._identities, self._disk, self._ticks, self._tick_schedules):
            for server_id in [s for s in known if s not in running]:
                del known[server_id]

    async def _identify(self) -> None:
        """Names and types of this node's servers: one query for all of them."""
        try:
            servers = await self._bus.handle(ListActiveNodeServers(node=self._node))
        except Exception:  # named by id until the next flush
            log.warning("metrics_identify_failed", node=self._node, exc_info=True)
            return
        for server in servers:
            config = server.config
            questions = tick_questions(config.server_type.value, config.version)
            self._identities[server.id] = Identity(name=server.name, questions=questions)

    def _tick_freshness(self) -> float:
        return self._settings.metrics_interval_seconds * (TICK_EVERY_INTERVALS + 0.5)

    def _ask_tick(self, server_id: uuid.UUID, identity: Identity, now: float) -> None:
        if not identity.questions:
            return
        every = self._settings.metrics_interval_seconds * TICK_EVERY_INTERVALS
        schedule = self._tick_schedules.setdefault(server_id, TickSchedule(every=every))
        if not schedule.due(now):
            return
        schedule.next_at = now + every  # not asked again while this probe waits
        probe = asyncio.create_task(self._probe(server_id, identity.questions, schedule))
        self._probes.add(probe)
        probe.add_done_callback(self._probes.discard)

    async def _probe(
        self, server_id: uuid.UUID, questions: tuple[TickQuestion, ...], schedule: TickSchedule
    ) -> None:
        async with self._probe_slots:
            answers: dict[str, str] = {}
            try:
                for question in questions:
                    answers[question.command] = await self._servers.converse(
                        server_id,
                        question.command,
                        answer=question.accepts,
                        within=TICK_ANSWER_SECONDS,
                    )
                reading = read_answers(answers)
            except Exception as exc:  # noqa: BLE001 - NoAnswer, NotRunningHere, odd answers
                schedule.unanswered(self._clock())
                log.info("tick_probe_unanswered", server_id=str(server_id), reason=repr(exc))
                return
            schedule.answered(self._clock())
            self._ticks[server_id] = (self._clock(), reading)

    async def _sample_disks(self) -> None:
        """Disk use of each running server's directory: a walk, off the loop, on its own cadence."""
        while True:
            for server_id in list(self._servers.managed):
                path = self._servers.path(server_id)
                with contextlib.suppress(Exception):
                    self._disk[server_id] = await asyncio.to_thread(directory_bytes, path)
            await asyncio.sleep(self._settings.metrics_disk_interval_seconds)

    def _node_sample(self, now: float, running: int) -> NodeSample:
        memory = psutil.virtual_memory()
        try:
            disk = psutil.disk_usage(str(self._data_dir))
            used, total = disk.used, disk.total
        except OSError:
            used = total = 0
        return NodeSample(
            node=self._node,
            at=now,
            cpu_percent=psutil.cpu_percent(interval=None),
            memory_used_bytes=memory.total - memory.available,
            memory_total_bytes=memory.total,
            disk_used_bytes=used,
            disk_total_bytes=total,
            servers_running=running,
        )

    async def _publish(self, recorded: list[MetricRecorded], node: NodeSample) -> None:
        """The flush to the channels and this node's queue depths, in two round trips: one
        message of every sample for all, one per server only where someone listens."""
        names = queue_names(self._node)
        listened = await self._redis.pubsub_channels(SERVER_CHANNEL.format(server_id="*"))
        pipe = self._redis.pipeline(transaction=False)
        pipe.publish(SERVERS_CHANNEL, json.dumps([sample.as_dict() for sample in recorded]))
        for sample in recorded:
            channel = SERVER_CHANNEL.format(server_id=sample.server_id)
            if channel in listened:
                pipe.publish(channel, sample.to_json())
        pipe.publish(NODES_CHANNEL, node.to_json())
        for name in names:
            pipe.llen(f"rq:queue:{name}")
        results = await pipe.execute()
        for name, depth in zip(names, results[-len(names) :], strict=True):
            QUEUE_DEPTH.labels(name).set(depth)
