"""Notifications: what a user is told about, who is told, and the ports that store and push them.

An event becomes one `Notice`; its `Audience` says who may see it (the owner of the server,
and every user whose role sees every server; admins alone for registrations waiting for
approval). The store writes one row per user of the audience in a single statement, keyed by
the event so that an event the relay delivers twice notifies nobody twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from app.shared.domain import DomainEvent
from app.shared.security import Role

# The roles whose principal sees every server (Principal.sees_everything).
EVERY_SERVER = (Role.ADMIN, Role.OPERATOR)
ADMINS = (Role.ADMIN,)


@dataclass(frozen=True, slots=True, kw_only=True)
class Audience:
    """Every active user with one of `roles`, and `user_id` whatever their role."""

    roles: tuple[Role, ...]
    user_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventKey:
    """What identifies the stored event a notice comes from (its position is looked up by it)."""

    aggregate_type: str
    aggregate_id: uuid.UUID
    event_type: str
    occurred_at: datetime

    @classmethod
    def of(cls, event: DomainEvent) -> EventKey:
        return cls(
            aggregate_type=event.aggregate_type,
            aggregate_id=event.aggregate_id,
            event_type=event.event_type(),
            occurred_at=event.occurred_at,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    type: str
    severity: str  # info, success, warning, error
    title: str
    body: str = ""
    server_id: uuid.UUID | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationView:
    id: uuid.UUID
    user_id: uuid.UUID
    created_at: datetime
    type: str
    severity: str
    title: str
    body: str
    server_id: uuid.UUID | None
    data: dict[str, Any]
    read_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "created_at": self.created_at.isoformat(),
            "type": self.type,
            "severity": self.severity,
            "title": self.title,
            "body": self.body,
            "server_id": str(self.server_id) if self.server_id else None,
            "data": self.data,
            "read_at": self.read_at.isoformat() if self.read_at else None,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationPage:
    items: Sequence[NotificationView]
    unread: int
    next_before: uuid.UUID | None


class NotificationStore(Protocol):
    async def notify(
        self, notice: Notice, audience: Audience, *, key: EventKey | None, at: datetime
    ) -> Sequence[NotificationView]:
        """Store the notice for its audience; only the rows new to this call are returned."""
        ...

    async def page(
        self, user_id: uuid.UUID, *, unread_only: bool, before: uuid.UUID | None, limit: int
    ) -> NotificationPage: ...

    async def after(
        self, user_id: uuid.UUID, notification_id: uuid.UUID, *, limit: int
    ) -> Sequence[NotificationView] | None:
        """The user's notifications stored after this one, oldest first; None if it is unknown."""
        ...

    async def mark_read(
        self, user_id: uuid.UUID, notification_id: uuid.UUID, *, at: datetime
    ) -> NotificationView | None: ...

    async def mark_all_read(self, user_id: uuid.UUID, *, at: datetime) -> int: ...

    async def purge(self, *, older_than: datetime) -> int: ...


class NotificationPublisher(Protocol):
    async def publish(self, views: Sequence[NotificationView]) -> None:
        """Tell each view's user (on their own channel) now that the rows are stored."""
        ...
