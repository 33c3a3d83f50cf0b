"""`mcdash scheduler`: APScheduler with one active instance, elected by a Redis lease."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
import uuid

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from redis.asyncio import Redis

from app.backups.infrastructure.scheduling import schedule_backup_jobs
from app.bootstrap import Container, bootstrap
from app.monitoring import module as monitoring
from app.monitoring.infrastructure.metrics_exports import serve_process_metrics
from app.servers.application.messages import ExpireStaleStarts
from app.settings import Settings

log = structlog.get_logger(__name__)

LOCK_KEY = "mcdash:scheduler:leader"
HEARTBEAT_KEY = "mcdash:scheduler:heartbeat"

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class LeaderLock:
    """A Redis lease: held while renewed in time, so a dead scheduler's lease simply expires."""

    def __init__(self, redis: Redis, *, ttl_seconds: float) -> None:
        self._redis = redis
        self._ttl_ms = int(ttl_seconds * 1000)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    async def acquire_or_renew(self) -> bool:
        if await self._redis.set(LOCK_KEY, self.token, nx=True, px=self._ttl_ms):
            return True
        return bool(await self._redis.eval(_RENEW, 1, LOCK_KEY, self.token, self._ttl_ms))

    async def release(self) -> None:
        await self._redis.eval(_RELEASE, 1, LOCK_KEY, self.token)


async def _heartbeat(redis: Redis, token: str) -> None:
    await redis.set(HEARTBEAT_KEY, f"{token} {time.time():.3f}", ex=120)


async def _expire_stale_starts(container: Container) -> None:
    expired = await container.bus.handle(ExpireStaleStarts())
    if expired:
        log.warning("stale_starts_expired", servers=[str(server_id) for server_id in expired])


async def run_scheduler(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    redis = Redis.from_url(settings.require_redis_url(), decode_responses=True)
    lock = LeaderLock(redis, ttl_seconds=settings.scheduler_lock_ttl_seconds)
    container = bootstrap(settings)
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(_heartbeat, "interval", seconds=10, args=[redis, lock.token], id="heartbeat")
    scheduler.add_job(
        _expire_stale_starts,
        "interval",
        seconds=settings.stale_start_check_seconds,
        args=[container],
        id="expire-stale-starts",
        max_instances=1,
        coalesce=True,
    )
    schedule_backup_jobs(scheduler, container.bus, container.settings)
    monitoring.schedule_jobs(scheduler, container.infra, container.deps["monitoring"])
    serve_process_metrics(settings.scheduler_metrics_listen)
    scheduler.start(paused=True)
    leading = False
    log.info("scheduler_started", instance=lock.token)
    try:
        while not stop.is_set():
            try:
                now_leading = await lock.acquire_or_renew()
            except Exception:
                log.warning("scheduler_lock_failed", exc_info=True)
                now_leading = False
            if now_leading and not leading:
                log.info("scheduler_leading", instance=lock.token)
                await _heartbeat(redis, lock.token)
                scheduler.resume()
            elif leading and not now_leading:
                log.warning("scheduler_lost_leadership", instance=lock.token)
                scheduler.pause()
            leading = now_leading
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=settings.scheduler_lock_ttl_seconds / 3)
    finally:
        scheduler.shutdown(wait=False)
        if leading:
            await lock.release()
        await redis.aclose()
        await container.close()
        log.info("scheduler_stopped", instance=lock.token)
