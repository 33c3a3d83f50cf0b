"""On a node: bring a server's ops.json / whitelist.json and its running JVM in line."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import structlog

from app.groups.application.messages import AccessPlan, GetAccessPlan, RecordAccessSync, SyncOutcome
from app.groups.domain.access import (
    RELOAD,
    ConsoleStep,
    Entry,
    OpEntry,
    Reconciliation,
    WhitelistEntry,
    console_steps,
    drift_of,
    reconcile,
)
from app.groups.infrastructure.listfiles import (
    OPS,
    WHITELIST,
    ListFiles,
    ops_json,
    read_lists,
    whitelist_json,
    write_list,
)
from app.monitoring.application.notifications import NotifyAccessSyncFailed
from app.servers.application.messages import GetServer
from app.servers.domain.model import Server
from app.servers.domain.ports import NoAnswer, NotRunningHere
from app.shared.bus import MessageBus
from app.shared.domain import Clock, NotFound

log = structlog.get_logger(__name__)


class Console(Protocol):
    async def converse(
        self,
        server_id: uuid.UUID,
        command: str,
        *,
        answer: Callable[[str], bool],
        within: float = 10.0,
    ) -> str: ...


class AccessSync:
    """Commands first (so the JVM agrees), then the files (exact levels and UUIDs), then reload.

    A server that is not running here only gets its files; it reads them when it starts.
    """

    def __init__(self, bus: MessageBus, clock: Clock, *, reply_seconds: float = 10.0) -> None:
        self._bus = bus
        self._clock = clock
        self._reply_seconds = reply_seconds

    async def before_launch(self, server: Server, directory: Path) -> None:
        """Node hook: the JVM starts with the dashboard's current lists."""
        outcome = await self.apply(server.id, directory, console=None)
        if outcome is not None and outcome.failures:
            log.warning("access_sync_before_launch_failures", failures=list(outcome.failures))

    async def apply(
        self,
        server_id: uuid.UUID,
        directory: Path,
        *,
        console: Console | None,
        check_only: bool = False,
    ) -> SyncOutcome | None:
        """None when the server no longer exists (its directory is left alone)."""
        try:
            await self._bus.handle(GetServer(actor=None, server_id=server_id))
        except NotFound:
            return None
        plan = await self._bus.handle(GetAccessPlan(server_id=server_id))
        try:
            files = await asyncio.to_thread(read_lists, directory)
            if check_only:
                outcome = self._drift_only(plan, files)
            else:
                outcome = await self._apply(plan, files, directory, console)
        except Exception as exc:
            await self._notify(server_id, (f"{type(exc).__name__}: {exc}",), check_only)
            raise
        await self._bus.handle(RecordAccessSync(server_id=server_id, outcome=outcome))
        if outcome.failures:
            await self._notify(server_id, outcome.failures, check_only)
        log.info(
            "access_synced",
            server_id=str(server_id),
            check_only=check_only,
            commands=len(outcome.commands),
            failures=list(outcome.failures),
        )
        return outcome

    async def _notify(
        self, server_id: uuid.UUID, failures: tuple[str, ...], check_only: bool
    ) -> None:
        """Tell the owner and the admins (stored, and live); the sync's result stands if not."""
        try:
            await self._bus.handle(
                NotifyAccessSyncFailed(
                    server_id=server_id, failures=failures, check_only=check_only
                )
            )
        except Exception:
            log.warning("access_sync_failure_not_notified", server_id=str(server_id), exc_info=True)

    def _drift_only(self, plan: AccessPlan, files: ListFiles) -> SyncOutcome:
        failures = [
            f"{name} is not valid JSON"
            for name, e in ((OPS, files.ops), (WHITELIST, files.whitelist))
            if e is None
        ]
        return SyncOutcome(
            at=self._clock.now(),
            check_only=True,
            applied_ops=plan.applied_ops,
            applied_whitelist=plan.applied_whitelist,
            commands=(),
            failures=tuple(failures),
            drift_ops=tuple(e.name for e in drift_of(files.ops or [], plan.lists.ops)),
            drift_whitelist=tuple(
                e.name for e in drift_of(files.whitelist or [], plan.lists.whitelist)
            ),
        )

    async def _apply(
        self, plan: AccessPlan, files: ListFiles, directory: Path, console: Console | None
    ) -> SyncOutcome:
        failures = [
            f"{name} is not valid JSON; it was left as it is"
            for name, entries in ((OPS, files.ops), (WHITELIST, files.whitelist))
            if entries is None and not plan.authoritative
        ]
        ops = _reconcile(files.ops, plan.lists.ops, plan.applied_ops, plan.authoritative)
        whitelist = _reconcile(
            files.whitelist, plan.lists.whitelist, plan.applied_whitelist, plan.authoritative
        )
        writes: list[tuple[str, bytes]] = []
        if ops is not None and (content := ops_json(ops.entries)) != files.raw_ops:
            writes.append((OPS, content))
        if (
            whitelist is not None
            and (content := whitelist_json(whitelist.entries)) != files.raw_whitelist
        ):
            writes.append((WHITELIST, content))
        commands: list[str] = []
        running = console is not None
        for step in console_steps(ops or _UNCHANGED_OPS, whitelist or _UNCHANGED_WHITELIST):
            if not running:
                break
            running = await self._converse(console, plan.server_id, step, commands, failures)
        for name, content in writes:
            await asyncio.to_thread(write_list, directory, name, content)
        if running and writes:
            await self._converse(console, plan.server_id, RELOAD, commands, failures)
        return SyncOutcome(
            at=self._clock.now(),
            check_only=False,
            applied_ops=tuple(e.uuid for e in plan.lists.ops),
            applied_whitelist=tuple(e.uuid for e in plan.lists.whitelist),
            commands=tuple(commands),
            failures=tuple(failures),
            drift_ops=tuple(e.name for e in ops.drift) if ops else (),
            drift_whitelist=tuple(e.name for e in whitelist.drift) if whitelist else (),
        )

    async def _converse(
        self,
        console: Console | None,
        server_id: uuid.UUID,
        step: ConsoleStep,
        commands: list[str],
        failures: list[str],
    ) -> bool:
        """Send one step; False once the server turns out not to be running here."""
        if console is None:
            return False
        try:
            reply = await console.converse(
                server_id, step.command, answer=step.answers, within=self._reply_seconds
            )
        except NotRunningHere:
            return False
        except NoAnswer as exc:
            failures.append(f"{step.command}: {exc}")
            return True
        commands.append(step.command)
        if not step.succeeded(reply):
            failures.append(f"{step.command}: {reply}")
        return True


_UNCHANGED_OPS: Reconciliation[OpEntry] = Reconciliation(entries=(), added=(), removed=(), drift=())
_UNCHANGED_WHITELIST: Reconciliation[WhitelistEntry] = Reconciliation(
    entries=(), added=(), removed=(), drift=()
)


def _reconcile[E: Entry](
    current: list[E] | None, desired: Sequence[E], applied: Sequence[str], authoritative: bool
) -> Reconciliation[E] | None:
    """None when the file cannot be read and hand entries could be lost by rewriting it."""
    if current is None and not authoritative:
        return None
    return reconcile(current or [], desired, applied, authoritative=authoritative)
