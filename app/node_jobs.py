"""The RQ job functions of a node (their names are app.shared.nodes.NodeJob): each hands its
work to the node runtime this worker attached, on the runtime's event loop."""

from __future__ import annotations

import os
import socket
import uuid

from rq import get_current_job

from app.groups.infrastructure.jobs import CHECK, clear_pending
from app.monitoring.application.webhooks_delivery import DeliverWebhook
from app.node import NodeHost

_attached: list[NodeHost] = []


def attach(host: NodeHost) -> None:
    """The worker's node host, once it runs; jobs fail clearly before and after."""
    _attached[:] = [host]


def detach() -> None:
    _attached.clear()


def _host() -> NodeHost:
    if not _attached:
        raise RuntimeError("this worker has no node runtime attached")
    return _attached[0]


def start_server(server_id: str) -> str:
    host = _host()
    host.submit(host.runtime.supervisor.start(uuid.UUID(server_id)))
    return "start accepted"


def stop_server(server_id: str) -> str:
    host = _host()
    host.submit(host.runtime.supervisor.stop(uuid.UUID(server_id))).result(timeout=30)
    return "stop sent"


def kill_server(server_id: str) -> str:
    host = _host()
    host.submit(host.runtime.supervisor.stop(uuid.UUID(server_id), kill=True)).result(timeout=30)
    return "killed"


def restart_server(server_id: str) -> str:
    host = _host()
    host.submit(host.runtime.supervisor.restart(uuid.UUID(server_id)))
    return "restart accepted"


def sync_server_files(server_id: str) -> str:
    host = _host()
    host.submit(host.runtime.supervisor.sync_files(uuid.UUID(server_id))).result(timeout=60)
    return "files written"


def delete_server_files(server_id: str) -> str:
    host = _host()
    host.submit(host.runtime.supervisor.delete_files(uuid.UUID(server_id))).result(timeout=300)
    return "files deleted"


def run_backup(backup_id: str) -> str:
    """Hand the backup to the runtime's loop and return: the SimpleWorker is not held."""
    host = _host()
    host.submit(host.runtime.backups.backup(uuid.UUID(backup_id)))
    return "backup accepted"


def run_restore(backup_id: str, target_server_id: str, requested_by: str) -> str:
    host = _host()
    by = uuid.UUID(requested_by) if requested_by else None
    restore = host.runtime.backups.restore(uuid.UUID(backup_id), uuid.UUID(target_server_id), by)
    host.submit(restore)
    return "restore accepted"


def sync_server_access(server_id: str, mode: str) -> str:
    """Rewrite a server's lists (and tell its JVM) or, in check mode, measure drift."""
    job = get_current_job()
    if job is not None:
        clear_pending(job.connection, server_id, mode)
    host = _host()
    runtime = host.runtime
    target = uuid.UUID(server_id)
    outcome = host.submit(
        runtime.access.apply(
            target,
            runtime.supervisor.path(target),
            console=runtime.supervisor,
            check_only=mode == CHECK,
        )
    ).result(timeout=110)
    if outcome is None:
        return "server gone"
    return f"{len(outcome.commands)} commands, {len(outcome.failures)} failures"


def deliver_webhook(delivery_id: str) -> str:
    """Hand the attempt to the runtime's loop and return: a hanging target holds no worker."""
    host = _host()
    host.submit(
        host.runtime.container.bus.handle(DeliverWebhook(delivery_id=uuid.UUID(delivery_id)))
    )
    return "delivery accepted"


def ping(message: str = "pong") -> dict[str, object]:
    """A job that proves a node's worker is alive and which process runs it."""
    return {"message": message, "pid": os.getpid(), "host": socket.gethostname()}
