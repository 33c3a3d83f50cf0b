"""The floor for GET /servers: bare FastAPI + asyncpg running the same page query (the same
columns as the API's page), nothing else: no authentication, middleware, logging or limits."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

QUERY = """
SELECT id, name, description, status, status_message, port, node, server_type, version,
       memory_mb, player_count, max_players, restart_required, created_at, owner_id,
       owner_username, backup_count, latest_backup, count(*) OVER () AS total
FROM server_list
ORDER BY created_at DESC, id
LIMIT 20 OFFSET 0
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    dsn = os.environ["FLOOR_DSN"]
    app.state.pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
    yield
    await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/servers")
async def servers() -> Response:
    async with app.state.pool.acquire() as conn:
        rows = await conn.fetch(QUERY)
    items = [
        {
            key: (
                str(value)
                if key in ("id", "owner_id")
                else value.isoformat()
                if key in ("created_at", "latest_backup") and value is not None
                else value
            )
            for key, value in dict(row).items()
            if key != "total"
        }
        for row in rows
    ]
    total = rows[0]["total"] if rows else 0
    return JSONResponse({"items": items, "total": total, "page": 1, "limit": 20})
