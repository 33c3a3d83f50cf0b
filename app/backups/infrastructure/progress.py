"""Backup notifications over Redis pub/sub: progress from nodes, outcomes from the event relay."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import structlog
from redis.asyncio import Redis

from app.backups.domain.events import BackupEvent, ScheduleEvent

log = structlog.get_logger(__name__)

NOTIFICATIONS_CHANNEL = "notifications:backups"
ALIVE_KEY = "mcdash:backups:alive:{kind}:{operation_id}"
ALIVE_TTL_SECONDS = 15


class ProgressPublisher:
    def __init__(self, redis: Redis, *, interval: float = 0.5) -> None:
        self._redis = redis
        self._interval = interval

    async def publish(self, payload: dict[str, Any]) -> None:
        try:
            await self._redis.publish(NOTIFICATIONS_CHANNEL, json.dumps(payload, default=str))
        except Exception:
            log.warning("backup_progress_not_published", exc_info=True)

    async def is_alive(self, kind: str, operation_id: uuid.UUID) -> bool:
        """Whether a node still works on the backup or restore (its key expires when it dies)."""
        key = ALIVE_KEY.format(kind=kind, operation_id=operation_id)
        return bool(await self._redis.exists(key))

    @contextlib.asynccontextmanager
    async def tracking(
        self, *, operation_id: uuid.UUID, server_id: uuid.UUID, kind: str
    ) -> AsyncIterator[Tracker]:
        """Publish the tracker's phase and bytes twice a second and keep the alive key fresh."""
        tracker = Tracker(kind=kind, operation_id=operation_id, server_id=server_id)
        key = ALIVE_KEY.format(kind=kind, operation_id=operation_id)

        async def tick() -> None:
            while True:
                await self._redis.set(key, str(time.time()), ex=ALIVE_TTL_SECONDS)
                if tracker.changed:
                    tracker.changed = False
                    await self.publish(tracker.payload())
                await asyncio.sleep(self._interval)

        task = asyncio.create_task(tick())
        try:
            yield tracker
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            if tracker.changed:  # the last phase and byte count, however short the run was
                tracker.changed = False
                await self.publish(tracker.payload())
            with contextlib.suppress(Exception):
                await self._redis.delete(key)


class Tracker:
    """Where a backup or restore is; written from any thread, read by the publishing task."""

    def __init__(self, *, kind: str, operation_id: uuid.UUID, server_id: uuid.UUID) -> None:
        self.kind = kind
        self.operation_id = operation_id
        self.server_id = server_id
        self.phase = "starting"
        self.bytes = 0
        self.changed = True

    def enter(self, phase: str) -> None:
        self.phase, self.changed = phase, True

    def advance(self, size: int) -> None:
        self.bytes, self.changed = size, True

    def payload(self) -> dict[str, Any]:
        return {
            "type": f"{self.kind}.progress",
            "backup_id": str(self.operation_id),
            "server_id": str(self.server_id),
            "phase": self.phase,
            "bytes": self.bytes,
        }


async def forward_backup_event(event: object, *, progress: ProgressPublisher) -> None:
    """Event handler: outcomes of backups reach the notification WebSockets."""
    if not isinstance(event, BackupEvent | ScheduleEvent):
        return
    data = {key: getattr(event, key) for key in event.__dataclass_fields__}
    await progress.publish({"type": event.event_type(), **data})
