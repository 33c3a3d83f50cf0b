"""`/` serves the dashboard's index.html (no-cache), `/assets/*` its hashed files (a year)."""

from __future__ import annotations

import json
import re

from fastapi import APIRouter, FastAPI, Request, Response

from app.web.assets import Assets, load_assets

_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?$")
IMMUTABLE = "public, max-age=31536000, immutable"
STALE_ASSET = json.dumps(
    {
        "type": "urn:mcdash:problem:not-found",
        "title": "Not found",
        "status": 404,
        "detail": "no such dashboard asset (the dashboard was updated: reload the page)",
    }
).encode()


def content_security_policy(host: str | None) -> str:
    """Same origin only; no inline script or style. Sockets are named for browsers that do
    not count ws:/wss: of the page's host as 'self' (CSP level 2)."""
    sockets = f" ws://{host} wss://{host}" if host and _HOST.match(host) else ""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        f"connect-src 'self'{sockets}; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


def _security_headers(request: Request) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(request.headers.get("host")),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def dashboard_router(assets: Assets) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def index(request: Request) -> Response:
        headers = {**_security_headers(request), "Cache-Control": "no-cache"}
        return Response(assets.index, media_type="text/html; charset=utf-8", headers=headers)

    @router.get("/assets/{name:path}")
    async def asset(name: str, request: Request) -> Response:
        found = assets.by_name.get(name)
        if found is None:
            return Response(
                STALE_ASSET,
                status_code=404,
                media_type="application/problem+json",
                headers={**_security_headers(request), "Cache-Control": "no-cache"},
            )
        headers = {
            **_security_headers(request),
            "Cache-Control": IMMUTABLE,
            "Vary": "Accept-Encoding",
        }
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(found.gzipped, media_type=found.media_type, headers=headers)
        return Response(found.body, media_type=found.media_type, headers=headers)

    return router


def install_dashboard(app: FastAPI) -> None:
    """Mount the dashboard; its assets are read and hashed now, once per process."""
    app.include_router(dashboard_router(load_assets()))
