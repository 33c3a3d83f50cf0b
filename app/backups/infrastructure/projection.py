"""The `backup_summary` projection: a server's backups counted, one row per server, by key."""

from __future__ import annotations

import uuid

from app.backups.domain import events
from app.servers.domain.events import ServerConfigurationUpdated, ServerCreated, ServerDeleted
from app.shared.readmodels import ProjectedEvent, event_names, keyed

# A server's events that add its row, rename it or remove it.
_SERVER_EVENTS = event_names([ServerCreated, ServerConfigurationUpdated, ServerDeleted])

_UPSERT = """
INSERT INTO backup_summary AS b (
    server_id, server_name, owner_id, backup_count, latest_backup, total_size, failed_count,
    success_rate)
SELECT s.id, s.name, s.owner_id, c.completed, c.latest, c.total_size, c.failed,
    CASE WHEN c.completed + c.failed = 0 THEN NULL
         ELSE round(c.completed::numeric / (c.completed + c.failed), 4) END
FROM servers s
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE status = 'completed') AS completed,
        count(*) FILTER (WHERE status = 'failed') AS failed,
        max(created_at) FILTER (WHERE status = 'completed') AS latest,
        coalesce(sum(size_bytes) FILTER (WHERE status = 'completed'), 0)::bigint AS total_size
    FROM backups WHERE server_id = s.id
) c
WHERE s.id = ANY($1)
ON CONFLICT (server_id) DO UPDATE SET
    server_name = EXCLUDED.server_name, owner_id = EXCLUDED.owner_id,
    backup_count = EXCLUDED.backup_count, latest_backup = EXCLUDED.latest_backup,
    total_size = EXCLUDED.total_size, failed_count = EXCLUDED.failed_count,
    success_rate = EXCLUDED.success_rate
WHERE b IS DISTINCT FROM EXCLUDED
"""


def _server_of(event: ProjectedEvent) -> uuid.UUID | None:
    return event.aggregate_id if event.event_type in _SERVER_EVENTS else event.uuid_of("server_id")


BACKUP_SUMMARY = keyed(
    "backup_summary",
    events=event_names(events.REFRESHING_EVENTS) | _SERVER_EVENTS,
    table="backup_summary",
    key="server_id",
    source="servers",
    upsert=_UPSERT,
    key_of=_server_of,
)
