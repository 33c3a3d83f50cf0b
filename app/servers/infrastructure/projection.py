"""The `server_list` projection: the dashboard's list, one row per server, kept by key.

An event recomputes the rows of the servers it names from the tables (the server, its owner's
name, its completed backups), so applying one twice or out of order changes nothing, and a
command costs the same with 50 servers as with 5,000.
"""

from __future__ import annotations

import uuid

from app.servers.domain import events
from app.shared.readmodels import ProjectedEvent, event_names, keyed

# The backups context's events that change a server's completed backups (its read model is
# part of this list; the names are those stored in the event store).
BACKUP_COUNT_EVENTS = frozenset({"BackupCompleted", "BackupFailed", "BackupDeleted"})

_UPSERT = """
INSERT INTO server_list AS l (
    id, name, description, status, status_message, port, node, server_type, version,
    memory_mb, player_count, max_players, restart_required, created_at, owner_id,
    owner_username, backup_count, latest_backup)
SELECT s.id, s.name, s.description, s.status, s.status_message, s.port, s.node,
    s.configuration->>'server_type', s.configuration->>'version',
    (s.configuration->>'memory_mb')::integer, jsonb_array_length(s.players),
    (s.configuration->>'max_players')::integer, s.restart_required, s.created_at, s.owner_id,
    u.username, b.backup_count, b.latest_backup
FROM servers s
LEFT JOIN users u ON u.id = s.owner_id
CROSS JOIN LATERAL (
    SELECT count(*) AS backup_count, max(created_at) AS latest_backup
    FROM backups WHERE server_id = s.id AND status = 'completed'
) b
WHERE s.id = ANY($1)
ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name, description = EXCLUDED.description, status = EXCLUDED.status,
    status_message = EXCLUDED.status_message, port = EXCLUDED.port, node = EXCLUDED.node,
    server_type = EXCLUDED.server_type, version = EXCLUDED.version,
    memory_mb = EXCLUDED.memory_mb, player_count = EXCLUDED.player_count,
    max_players = EXCLUDED.max_players, restart_required = EXCLUDED.restart_required,
    created_at = EXCLUDED.created_at, owner_id = EXCLUDED.owner_id,
    owner_username = EXCLUDED.owner_username, backup_count = EXCLUDED.backup_count,
    latest_backup = EXCLUDED.latest_backup
WHERE l IS DISTINCT FROM EXCLUDED
"""


def _server_of(event: ProjectedEvent) -> uuid.UUID | None:
    return (
        event.uuid_of("server_id")
        if event.event_type in BACKUP_COUNT_EVENTS
        else event.aggregate_id
    )


SERVER_LIST = keyed(
    "server_list",
    events=event_names([e for e in events.SERVER_EVENTS if e is not events.ConsoleCommandExecuted])
    | BACKUP_COUNT_EVENTS,
    table="server_list",
    key="id",
    source="servers",
    upsert=_UPSERT,
    key_of=_server_of,
)
