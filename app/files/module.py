"""The files context: a server's files, edited safely, with a history of every change."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.files.application import handlers, queries, transfers
from app.files.application import messages as m
from app.files.application.history import FileLimits
from app.files.domain import events
from app.files.infrastructure.pending import PendingUploads
from app.files.infrastructure.remote import AgentFileStore
from app.files.infrastructure.repositories import SqlFilesUnitOfWork
from app.files.infrastructure.servers import BusServers
from app.files.infrastructure.store import LocalFileStore
from app.settings import Settings
from app.shared.agent import NodeTokens
from app.shared.infrastructure import Infrastructure
from app.shared.wiring import Handlers

EVENTS = events.FILE_EVENTS
HANDLERS = Handlers(
    messages={
        m.WriteFile: handlers.handle_write_file,
        m.DeleteFile: handlers.handle_delete_file,
        m.RestoreVersion: handlers.handle_restore_version,
        m.MoveFile: transfers.handle_move_file,
        m.MakeDirectory: transfers.handle_make_directory,
        m.UploadFile: transfers.handle_upload_file,
        m.ListFiles: queries.handle_list_files,
        m.ReadFile: queries.handle_read_file,
        m.OpenDownload: queries.handle_open_download,
        m.ListVersions: queries.handle_list_versions,
        m.GetVersion: queries.handle_get_version,
        m.DiffVersion: queries.handle_diff_version,
    },
)


def wire(infra: Infrastructure, **overrides: Any) -> dict[str, Any]:
    settings = infra.settings
    return {
        "uow": infra.unit_of_work(SqlFilesUnitOfWork),
        "store": AgentFileStore(infra.agents),
        "servers": BusServers(infra.bus),
        "clock": infra.clock,
        "limits": FileLimits(
            edit_max_bytes=settings.file_edit_max_bytes,
            upload_max_bytes=settings.file_upload_max_bytes,
            rejected_keep_bytes=settings.file_rejected_keep_bytes,
        ),
        **overrides,
    }


def node_store(settings: Settings) -> LocalFileStore:
    """A node's own view of its servers' directories."""
    return LocalFileStore(
        settings.resolved_data_dir / "servers", text_max_bytes=settings.file_edit_max_bytes
    )


def node_routers(settings: Settings, tokens: NodeTokens, node: str) -> list[APIRouter]:
    """The routes this context adds to a node's agent; uploads a dead worker cut short are
    cleared first."""
    from app.files.api.agent import agent_router

    store = node_store(settings)
    uploads = PendingUploads(settings.resolved_data_dir / "agent" / "uploads", store)
    uploads.recover()
    return [
        agent_router(
            store,
            uploads,
            tokens,
            node,
            edit_max_bytes=settings.file_edit_max_bytes,
            upload_max_bytes=settings.file_upload_max_bytes,
        )
    ]


def routers() -> list[APIRouter]:
    from app.files.api.routes import router

    return [router]
