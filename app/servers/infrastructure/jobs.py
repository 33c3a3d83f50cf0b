"""RQ job functions of a node: they hand lifecycle requests to the supervisor's event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from prometheus_client import Counter

from app.servers.infrastructure.sandbox import Isolation
from app.settings import Settings

log = structlog.get_logger(__name__)
Build = Callable[[Settings], Any]
JOB_FAILURES = Counter(
    "mcdash_node_job_failures_total", "Node work that ended with an exception", ["job"]
)

_host: SupervisorHost | None = None


class SupervisorHost:
    """Runs the node supervisor on its own event loop in a thread beside RQ's blocking loop."""

    def __init__(
        self, settings: Settings, node: str, isolation: Isolation, *, build: Build
    ) -> None:
        """`build` is the composition root (bootstrap), run on the supervisor's own loop."""
        self._settings = settings
        self._node = node
        self._isolation = isolation
        self._build = build
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"supervisor-{node}", daemon=True)
        self.supervisor: Any = None
        self.container: Any = None
        self.error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, timeout: float = 60.0) -> None:
        global _host
        self._thread.start()
        if not self._ready.wait(timeout) or self.error is not None:
            raise RuntimeError(f"node supervisor failed to start: {self.error}")
        _host = self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        from app.servers.infrastructure.supervisor import Supervisor

        container = self.container = self._build(self._settings)
        try:
            self.supervisor = Supervisor(
                node=self._node,
                settings=self._settings,
                bus=container.bus,
                redis=container.redis,
                catalog=container.servers.catalog,
                jars=container.servers.jars,
                java=container.servers.java,
                isolation=self._isolation,
                hooks=container.servers.hooks,
            )
            self._task = asyncio.create_task(self.supervisor.run())
            await asyncio.sleep(0)
            self._ready.set()
            await self._task
        except asyncio.CancelledError:
            pass
        except BaseException as exc:
            self.error = exc
            self._ready.set()
            log.exception("supervisor_crashed")
        finally:
            await container.close()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        """Run `coro` on the supervisor's loop; a failure is always logged with its reason, also
        when the job that submitted it has already returned."""
        name = getattr(coro, "__qualname__", repr(coro))
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        future.add_done_callback(functools.partial(_log_failure, name))
        return future

    def stop(self) -> None:
        global _host
        _host = None
        if self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout=15)


def _log_failure(name: str, future: concurrent.futures.Future[Any]) -> None:
    if future.cancelled():
        return
    if (exc := future.exception()) is not None:
        JOB_FAILURES.labels(name).inc()
        log.error("node_job_failed", job=name, error=f"{type(exc).__name__}: {exc}", exc_info=exc)


def node_supervisor() -> tuple[SupervisorHost, Any]:
    """The running host and its supervisor, for job functions of any context."""
    if _host is None or _host.supervisor is None:
        raise RuntimeError("this worker has no node supervisor running")
    return _host, _host.supervisor


def start_server(server_id: str) -> str:
    host, supervisor = node_supervisor()
    host.submit(supervisor.start(uuid.UUID(server_id)))
    return "start accepted"


def stop_server(server_id: str) -> str:
    host, supervisor = node_supervisor()
    host.submit(supervisor.stop(uuid.UUID(server_id))).result(timeout=30)
    return "stop sent"


def kill_server(server_id: str) -> str:
    host, supervisor = node_supervisor()
    host.submit(supervisor.stop(uuid.UUID(server_id), kill=True)).result(timeout=30)
    return "killed"


def restart_server(server_id: str) -> str:
    host, supervisor = node_supervisor()
    host.submit(supervisor.restart(uuid.UUID(server_id)))
    return "restart accepted"


def sync_server_files(server_id: str) -> str:
    host, supervisor = node_supervisor()
    host.submit(supervisor.sync_files(uuid.UUID(server_id))).result(timeout=60)
    return "files written"


def delete_server_files(server_id: str) -> str:
    host, supervisor = node_supervisor()
    host.submit(supervisor.delete_files(uuid.UUID(server_id))).result(timeout=300)
    return "files deleted"
