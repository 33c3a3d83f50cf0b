"""The Supervisor: this node's running servers, and the collaborators that launch and watch them."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import structlog
from redis.asyncio import Redis

from app.servers.application.messages import GetServer
from app.servers.domain.ports import NodeHooks, Presence
from app.servers.infrastructure.catalog import VersionCatalog
from app.servers.infrastructure.files import ServerDirectory
from app.servers.infrastructure.jars import JarCache
from app.servers.infrastructure.java import JavaRuntimes
from app.servers.infrastructure.managed import Managed
from app.servers.infrastructure.sandbox import PRIVATE, Isolation, give_tree
from app.servers.infrastructure.supervisor.adoption import adopt
from app.servers.infrastructure.supervisor.console import Console
from app.servers.infrastructure.supervisor.exits import Exits
from app.servers.infrastructure.supervisor.lifecycle import Lifecycle
from app.servers.infrastructure.supervisor.status import Sampler
from app.servers.infrastructure.supervisor.tail import ConsoleTail
from app.servers.infrastructure.supervisor.watcher import Watcher
from app.settings import Settings
from app.shared.bus import MessageBus
from app.shared.domain import DomainError

log = structlog.get_logger(__name__)


class Supervisor:
    """Launches, adopts, tails, samples and stops this node's game servers."""

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
        self._bus = bus
        self._isolation = isolation
        self._root = settings.resolved_data_dir / "servers"
        self._managed: dict[uuid.UUID, Managed] = {}
        self._lifecycle = Lifecycle(
            node=node,
            bus=bus,
            catalog=catalog,
            jars=jars,
            java=java,
            isolation=isolation,
            hooks=self.hooks,
            managed=self._managed,
            directory=self.directory,
            install_timeout=settings.loader_install_timeout_seconds,
        )
        self._console = Console(node=node, redis=redis, managed=self._managed)
        self._tail = ConsoleTail(bus=bus, redis=redis, settings=settings, managed=self._managed)
        self._sampler = Sampler(
            bus=bus, redis=redis, settings=settings, managed=self._managed, hooks=self.hooks
        )
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

    def load(self) -> dict[str, int]:
        """What the node's record says of the servers running here."""
        return {
            "servers_running": len(self._managed),
            "memory_committed_mb": sum(m.memory_mb for m in self._managed.values()),
        }

    async def run(self) -> None:
        await asyncio.to_thread(self._prepare_root)
        loops = [self._tail.run, self._watcher.run, self._sampler.run]
        tasks = [asyncio.create_task(loop()) for loop in loops]
        try:
            await self.adopt()  # the loops take each adopted server as it is added
            # The API sends a command only while the node's console channel has a listener, and
            # a command for a server not yet adopted would be dropped after its 202: listen once
            # every running server can take one.
            tasks.append(asyncio.create_task(self._console.run()))
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

    async def adopt(self) -> None:
        """Take over the servers a predecessor launched; record those that ended meanwhile."""
        await adopt(
            node=self.node,
            bus=self._bus,
            hooks=self.hooks,
            managed=self._managed,
            directory=self.directory,
            settle=self._exits.settle,
        )

    async def start(self, server_id: uuid.UUID) -> None:
        await self._lifecycle.start(server_id)

    async def stop(self, server_id: uuid.UUID, *, kill: bool = False) -> None:
        await self._lifecycle.stop(server_id, kill=kill)

    async def restart(self, server_id: uuid.UUID) -> None:
        await self._lifecycle.restart(server_id)

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

    # NodeServers: what backups and groups use of this node's servers.

    def path(self, server_id: uuid.UUID) -> Path:
        return self.directory(server_id).path

    def presence(self, server_id: uuid.UUID) -> Presence:
        managed = self._managed.get(server_id)
        if managed is None:
            return "stopped"
        return "running" if managed.ready and managed.stop_requested_at is None else "busy"

    async def stop_and_wait(self, server_id: uuid.UUID, *, within: float) -> bool:
        managed = self._managed.get(server_id)
        if managed is None:
            return False
        await self.stop(server_id)
        async with asyncio.timeout(within):
            await managed.exited.wait()
        return True

    async def hand_over(self, server_id: uuid.UUID, tree: Path) -> None:
        await asyncio.to_thread(self._hand_over, server_id, tree)

    def _hand_over(self, server_id: uuid.UUID, tree: Path) -> None:
        owner = self.path(server_id).stat()
        if os.geteuid() == 0 and owner.st_uid != 0:  # the server keeps its own account
            give_tree(tree, (owner.st_uid, owner.st_gid), skip=PRIVATE)

    async def mark(self, server_id: uuid.UUID, name: str, content: bytes) -> None:
        await asyncio.to_thread(self.directory(server_id).write_private, name, content)

    async def unmark(self, server_id: uuid.UUID, name: str) -> None:
        await asyncio.to_thread(self.directory(server_id).remove_private, name)

    async def marked(self, server_id: uuid.UUID, name: str) -> bool:
        return await asyncio.to_thread(self.directory(server_id).has_private, name)

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
