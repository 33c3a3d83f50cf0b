"""The composition root: the shared infrastructure once, then every context wired onto it.

Each context's `module.py` says what it is (its message tables, events, routers) and builds
its own dependencies in `wire()`, taking from other contexts only the ports it names. Tests
and the node runtime build from here too: `overrides` replaces any adapter of any context,
keyed by the context and the dependency's name, e.g. {"servers": {"uow": FakeServersUow()}}.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from app.backups import module as backups
from app.files import module as files
from app.groups import module as groups
from app.monitoring import module as monitoring
from app.servers import module as servers
from app.settings import Settings
from app.shared.bus import MessageBus
from app.shared.domain import Clock
from app.shared.infrastructure import Infrastructure
from app.shared.projections import Projections
from app.shared.ratelimit import RateLimiter
from app.shared.relay import EventRelay
from app.shared.wiring import register
from app.users import module as users
from app.users.infrastructure.security import JwtAuthenticator

CONTEXTS = (users, servers, groups, files, backups, monitoring)
Overrides = Mapping[str, Mapping[str, Any]]


@dataclass(kw_only=True)
class Container:
    """One process's app: the infrastructure, the bus, and what contexts export to it."""

    infra: Infrastructure
    users: users.Users
    servers: servers.Servers
    backups: backups.Backups
    limiter: RateLimiter | None
    deps: dict[str, dict[str, Any]]
    projections: Projections

    @property
    def settings(self) -> Settings:
        return self.infra.settings

    @property
    def bus(self) -> MessageBus:
        return self.infra.bus

    @property
    def relay(self) -> EventRelay:
        return self.infra.relay

    @property
    def redis(self) -> Redis:
        return self.infra.redis

    @property
    def authenticator(self) -> JwtAuthenticator:
        return self.users.authenticator

    async def close(self) -> None:
        await self.infra.close()


def bootstrap(
    settings: Settings, *, clock: Clock | None = None, overrides: Overrides | None = None
) -> Container:
    events = [event for context in CONTEXTS for event in context.EVENTS]
    infra = Infrastructure.build(settings, events=events, clock=clock)
    given = {name: dict(values) for name, values in (overrides or {}).items()}

    def own(context: str) -> dict[str, Any]:
        return given.get(context, {})

    users_deps, users_exports = users.wire(infra, **own("users"))
    servers_deps, servers_exports = servers.wire(infra, **own("servers"))
    nodes = servers_deps["nodes"]
    groups_deps = groups.wire(infra, nodes=nodes, **own("groups"))
    files_deps = files.wire(infra, **own("files"))
    backups_deps, backups_exports = backups.wire(
        infra, nodes=nodes, console=servers_deps["policy"].console, **own("backups")
    )
    projections = Projections(
        infra.projection_engine,
        [projection for context in CONTEXTS for projection in context.HANDLERS.projections],
        batch_size=settings.projection_batch_size,
        poll_seconds=settings.relay_poll_seconds,
    )
    infra.on_commit.append(projections.wake)
    monitoring_deps = monitoring.wire(
        infra,
        projectors={name: projections.only(name) for name in projections.names},
        **own("monitoring"),
    )
    deps = {
        "users": users_deps,
        "servers": servers_deps,
        "groups": groups_deps,
        "files": files_deps,
        "backups": backups_deps,
        "monitoring": monitoring_deps,
    }
    for context in CONTEXTS:
        register(infra.bus, context.HANDLERS, deps.get(context.__name__.split(".")[1], {}))
    return Container(
        infra=infra,
        users=users_exports,
        servers=servers_exports,
        backups=backups_exports,
        limiter=RateLimiter.from_settings(infra.redis, settings),
        deps=deps,
        projections=projections,
    )
