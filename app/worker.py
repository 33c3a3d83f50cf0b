"""The RQ node worker: runs the jobs of one node's queues and advertises the node in Redis."""

from __future__ import annotations

import contextlib
import gc
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import structlog
from redis import Redis
from rq import SimpleWorker

from app.settings import Settings
from app.shared.jobqueue import SERIALIZER, job_class, json_queue
from app.shared.nodes import NODE_NAMES, WEBHOOK_QUEUE, NodeJob, node_key, queue_names

if TYPE_CHECKING:
    from app.node import NodeHost

log = structlog.get_logger(__name__)


class NodeHeartbeat(threading.Thread):
    """Refreshes the node's record every few seconds; it expires when the worker is gone. The
    record says where the node's agent listens and what the node can still take."""

    def __init__(
        self,
        redis: Redis,
        node: str,
        *,
        interval: float,
        static: dict[str, str | int],
        load: Callable[[], dict[str, int]],
    ) -> None:
        super().__init__(name=f"heartbeat-{node}", daemon=True)
        self._redis = redis
        self._node = node
        self._interval = interval
        self._static = static
        self._load = load
        self._stopped = threading.Event()

    def beat(self) -> None:
        key = node_key(self._node)
        record: dict[str, str | int | float] = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "last_seen": time.time(),
            **self._static,
            **self._load(),
        }
        pipe = self._redis.pipeline()
        pipe.hset(key, mapping=record)  # type: ignore[arg-type]
        pipe.expire(key, int(self._interval * 3) + 1)
        pipe.sadd(NODE_NAMES, self._node)
        pipe.execute()

    def run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self.beat()
            except Exception:
                log.warning("node_heartbeat_failed", node=self._node, exc_info=True)

    def stop(self) -> None:
        self._stopped.set()
        self._redis.delete(node_key(self._node))


def node_record(
    settings: Settings, *, url: str, java: list[dict[str, object]], isolation: dict[str, object]
) -> dict[str, str | int]:
    """What does not change while the worker runs."""
    return {
        "url": url,
        "version": _version(),
        "java": json.dumps(java),
        "isolation": json.dumps(isolation),
        "cpu_count": psutil.cpu_count() or 1,
        "memory_total": psutil.virtual_memory().total,
        "port_range_start": settings.server_port_range_start,
        "port_range_end": settings.server_port_range_end,
    }


def _version() -> str:
    try:
        return importlib.metadata.version("mcdash")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _load(host: NodeHost, data_dir: Path) -> Callable[[], dict[str, int]]:
    def load() -> dict[str, int]:
        found = {"disk_free": shutil.disk_usage(data_dir).free}
        with contextlib.suppress(RuntimeError):  # the runtime stopping, or a change midway
            found.update(host.runtime.supervisor.load())
        return found

    return load


def run_worker(settings: Settings, node: str, *, burst: bool = False) -> None:
    """Supervise this node's game servers and run its jobs until SIGTERM; servers keep running."""
    from app import node_jobs
    from app.node import NodeHost
    from app.servers.infrastructure.java import discover_runtimes
    from app.servers.infrastructure.probe import detect_isolation

    redis = Redis.from_url(settings.require_redis_url())
    queues = [json_queue(name, redis) for name in (*queue_names(node), WEBHOOK_QUEUE)]
    worker = SimpleWorker(
        queues,
        connection=redis,
        name=f"{node}.{os.getpid()}",
        serializer=SERIALIZER,
        job_class=job_class(job.value for job in NodeJob),
    )

    def stop_before_work(signum: int, frame: object) -> None:
        """SIGTERM during start-up: RQ's loop sees the flag and exits cleanly at once."""
        worker._stop_requested = True

    signal.signal(signal.SIGTERM, stop_before_work)
    signal.signal(signal.SIGINT, stop_before_work)
    java = [
        {"major": runtime.major, "path": str(runtime.path), "version": runtime.version}
        for runtime in discover_runtimes(settings.java_paths)
    ]
    isolation = detect_isolation(
        settings.server_sandbox,
        uid_base=settings.server_uid_base,
        uid_count=settings.server_uid_count,
        passthrough=settings.server_env_passthrough,
    )
    host = NodeHost(settings, node, isolation)
    runtime = host.start()
    node_jobs.attach(host)
    heartbeat = NodeHeartbeat(
        redis,
        node,
        interval=settings.worker_heartbeat_seconds,
        static=node_record(
            settings, url=runtime.agent.url, java=java, isolation=isolation.describe()
        ),
        load=_load(host, settings.resolved_data_dir),
    )
    heartbeat.beat()
    heartbeat.start()
    gc.collect()
    gc.freeze()  # as in the API (app/main.py): full collections walk only what runs made
    log.info("worker_started", node=node, queues=[q.name for q in queues], java=java)
    try:
        if not worker._stop_requested:
            worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
    finally:
        heartbeat.stop()
        node_jobs.detach()
        host.stop()
        log.info("worker_stopped", node=node)
