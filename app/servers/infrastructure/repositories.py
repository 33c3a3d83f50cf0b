"""SQL repository and unit of work of the servers context, and the server list read model."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.servers.application.messages import ServerListFilter, ServerListItem
from app.servers.domain.model import (
    ACTIVE_STATES,
    RestartMode,
    RestartPolicy,
    Server,
    ServerConfig,
    ServerState,
    ServerType,
)
from app.servers.domain.ports import NodeUsage
from app.servers.infrastructure.tables import nodes, servers
from app.shared.db import ReadPool, contains_pattern, driver, lock_until_commit
from app.shared.domain import Page
from app.shared.uow import SqlRepository, SqlUnitOfWork


def config_to_json(config: ServerConfig) -> dict[str, Any]:
    return {
        "server_type": config.server_type.value,
        "version": config.version,
        "memory_mb": config.memory_mb,
        "max_players": config.max_players,
        "motd": config.motd,
        "online_mode": config.online_mode,
        "whitelist": config.whitelist,
        "jar_sha256": config.jar_sha256,
        "loader_version": config.loader_version,
        "restart": {
            "mode": config.restart.mode.value,
            "max_restarts": config.restart.max_restarts,
            "backoff_seconds": config.restart.backoff_seconds,
        },
    }


def config_from_json(data: dict[str, Any]) -> ServerConfig:
    restart = data.get("restart") or {}
    return ServerConfig(
        server_type=ServerType(data["server_type"]),
        version=data["version"],
        memory_mb=int(data["memory_mb"]),
        max_players=int(data.get("max_players", 20)),
        motd=data.get("motd", "A Minecraft Server"),
        online_mode=bool(data.get("online_mode", True)),
        whitelist=bool(data.get("whitelist", False)),
        jar_sha256=data.get("jar_sha256"),
        loader_version=data.get("loader_version"),
        restart=RestartPolicy(
            mode=RestartMode(restart.get("mode", "off")),
            max_restarts=int(restart.get("max_restarts", 3)),
            backoff_seconds=float(restart.get("backoff_seconds", 10.0)),
        ),
    )


def _server(row: RowMapping | asyncpg.Record) -> Server:
    return Server(
        id=row["id"],
        version=row["version"],
        name=row["name"],
        description=row["description"],
        owner_id=row["owner_id"],
        node=row["node"],
        port=row["port"],
        config=config_from_json(row["configuration"]),
        eula_accepted=row["eula_accepted"],
        state=ServerState(row["status"]),
        created_at=row["created_at"],
        status_message=row["status_message"],
        state_changed_at=row["state_changed_at"],
        pid=row["pid"],
        process_started_at=row["process_started_at"],
        started_at=row["started_at"],
        restart_required=row["restart_required"],
        restart_count=row["restart_count"],
        players=tuple(row["players"]),
    )


# What a create, an update or a start runs in its transaction, straight through asyncpg.
_BY_ID = "SELECT * FROM servers WHERE id = $1"
_NAME_TAKEN = "SELECT EXISTS (SELECT 1 FROM servers WHERE owner_id = $1 AND lower(name) = $2)"
_PORTS = "SELECT port FROM servers WHERE node = $1"
_USAGE = "SELECT node, count(*), sum(memory_mb) FROM servers GROUP BY node"
_USAGE_OF = (
    "SELECT node, count(*), sum(memory_mb) FROM servers WHERE node = ANY($1::text[]) GROUP BY node"
)
_CORDONED = "SELECT name FROM nodes WHERE cordoned"


class SqlServerRepository(SqlRepository[Server]):
    table = servers

    def to_row(self, aggregate: Server) -> dict[str, Any]:
        return {
            "id": aggregate.id,
            "name": aggregate.name,
            "description": aggregate.description,
            "owner_id": aggregate.owner_id,
            "node": aggregate.node,
            "port": aggregate.port,
            "status": aggregate.state.value,
            "configuration": config_to_json(aggregate.config),
            "eula_accepted": aggregate.eula_accepted,
            "status_message": aggregate.status_message,
            "state_changed_at": aggregate.state_changed_at,
            "pid": aggregate.pid,
            "process_started_at": aggregate.process_started_at,
            "started_at": aggregate.started_at,
            "restart_required": aggregate.restart_required,
            "restart_count": aggregate.restart_count,
            "players": list(aggregate.players),
            "created_at": aggregate.created_at,
        }

    async def get(self, server_id: uuid.UUID) -> Server | None:
        if server_id in self.seen:
            return self.seen[server_id]
        row = await (await driver(self.conn)).fetchrow(_BY_ID, server_id)
        return self.track(_server(row)) if row else None

    async def name_taken(self, owner_id: uuid.UUID, name: str) -> bool:
        return bool(await (await driver(self.conn)).fetchval(_NAME_TAKEN, owner_id, name.lower()))

    async def ports_in_use(self, node: str) -> set[int]:
        return {row[0] for row in await (await driver(self.conn)).fetch(_PORTS, node)}

    async def lock_node(self, node: str) -> None:
        """A transaction-scoped advisory lock per node: creates and moves onto one node take
        their port and memory one after another, so none races another for the same port."""
        await lock_until_commit(self.conn, f"mcdash.node:{node}")

    async def node_usage(self, *among: str) -> dict[str, NodeUsage]:
        db = await driver(self.conn)
        rows = await (db.fetch(_USAGE_OF, list(among)) if among else db.fetch(_USAGE))
        return {name: NodeUsage(servers=count, memory_mb=int(mb or 0)) for name, count, mb in rows}

    async def cordoned(self) -> set[str]:
        return {row[0] for row in await (await driver(self.conn)).fetch(_CORDONED)}

    async def set_cordoned(self, node: str, cordoned: bool) -> None:
        statement = pg_insert(nodes).values(name=node, cordoned=cordoned)
        await self.conn.execute(
            statement.on_conflict_do_update(
                index_elements=[nodes.c.name],
                set_={"cordoned": cordoned, "updated_at": sa.func.now()},
            )
        )

    async def remove(self, server: Server) -> None:
        """Delete the row now; the ServerDeleted event still commits with it."""
        self.seen.pop(server.id, None)
        await self.conn.execute(servers.delete().where(servers.c.id == server.id))


class SqlServersUnitOfWork(SqlUnitOfWork):
    servers: SqlServerRepository

    def start(self, conn: AsyncConnection) -> None:
        self.servers = self.repository(SqlServerRepository(conn))


_ITEM_FIELDS = tuple(ServerListItem.__annotations__)
_PAGE_COLUMNS = ", ".join(_ITEM_FIELDS)


class SqlServerListReadModel:
    """Reads `server_list` in one query per page: the count rides along as a window."""

    def __init__(self, engine: AsyncEngine, pool: ReadPool) -> None:
        self._engine = engine
        self._pool = pool

    async def get(self, server_id: uuid.UUID) -> Server | None:
        """One server as stored (a snapshot, not tracked by any unit of work): what a command
        answers with, so one round trip straight through asyncpg."""
        row = await self._pool.fetchrow(_BY_ID, server_id)
        return _server(row) if row else None

    async def active_on_node(self, node: str) -> list[Server]:
        active = [state.value for state in ACTIVE_STATES]
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(servers).where(servers.c.node == node, servers.c.status.in_(active))
                )
            ).mappings()
            return [_server(row) for row in rows]

    async def unclaimed_starts(self, requested_before: datetime) -> list[uuid.UUID]:
        """Servers still waiting for a worker to launch them since before the cutoff."""
        async with self._engine.connect() as conn:
            rows = await conn.scalars(
                sa.select(servers.c.id).where(
                    servers.c.status == ServerState.STARTING.value,
                    servers.c.pid.is_(None),
                    servers.c.state_changed_at < requested_before,
                )
            )
            return list(rows)

    async def page(self, filter: ServerListFilter) -> Page[ServerListItem]:
        """The hot read of the dashboard: one round trip straight through asyncpg."""
        params: list[object] = []

        def param(value: object) -> str:
            params.append(value)
            return f"${len(params)}"

        where: list[str] = []
        if filter.owner_id is not None:
            where.append(f"owner_id = {param(filter.owner_id)}")
        if filter.status is not None:
            where.append(f"status = {param(filter.status)}")
        if filter.server_type is not None:
            where.append(f"server_type = {param(filter.server_type)}")
        if filter.search:
            where.append(f"name ILIKE {param(contains_pattern(filter.search))}")
        condition = f"WHERE {' AND '.join(where)}" if where else ""
        limit, offset = param(filter.limit), param((filter.page - 1) * filter.limit)
        # Only fixed fragments and $n placeholders go into the text; values travel as parameters.
        query = (
            f"SELECT {_PAGE_COLUMNS}, count(*) OVER () AS total FROM server_list "  # noqa: S608
            f"{condition} ORDER BY created_at DESC, id LIMIT {limit} OFFSET {offset}"
        )
        rows = await self._pool.fetch(query, *params)
        if rows:
            total = int(rows[0]["total"])
        else:
            count_query = f"SELECT count(*) FROM server_list {condition}"  # noqa: S608
            total = int(str(await self._pool.fetchval(count_query, *params[:-2])))
        # The columns are the item's fields in order, then the total, which zip leaves out.
        items = [dict(zip(_ITEM_FIELDS, row, strict=False)) for row in rows]
        return Page(
            items=cast(list[ServerListItem], items),
            total=total,
            page=filter.page,
            limit=filter.limit,
        )
