"""Scheduled tasks act through the servers context's own commands on the bus, as the system:
its handlers keep the lifecycle rules, queue the node jobs and audit the console."""

from __future__ import annotations

import uuid

from app.backups.domain.errors import InvalidSchedule
from app.servers.application.messages import (
    RestartServer,
    SendConsoleCommand,
    StartServer,
    StopServer,
)
from app.servers.domain.console import ConsolePolicy
from app.shared.bus import MessageBus
from app.shared.domain import Forbidden, InvalidInput


class BusServerControl:
    def __init__(self, bus: MessageBus, console: ConsolePolicy) -> None:
        self._bus = bus
        self._console = console

    def check_command(self, command: str) -> str:
        """The console policy's verdict, as a 422 on the schedule (a 403 would blame the user)."""
        try:
            return self._console.check(command)
        except (Forbidden, InvalidInput) as exc:
            raise InvalidSchedule(
                f"the console policy refuses {command[:60]!r}: {exc.detail}",
                field="command",
                **{key: value for key, value in exc.extra.items() if key != "field"},
            ) from None

    async def perform(self, action: str, server_id: uuid.UUID, *, command: str | None) -> str:
        if action == "command":
            sent = await self._bus.handle(
                SendConsoleCommand(
                    actor=None, server_id=server_id, command=command or "", via="schedule"
                )
            )
            return f"sent {sent!r}"
        if action == "restart":
            result = await self._bus.handle(RestartServer(actor=None, server_id=server_id))
        elif action == "stop":
            result = await self._bus.handle(StopServer(actor=None, server_id=server_id))
        elif action == "start":
            result = await self._bus.handle(StartServer(actor=None, server_id=server_id))
        else:
            raise ValueError(f"not a server action: {action}")
        return result.message
