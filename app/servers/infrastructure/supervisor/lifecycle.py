"""Starting, stopping and restarting servers; a start resolves the jar and Java, then launches."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Callable

import structlog

from app.servers.application.messages import (
    GetServer,
    RecordProcessExit,
    RecordProcessLaunched,
    RecordStartFailure,
    RequestAutomaticStart,
)
from app.servers.domain.model import Server, ServerState, ServerType
from app.servers.domain.ports import NodeHooks
from app.servers.infrastructure.catalog import VersionCatalog, required_java_major
from app.servers.infrastructure.files import ServerDirectory
from app.servers.infrastructure.installer import Artifacts, fetch_artifacts, install
from app.servers.infrastructure.jars import JarCache
from app.servers.infrastructure.java import JavaRuntime, JavaRuntimes
from app.servers.infrastructure.managed import Managed
from app.servers.infrastructure.process import (
    ConsoleUnavailable,
    launch,
    signal_server,
    write_console,
)
from app.servers.infrastructure.runtime import SocketPortProbe
from app.servers.infrastructure.sandbox import Account, Isolation
from app.servers.infrastructure.supervisor.tail import CONSOLE_LOG, FAST_WINDOW
from app.shared.bus import MessageBus
from app.shared.domain import DomainError

log = structlog.get_logger(__name__)


class Lifecycle:
    """Carries out the servers context's start, stop and restart requests on this node."""

    def __init__(
        self,
        *,
        node: str,
        bus: MessageBus,
        catalog: VersionCatalog,
        jars: JarCache,
        java: JavaRuntimes,
        isolation: Isolation,
        hooks: NodeHooks,
        managed: dict[uuid.UUID, Managed],
        directory: Callable[[uuid.UUID], ServerDirectory],
        install_timeout: float = 900.0,
    ) -> None:
        self._node = node
        self._bus = bus
        self._catalog = catalog
        self._jars = jars
        self._java = java
        self._isolation = isolation
        self._hooks = hooks
        self._managed = managed
        self._directory = directory
        self._install_timeout = install_timeout
        self._busy: set[uuid.UUID] = set()

    async def start(self, server_id: uuid.UUID) -> None:
        """Launch a server in STARTING; a failure is recorded as the start's failure."""
        if server_id in self._managed or server_id in self._busy:
            return
        self._busy.add(server_id)
        try:
            server = await self._bus.handle(GetServer(actor=None, server_id=server_id))
            if server.state is not ServerState.STARTING:
                log.info("start_skipped", server_id=str(server_id), state=server.state.value)
                return
            try:
                await self._launch(server)
            except DomainError as exc:
                await self._bus.handle(RecordStartFailure(server_id=server_id, reason=exc.detail))
            except Exception as exc:
                log.exception("server_start_failed", server_id=str(server_id))
                await self._bus.handle(
                    RecordStartFailure(server_id=server_id, reason=f"{type(exc).__name__}: {exc}")
                )
        finally:
            self._busy.discard(server_id)

    async def stop(self, server_id: uuid.UUID, *, kill: bool = False) -> None:
        """`stop` on the console (SIGTERM when it is closed), or SIGKILL; the watcher escalates."""
        managed = self._managed.get(server_id)
        if managed is None:
            await self._bus.handle(
                RecordProcessExit(server_id=server_id, exit_code=None, reason="not running")
            )
            return
        managed.stop_requested_at = managed.stop_requested_at or time.monotonic()
        if kill:
            signal_server(managed.identity, signal.SIGKILL)
            return
        try:
            write_console(managed.directory, "stop")
        except (ConsoleUnavailable, OSError):
            signal_server(managed.identity, signal.SIGTERM)
            managed.term_sent_at = time.monotonic()

    async def restart(self, server_id: uuid.UUID) -> None:
        managed = self._managed.get(server_id)
        if managed is not None:
            await self.stop(server_id)
            await managed.exited.wait()
        await self._bus.handle(RequestAutomaticStart(server_id=server_id))
        await self.start(server_id)

    async def _launch(self, server: Server) -> None:
        directory = self._directory(server.id)
        artifacts, runtime = await self._resolve(server)
        if not await asyncio.to_thread(SocketPortProbe().is_free, server.port):
            raise DomainError(f"port {server.port} is already in use on node {self._node}")
        await asyncio.to_thread(directory.ensure_private)
        offset = await asyncio.to_thread(directory.private_size, CONSOLE_LOG)
        account = await self._prepare(server, directory, artifacts, runtime)
        launched = await asyncio.to_thread(
            launch,
            directory,
            java=runtime.path,
            memory_mb=server.config.memory_mb,
            isolation=self._isolation,
            account=account,
            arguments=artifacts.arguments(),
        )
        identity = launched.jvm
        managed = Managed(
            server_id=server.id,
            directory=directory,
            identity=identity,
            port=server.port,
            memory_mb=server.config.memory_mb,
            ready=False,
            offset=offset,
            popen=launched.popen,
            wrapper=launched.wrapper,
        )
        managed.fast_until = time.monotonic() + FAST_WINDOW
        # Recorded before the tail may read the log: a server ready at once (its "Done" read
        # first) was recorded running and its launch then refused, its pid never kept, so no
        # later worker could adopt it. Managed whatever the record does.
        try:
            await self._bus.handle(
                RecordProcessLaunched(
                    server_id=server.id,
                    pid=identity.pid,
                    process_started_at=identity.started_at,
                    java=f"Java {runtime.major} ({runtime.path})",
                )
            )
        finally:
            self._managed[server.id] = managed
        log.info("server_launched", server_id=str(server.id), pid=identity.pid)

    async def _resolve(self, server: Server) -> tuple[Artifacts, JavaRuntime]:
        """The server's jars (uploaded, or fetched for its type and version) and its Java."""
        config = server.config
        if config.server_type is ServerType.CUSTOM:
            jar = self._jars.path_for(config.jar_sha256 or "")
            if jar is None:
                raise DomainError("the uploaded jar is missing from this node's jar cache")
            artifacts = Artifacts(server_jar=jar, java_major=required_java_major(config.version))
        else:
            artifacts = await fetch_artifacts(config, catalog=self._catalog, jars=self._jars)
        return artifacts, await self._java.for_version(config.version, artifacts.java_major)

    async def _prepare(
        self,
        server: Server,
        directory: ServerDirectory,
        artifacts: Artifacts,
        runtime: JavaRuntime,
    ) -> Account | None:
        """The directory, confined for the server's account, with its settings, jars (or its
        loader's install) and hooks."""
        await asyncio.to_thread(directory.path.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(
            install,
            directory,
            artifacts,
            java=runtime.path,
            timeout=self._install_timeout,
        )
        account = await asyncio.to_thread(self._isolation.prepare, directory.path)
        await asyncio.to_thread(
            directory.write_settings,
            server.config,
            port=server.port,
            eula_accepted=server.eula_accepted,
        )
        if artifacts.server_jar is not None:
            await asyncio.to_thread(directory.install_jar, artifacts.server_jar)
        for hook in self._hooks.before_launch:
            await hook(server, directory.path)
        return account
