"""The audit part of the monitoring context: its routes, and those it adds to a node's agent."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.settings import Settings
from app.shared.agent import NodeTokens


def routers() -> list[APIRouter]:
    return []


def node_routers(
    settings: Settings, tokens: NodeTokens, node: str, servers: Any
) -> list[APIRouter]:
    return []
