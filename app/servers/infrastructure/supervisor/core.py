"""The node supervisor: launches, adopts, tails, samples and stops this node's game servers."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Callable

import structlog
from redis.asyncio import Redis

from app.servers.application.messages import (
    GetServer,
    ListActiveNodeServers,
    RecordProcessExit,
    RecordProcessLaunched,
    RecordStartFailure,
    RequestAutomaticStart,
)
from app.servers.domain.model import Server, ServerState, ServerType
from app.servers.infrastructure.catalog import VersionCatalog, required_java_major
from app.servers.infrastructure.files import ServerDirectory
from app.servers.infrastructure.jars import JarCache
from app.servers.infrastructure.java import JavaRuntimes
from app.servers.infrastructure.managed import Managed, NodeHooks
from app.servers.infrastructure.process import (
    ConsoleUnavailable,
    ProcessIdentity,
    find_jvm,
    is_alive,
    launch,
    signal_server,
    write_console,
)
from app.servers.infrastructure.runtime import SocketPortProbe
from app.servers.infrastructure.sandbox import Isolation
from app.servers.infrastructure.supervisor.console import Console
from app.servers.infrastructure.supervisor.exits import Exits
from app.servers.infrastructure.supervisor.status import Sampler
from app.servers.infrastructure.supervisor.tail import (
    CONSOLE_LOG,
    FAST_WINDOW,
    ConsoleTail,
    saved_offset,
)
from app.servers.infrastructure.supervisor.watcher import Watcher
from app.settings import Settings
from app.shared.bus import MessageBus
from app.shared.domain import DomainError

log = structlog.get_logger(__name__)


class Supervisor:
    def __init__(
        self,
        *,
        node: str,
        settings: Settings,
        bus: MessageBus,
        redis: Redis,
        catalog: VersionCatalog,
        jars: JarCache,
        java: JavaRuntimes,
        isolation: Isolation,
        hooks: NodeHooks | None = None,
    ) -> None:
        self.node = node
        self.hooks = hooks or NodeHooks()
        self._isolation = isolation
        self._bus = bus
        self._catalog = catalog
        self._jars = jars
        self._java = java
        self._root = settings.resolved_data_dir / "servers"
        self._managed: dict[uuid.UUID, Managed] = {}
        self._busy: set[uuid.UUID] = set()
        self._tail = ConsoleTail(bus=bus, redis=redis, settings=settings, managed=self._managed)
        self._console = Console(node=node, redis=redis, managed=self._managed)
        self._sampler = Sampler(bus=bus, redis=redis, settings=settings, managed=self._managed)
        self._exits = Exits(
            bus=bus,
            managed=self._managed,
            tail=self._tail,
            sampler=self._sampler,
            start=self.start,
        )
        self._watcher = Watcher(
            bus=bus, settings=settings, managed=self._managed, finish=self._exits.finish
        )

    @property
    def bus(self) -> MessageBus:
        """The worker's bus, for job functions of other contexts."""
        return self._bus

    def directory(self, server_id: uuid.UUID) -> ServerDirectory:
        return ServerDirectory(self._root / str(server_id))

    @property
    def managed(self) -> dict[uuid.UUID, Managed]:
        return self._managed

    async def run(self) -> None:
        await asyncio.to_thread(self._prepare_root)
        await self.adopt()
        loops = [self._tail.run, self._watcher.run, self._sampler.run, self._console.run]
        tasks = [asyncio.create_task(loop()) for loop in loops]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            self._exits.cancel()
            self._tail.save_offsets()

    def _prepare_root(self) -> None:
        """`servers/` is the worker's; only where servers' accounts reach their directories by
        path (a root worker without private mounts) may they pass through it, and the data
        directory above it, without listing either."""
        self._root.mkdir(parents=True, exist_ok=True, mode=0o700)
        mode = self._isolation.data_dir_mode
        self._root.chmod(mode)
        if mode & 0o011:
            data_dir = self._root.parent
            data_dir.chmod(data_dir.stat().st_mode & 0o777 | mode)

    # Adoption: a restarted worker takes over the servers its predecessor launched.

    async def adopt(self) -> None:
        servers = await self._bus.handle(ListActiveNodeServers(node=self.node))
        for server in servers:
            directory = self.directory(server.id)
            if server.pid is not None and server.process_started_at is not None:
                identity = ProcessIdentity(server.pid, server.process_started_at)
                if is_alive(identity):
                    # Launched by an older worker that recorded the wrapper shell: watch the JVM.
                    identity = find_jvm(identity.pid) or identity
                    managed = Managed(
                        server_id=server.id,
                        directory=directory,
                        identity=identity,
                        port=server.port,
                        ready=server.state is ServerState.RUNNING,
                        offset=saved_offset(directory),
                    )
                    managed.players = set(server.players)
                    if server.state is ServerState.STOPPING:
                        managed.stop_requested_at = time.monotonic()
                    self._managed[server.id] = managed
                    log.info("server_adopted", server_id=str(server.id), pid=server.pid)
                    await self._after_adopt(server.id, directory)
                    continue
                await self._exits.settle(server.id, directory)
            elif server.state is ServerState.STOPPING:
                await self._bus.handle(
                    RecordProcessExit(server_id=server.id, exit_code=None, reason="not running")
                )

    async def _after_adopt(self, server_id: uuid.UUID, directory: ServerDirectory) -> None:
        for hook in self.hooks.after_adopt:
            try:
                await hook(server_id, directory)
            except Exception:
                log.exception("after_adopt_hook_failed", server_id=str(server_id))

    # Lifecycle requests (from RQ jobs or the restart policy).

    async def start(self, server_id: uuid.UUID) -> None:
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

    async def _launch(self, server: Server) -> None:
        directory = self.directory(server.id)
        config = server.config
        if config.server_type is ServerType.CUSTOM:
            jar = self._jars.path_for(config.jar_sha256 or "")
            if jar is None:
                raise DomainError("the uploaded jar is missing from this node's jar cache")
            java_major = required_java_major(config.version)
        else:
            spec = await self._catalog.resolve(config.server_type.value, config.version)
            jar = await self._jars.fetch(spec)
            java_major = spec.java_major
        runtime = await self._java.for_version(config.version, java_major)
        if not await asyncio.to_thread(SocketPortProbe().is_free, server.port):
            raise DomainError(f"port {server.port} is already in use on node {self.node}")
        await asyncio.to_thread(directory.path.mkdir, parents=True, exist_ok=True)
        account = await asyncio.to_thread(self._isolation.prepare, directory.path)
        await asyncio.to_thread(
            directory.write_settings, config, port=server.port, eula_accepted=server.eula_accepted
        )
        await asyncio.to_thread(directory.install_jar, jar)
        for hook in self.hooks.before_launch:
            await hook(server, directory)
        offset = await asyncio.to_thread(directory.private_size, CONSOLE_LOG)
        launched = await asyncio.to_thread(
            launch,
            directory,
            java=runtime.path,
            memory_mb=config.memory_mb,
            isolation=self._isolation,
            account=account,
        )
        identity = launched.jvm
        managed = Managed(
            server_id=server.id,
            directory=directory,
            identity=identity,
            port=server.port,
            ready=False,
            offset=offset,
            popen=launched.popen,
            wrapper=launched.wrapper,
        )
        managed.fast_until = time.monotonic() + FAST_WINDOW
        self._managed[server.id] = managed
        await self._bus.handle(
            RecordProcessLaunched(
                server_id=server.id,
                pid=identity.pid,
                process_started_at=identity.started_at,
                java=f"Java {runtime.major} ({runtime.path})",
            )
        )
        log.info("server_launched", server_id=str(server.id), pid=identity.pid)

    async def stop(self, server_id: uuid.UUID, *, kill: bool = False) -> None:
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

    async def sync_files(self, server_id: uuid.UUID) -> None:
        """Rewrite the managed settings files after an owner changed the configuration."""
        try:
            server = await self._bus.handle(GetServer(actor=None, server_id=server_id))
        except DomainError:
            return
        directory = self.directory(server_id)
        await asyncio.to_thread(directory.path.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(
            directory.write_settings,
            server.config,
            port=server.port,
            eula_accepted=server.eula_accepted,
        )

    async def delete_files(self, server_id: uuid.UUID) -> None:
        if server_id in self._managed:
            log.warning("delete_of_running_server_refused", server_id=str(server_id))
            return
        await asyncio.to_thread(self.directory(server_id).remove)

    async def send(self, server_id: uuid.UUID, command: str) -> None:
        await self._console.send(server_id, command)

    async def converse(
        self,
        server_id: uuid.UUID,
        command: str,
        *,
        answer: Callable[[str], bool],
        within: float = 10.0,
    ) -> str:
        """Send a console command and return the first console message that `answer` accepts.

        `answer` sees each message without its `[time] [thread/LEVEL]:` prefix. Raises
        NotRunningHere when the server is not running under this supervisor and NoAnswer when
        nothing matching arrives within `within` seconds.
        """
        return await self._console.converse(server_id, command, answer=answer, within=within)
