"""Modrinth's API v2 (MCDASH_MODRINTH_API_URL): search, projects, versions, and jars identified by
their SHA-512. An outage or a rate limit is a ModrinthUnavailable with the time to retry."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from app.servers.domain.mods import (
    PROJECT_REF,
    SHA512,
    Dependency,
    ModFile,
    ModNotFound,
    ModProject,
    ModrinthUnavailable,
    ModTarget,
    ModVersion,
)
from app.shared.domain import InvalidInput

OUTAGE_RETRY_SECONDS = 30
RETRY_MAX_SECONDS = 3600
CALL_TIMEOUT_SECONDS = 15.0
"""A silent Modrinth is an outage after this long, not a request held for minutes."""


def _unavailable(response: httpx.Response | None, reason: str) -> ModrinthUnavailable:
    retry = OUTAGE_RETRY_SECONDS
    if response is not None and response.status_code == 429:
        reset = response.headers.get("X-Ratelimit-Reset", "")
        retry = min(max(int(reset), 1), RETRY_MAX_SECONDS) if reset.isdigit() else 60
        reason = "Modrinth rate-limits this dashboard"
    return ModrinthUnavailable(
        f"{reason}; try again in {retry} s", retry_after=retry, upstream="modrinth"
    )


def parse_version(body: Mapping[str, Any]) -> ModVersion:
    files = [f for f in body.get("files") or [] if isinstance(f, dict)]
    chosen = next((f for f in files if f.get("primary")), files[0] if files else None)
    if chosen is None:
        raise ModNotFound(f"Modrinth version {body.get('id')} has no file")
    sha512 = str((chosen.get("hashes") or {}).get("sha512", "")).lower()
    if not SHA512.fullmatch(sha512):
        raise ModNotFound(f"Modrinth version {body.get('id')} lists no SHA-512 for its file")
    return ModVersion(
        id=str(body["id"]),
        project_id=str(body["project_id"]),
        name=str(body.get("name") or body["project_id"]),
        version_number=str(body.get("version_number") or body["id"]),
        loaders=tuple(str(x) for x in body.get("loaders") or ()),
        game_versions=tuple(str(x) for x in body.get("game_versions") or ()),
        file=ModFile(
            url=str(chosen["url"]),
            file_name=str(chosen["filename"]),
            size=int(chosen.get("size") or 0),
            sha512=sha512,
        ),
        dependencies=tuple(
            Dependency(
                kind=str(d.get("dependency_type", "")),
                project_id=d.get("project_id"),
                version_id=d.get("version_id"),
            )
            for d in body.get("dependencies") or ()
            if isinstance(d, dict)
        ),
    )


class ModrinthCatalog:
    def __init__(self, http: httpx.AsyncClient, *, base_url: str, user_agent: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._headers = {"User-Agent": user_agent}

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        missing: str | None = None,
    ) -> Any:
        try:
            response = await self._http.request(
                method,
                f"{self._base}{path}",
                params=params,
                json=body,
                headers=self._headers,
                timeout=CALL_TIMEOUT_SECONDS,
            )
        except httpx.HTTPError as exc:
            raise _unavailable(None, f"Modrinth cannot be reached ({type(exc).__name__})") from exc
        if response.status_code == 404 and missing is not None:
            raise ModNotFound(missing)
        if response.status_code == 429 or response.status_code >= 500:
            raise _unavailable(response, f"Modrinth answered {response.status_code}")
        if not response.is_success:
            raise _unavailable(response, f"Modrinth refused the request ({response.status_code})")
        try:
            return response.json()
        except ValueError as exc:
            raise _unavailable(None, "Modrinth answered something that is not JSON") from exc

    async def search(
        self, query: str, target: ModTarget, game_version: str, *, limit: int, offset: int
    ) -> tuple[list[dict[str, object]], int]:
        facets = [
            [f"categories:{loader}" for loader in target.loaders],
            [f"versions:{game_version}"],
            ["project_type!=modpack"],
        ]
        answer = await self._call(
            "GET",
            "/search",
            params={"query": query, "facets": json.dumps(facets), "limit": limit, "offset": offset},
        )
        hits = [h for h in answer.get("hits") or [] if isinstance(h, dict)]
        return hits, int(answer.get("total_hits") or 0)

    async def project(self, ref: str) -> ModProject:
        if not PROJECT_REF.fullmatch(ref):
            raise InvalidInput("a project is a Modrinth id or slug", field="project")
        body = await self._call("GET", f"/project/{ref}", missing=f"Modrinth has no project {ref}")
        return ModProject(
            id=str(body["id"]),
            slug=str(body.get("slug") or body["id"]),
            title=str(body.get("title") or body["id"]),
            client_side=str(body.get("client_side", "")),
            server_side=str(body.get("server_side", "")),
        )

    async def version(self, version_id: str) -> ModVersion:
        if not PROJECT_REF.fullmatch(version_id):
            raise InvalidInput("a version is a Modrinth version id", field="version_id")
        body = await self._call(
            "GET", f"/version/{version_id}", missing=f"Modrinth has no version {version_id}"
        )
        return parse_version(body)

    async def newest_version(
        self, project_id: str, target: ModTarget, game_version: str
    ) -> ModVersion | None:
        if not PROJECT_REF.fullmatch(project_id):
            raise InvalidInput("a project is a Modrinth id or slug", field="project")
        answer = await self._call(
            "GET",
            f"/project/{project_id}/version",
            params={
                "loaders": json.dumps(list(target.loaders)),
                "game_versions": json.dumps([game_version]),
            },
            missing=f"Modrinth has no project {project_id}",
        )
        versions = [v for v in answer if isinstance(v, dict)] if isinstance(answer, list) else []
        releases = [v for v in versions if v.get("version_type") == "release"]
        chosen = (releases or versions)[:1]
        return parse_version(chosen[0]) if chosen else None

    async def identify(self, hashes: Sequence[str]) -> dict[str, ModVersion]:
        answer = await self._call(
            "POST", "/version_files", body={"hashes": list(hashes), "algorithm": "sha512"}
        )
        return self._by_hash(answer)

    async def updates(
        self, hashes: Sequence[str], target: ModTarget, game_version: str
    ) -> dict[str, ModVersion]:
        answer = await self._call(
            "POST",
            "/version_files/update",
            body={
                "hashes": list(hashes),
                "algorithm": "sha512",
                "loaders": list(target.loaders),
                "game_versions": [game_version],
            },
        )
        return self._by_hash(answer)

    @staticmethod
    def _by_hash(answer: Any) -> dict[str, ModVersion]:
        found: dict[str, ModVersion] = {}
        if not isinstance(answer, dict):
            return found
        for sha, body in answer.items():
            if isinstance(body, dict):
                try:
                    found[str(sha).lower()] = parse_version(body)
                except (KeyError, ModNotFound):
                    continue
        return found
