"""The real composition root with every adapter that does I/O replaced by an in-memory fake:
a unit test drives `await app.bus.handle(Command(...))` through the production wiring."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.bootstrap import Container, bootstrap
from app.settings import Settings
from app.shared.bus import MessageBus
from tests.fakes.backups import BackupsFakes
from tests.fakes.core import FakeClock, FakeEventLog
from tests.fakes.database import FakeDatabase
from tests.fakes.files import FilesFakes
from tests.fakes.groups import GroupsFakes
from tests.fakes.monitoring import MonitoringFakes
from tests.fakes.servers import ServersFakes
from tests.fakes.users import UsersFakes

UNUSED_DATABASE = "postgresql+asyncpg://unused/none"
UNUSED_REDIS = "redis://unused:1/0"
"""Engines and clients are built on these but never connect: every adapter using them is faked."""


def fake_settings(tmp_path: Path, **values: Any) -> Settings:
    """Settings for an app with fakes: cheap password hashing, data under `tmp_path`."""
    defaults: dict[str, Any] = {
        "database_url": UNUSED_DATABASE,
        "redis_url": UNUSED_REDIS,
        "jwt_secret": secrets.token_urlsafe(48),
        "data_dir": tmp_path / "data",
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
    }
    return Settings(**(defaults | values))


@dataclass(kw_only=True)
class FakeApp:
    """What a unit test runs against: the bootstrapped container, and the fakes it was given.

    `db` holds the tables of servers, groups and files; `events` every committed event (each
    delivered to the bus's event handlers as it commits, unless `events.held`). Each context's
    fakes are named as its `wire()` names its dependencies: `servers.nodes`, `groups.profiles`...
    """

    container: Container
    clock: FakeClock
    events: FakeEventLog
    db: FakeDatabase
    users: UsersFakes
    servers: ServersFakes
    groups: GroupsFakes
    files: FilesFakes
    backups: BackupsFakes
    monitoring: MonitoringFakes

    @property
    def bus(self) -> MessageBus:
        return self.container.bus

    @property
    def settings(self) -> Settings:
        return self.container.settings

    async def close(self) -> None:
        await self.container.close()


def _given(fakes: Any) -> dict[str, Any]:
    """A context's fakes as `bootstrap()` overrides; None leaves the real adapter."""
    values = {f.name: getattr(fakes, f.name) for f in dataclasses.fields(fakes)}
    return {name: value for name, value in values.items() if value is not None}


def fake_app(
    tmp_path: Path,
    *,
    clock: FakeClock | None = None,
    settings: Settings | None = None,
    **overrides: Mapping[str, Any],
) -> FakeApp:
    """Bootstrap the app on fakes; `overrides` replaces some per context, e.g.
    `fake_app(tmp_path, backups={"servers": FakeServerLookup()})`."""
    settings = settings or fake_settings(tmp_path)
    events, db = FakeEventLog(), FakeDatabase()
    fakes: dict[str, Any] = {
        "users": UsersFakes.build(events),
        "servers": ServersFakes.build(db, events),
        "groups": GroupsFakes.build(db, events),
        "files": FilesFakes.build(db, events, text_max_bytes=settings.file_edit_max_bytes),
        "backups": BackupsFakes.build(events),
        "monitoring": MonitoringFakes.build(),
    }
    db.usernames = fakes["users"].usernames
    for context, given in overrides.items():
        for name, value in given.items():
            if any(f.name == name for f in dataclasses.fields(fakes[context])):
                setattr(fakes[context], name, value)
    clock = clock or FakeClock()
    container = bootstrap(
        settings,
        clock=clock,
        overrides={
            context: _given(context_fakes) | dict(overrides.get(context, {}))
            for context, context_fakes in fakes.items()
        },
    )
    events.connect(container.bus.publish)
    return FakeApp(container=container, clock=clock, events=events, db=db, **fakes)
