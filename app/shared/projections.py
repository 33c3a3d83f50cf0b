"""Materialized-view read models, refreshed concurrently and coalesced under load."""

from __future__ import annotations

import asyncio
import re

import sqlalchemy as sa
import structlog
from prometheus_client import Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

log = structlog.get_logger(__name__)

REFRESH_SECONDS = Histogram(
    "mcdash_view_refresh_seconds", "Materialized view refresh time", ["view"]
)
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


class MaterializedView:
    """`refresh()` returns once a refresh that began after the call has finished.

    Callers that arrive while a refresh runs share the next one, so a burst of events
    costs at most two refreshes.
    """

    def __init__(self, engine: AsyncEngine, name: str) -> None:
        if not _IDENTIFIER.fullmatch(name):
            raise ValueError(f"not a view name: {name!r}")
        self._engine = engine
        self.name = name
        self._lock = asyncio.Lock()
        self._requested = 0
        self._completed = 0

    async def refresh(self) -> None:
        self._requested += 1
        wanted = self._requested
        async with self._lock:
            if self._completed >= wanted:
                return
            covering = self._requested
            with REFRESH_SECONDS.labels(self.name).time():
                async with self._engine.begin() as conn:
                    await conn.execute(
                        sa.text(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {self.name}")
                    )
            self._completed = covering
