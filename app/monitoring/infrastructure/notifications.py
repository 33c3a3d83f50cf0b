"""Notifications (monitoring): its adapters, and what runs in the background."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.shared.infrastructure import Infrastructure


def deps(infra: Infrastructure) -> dict[str, Any]:
    return {}


def background(
    infra: Infrastructure, deps: dict[str, Any]
) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    return []


def schedule(scheduler: AsyncIOScheduler, infra: Infrastructure, deps: dict[str, Any]) -> None:
    return None


def node_tasks(
    infra: Infrastructure, node: str, servers: Any
) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    return []
