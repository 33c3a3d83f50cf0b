"""Query handlers of the groups context."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Protocol

from app.groups.application.messages import (
    GetGroup,
    GroupDetail,
    GroupListFilter,
    GroupSummary,
    ListGroups,
)
from app.groups.domain.model import GroupNotFound
from app.shared.domain import Page


class GroupsReadModel(Protocol):
    async def page(self, filter: GroupListFilter) -> Page[GroupSummary]: ...
    async def detail(self, group_id: uuid.UUID) -> GroupDetail | None: ...


async def handle_list_groups(
    query: ListGroups, *, read_model: GroupsReadModel
) -> Page[GroupSummary]:
    filter = query.filter
    if not query.actor.sees_everything():
        filter = replace(filter, owner_id=query.actor.user_id)
    return await read_model.page(filter)


async def handle_get_group(query: GetGroup, *, read_model: GroupsReadModel) -> GroupDetail:
    detail = await read_model.detail(query.group_id)
    if detail is None or (
        not query.actor.sees_everything() and detail.owner_id != query.actor.user_id
    ):
        raise GroupNotFound(f"group {query.group_id} not found")
    return detail
