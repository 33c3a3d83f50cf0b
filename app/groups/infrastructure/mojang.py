"""Mojang's profile API: a player name to its account UUID and canonical spelling."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import httpx
import structlog

from app.groups.domain.model import ProfileServiceUnavailable

log = structlog.get_logger(__name__)


class MojangProfiles:
    """GET <base>/users/profiles/minecraft/<name>: 200 with {id, name}, 204 or 404 if unknown."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, *, timeout: float = 10.0) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._timeout = timeout

    async def lookup(self, name: str) -> tuple[uuid.UUID, str] | None:
        url = f"{self._base}/users/profiles/minecraft/{quote(name, safe='')}"
        try:
            response = await self._http.get(url, timeout=self._timeout)
        except httpx.HTTPError as exc:
            log.warning("mojang_profile_lookup_failed", error=str(exc))
            raise ProfileServiceUnavailable(
                "Mojang's profile service cannot be reached; try again, or add the player in "
                'offline mode ("mode": "offline")'
            ) from exc
        if response.status_code in (204, 404):
            return None
        if response.status_code != 200:
            raise ProfileServiceUnavailable(
                f"Mojang's profile service answered {response.status_code}; try again later",
                upstream_status=response.status_code,
            )
        try:
            data = response.json()
            return uuid.UUID(hex=str(data["id"])), str(data["name"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ProfileServiceUnavailable(
                "Mojang's profile service sent an answer that is not a profile"
            ) from exc
