"""The `group_summary` projection: the groups list with its counts, one row per group, by key."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from app.groups.domain import events
from app.servers.domain.events import ServerDeleted
from app.shared.readmodels import ProjectedEvent, event_names, keyed

_UPSERT = """
INSERT INTO group_summary AS l (
    id, name, description, group_type, op_level, created_at, owner_id, owner_username,
    player_count, server_count)
SELECT g.id, g.name, g.description, g.group_type, g.op_level, g.created_at, g.owner_id,
    u.username,
    (SELECT count(*) FROM group_players gp WHERE gp.group_id = g.id),
    (SELECT count(*) FROM server_groups sg WHERE sg.group_id = g.id)
FROM groups g
LEFT JOIN users u ON u.id = g.owner_id
WHERE g.id = ANY($1)
ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name, description = EXCLUDED.description,
    group_type = EXCLUDED.group_type, op_level = EXCLUDED.op_level,
    created_at = EXCLUDED.created_at, owner_id = EXCLUDED.owner_id,
    owner_username = EXCLUDED.owner_username, player_count = EXCLUDED.player_count,
    server_count = EXCLUDED.server_count
WHERE l IS DISTINCT FROM EXCLUDED
"""
# A deleted server's attachments went with it (cascade), and nothing says to which groups:
# recount the groups attached to anything. Deleting a server is rare; this is not a hot path.
_RECOUNT_SERVERS = sa.text(
    "UPDATE group_summary l SET server_count = c.n FROM ("
    "  SELECT l2.id, (SELECT count(*) FROM server_groups sg WHERE sg.group_id = l2.id) AS n"
    "  FROM group_summary l2 WHERE l2.server_count > 0) c"
    " WHERE l.id = c.id AND l.server_count <> c.n"
)
_SERVER_DELETED = ServerDeleted.event_type()


async def _recount_after_server_deletions(
    conn: AsyncConnection, batch: Sequence[ProjectedEvent]
) -> None:
    if any(e.event_type == _SERVER_DELETED for e in batch):
        await conn.execute(_RECOUNT_SERVERS)


GROUP_SUMMARY = keyed(
    "group_summary",
    events=event_names(events.GROUP_EVENTS, [ServerDeleted]),
    table="group_summary",
    key="id",
    source="groups",
    upsert=_UPSERT,
    key_of=lambda e: None if e.event_type == _SERVER_DELETED else e.aggregate_id,
    also=_recount_after_server_deletions,
)
