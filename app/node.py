"""The node side of mcdash, built once per worker: its supervisor and, beside it, what other
contexts run on a node (the backups runner, the groups sync), all on one event loop in a thread
next to RQ's blocking loop. RQ jobs reach it through app/node_jobs.py."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import Counter

from app.agent import AgentServer, advertised_url, build_agent, listen_socket
from app.backups import module as backups
from app.backups.infrastructure.node import BackupNode
from app.bootstrap import Container, bootstrap
from app.groups import module as groups
from app.groups.infrastructure.sync import AccessSync
from app.monitoring import module as monitoring
from app.servers.infrastructure.sandbox import Isolation
from app.servers.infrastructure.supervisor import Supervisor
from app.settings import Settings

log = structlog.get_logger(__name__)
JOB_FAILURES = Counter(
    "mcdash_node_job_failures_total", "Node work that ended with an exception", ["job"]
)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRuntime:
    node: str
    container: Container
    supervisor: Supervisor
    backups: BackupNode
    access: AccessSync
    agent: AgentServer


def build_node(settings: Settings, node: str, isolation: Isolation) -> NodeRuntime:
    """The composition of the node side; call it on the loop the runtime will run on."""
    container = bootstrap(settings)
    servers = container.servers
    supervisor = Supervisor(
        node=node,
        settings=settings,
        bus=container.bus,
        redis=container.redis,
        catalog=servers.catalog,
        jars=servers.jars,
        java=servers.java,
        isolation=isolation,
        hooks=servers.hooks,
    )
    runner = backups.node_runner(container.infra, container.deps["backups"], servers=supervisor)
    access = groups.node_sync(container.infra)
    servers.hooks.before_launch.append(access.before_launch)
    servers.hooks.after_adopt.append(runner.after_adopt)
    sock = listen_socket(settings.node_listen)
    agent = AgentServer(
        build_agent(settings, node, jars=servers.jars, supervisor=supervisor),
        sock,
        advertised_url(settings, sock),
    )
    return NodeRuntime(
        node=node,
        container=container,
        supervisor=supervisor,
        backups=runner,
        access=access,
        agent=agent,
    )


class NodeHost:
    """Runs a node runtime on its own event loop, in a thread beside RQ's blocking loop."""

    def __init__(self, settings: Settings, node: str, isolation: Isolation) -> None:
        self._settings = settings
        self._node = node
        self._isolation = isolation
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"node-{node}", daemon=True)
        self._runtime: NodeRuntime | None = None
        self._error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._side: list[asyncio.Task[None]] = []  # other contexts' loops beside the supervisor

    @property
    def runtime(self) -> NodeRuntime:
        if self._runtime is None:
            raise RuntimeError("this worker's node runtime is not running")
        return self._runtime

    def start(self, timeout: float = 60.0) -> NodeRuntime:
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise RuntimeError(f"the node runtime failed to start: {self._error}")
        return self.runtime

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        runtime: NodeRuntime | None = None
        try:
            runtime = build_node(self._settings, self._node, self._isolation)
            self._runtime = runtime
            runtime.agent.start()
            self._task = asyncio.create_task(runtime.supervisor.run())
            for work in monitoring.node_tasks(
                runtime.container.infra, self._node, runtime.supervisor
            ):
                self._side.append(asyncio.create_task(work()))
            await asyncio.sleep(0)
            self._ready.set()
            await self._task
        except asyncio.CancelledError:
            pass
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            log.exception("node_runtime_crashed")
        finally:
            for task in self._side:
                task.cancel()
            for task in self._side:
                with contextlib.suppress(BaseException):
                    await task
            if runtime is not None:
                await runtime.agent.stop()
                await runtime.container.close()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        """Run `coro` on the runtime's loop; a failure is always logged with its reason, also
        when the job that submitted it has already returned."""
        name = getattr(coro, "__qualname__", repr(coro))
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        future.add_done_callback(functools.partial(_log_failure, name))
        return future

    def stop(self) -> None:
        if self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout=15)
        self._runtime = None


def _log_failure(name: str, future: concurrent.futures.Future[Any]) -> None:
    if future.cancelled():
        return
    if (exc := future.exception()) is not None:
        JOB_FAILURES.labels(name).inc()
        log.error("node_job_failed", job=name, error=f"{type(exc).__name__}: {exc}", exc_info=exc)
