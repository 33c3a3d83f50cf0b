"""Commands and queries of a server's mods and plugins, the views they return, and how an
install's required dependencies are resolved (recursively, each project once)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.servers.domain.mods import (
    MAX_PLAN,
    ModCatalog,
    ModIncompatible,
    ModNotFound,
    ModTarget,
    ModVersion,
)
from app.shared.bus import Command, Query
from app.shared.security import Principal


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchHit:
    project_id: str
    slug: str
    title: str
    description: str
    downloads: int
    side: str
    installable: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchPage:
    items: Sequence[SearchHit]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class InstalledMod:
    file_name: str
    enabled: bool
    size: int
    sha512: str
    project_id: str | None
    version_id: str | None
    name: str | None
    version_number: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModUpdate:
    file_name: str
    project_id: str
    from_version_id: str
    from_version_number: str
    to_version_id: str
    to_version_number: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedVersion:
    version: ModVersion
    dependency_of: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchMods(Query[SearchPage]):
    actor: Principal
    server_id: uuid.UUID
    query: str
    limit: int
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ListMods(Query[list[InstalledMod]]):
    actor: Principal
    server_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckModUpdates(Query[list[ModUpdate]]):
    actor: Principal
    server_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallMod(Command[list[PlannedVersion]]):
    """The project's newest fitting version, or `version_id`, with its required dependencies."""

    actor: Principal
    server_id: uuid.UUID
    project: str
    version_id: str | None = None
    backup: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateMods(Command[list[ModUpdate]]):
    """Update the named projects, or every installed one when `project_ids` is None."""

    actor: Principal
    server_id: uuid.UUID
    project_ids: Sequence[str] | None = None
    backup: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeMod(Command[str]):
    """`disable`, `enable` or `remove` one jar; answers its file name afterwards."""

    actor: Principal
    server_id: uuid.UUID
    file_name: str
    action: str
    backup: bool = False


async def resolve(
    catalog: ModCatalog,
    root: ModVersion,
    *,
    target: ModTarget,
    game_version: str,
    installed: Mapping[str, ModVersion],
) -> list[PlannedVersion]:
    """`root` and every required dependency not installed yet, root first. Refused: a version
    that does not fit the server, two versions of one project, an incompatible pair."""
    plan: dict[str, PlannedVersion] = {
        root.project_id: PlannedVersion(version=root, dependency_of=None)
    }
    queue = [root]
    while queue:
        version = queue.pop(0)
        if reason := version.fits(target, game_version):
            raise ModIncompatible(reason, project_id=version.project_id)
        for dependency in version.dependencies:
            if dependency.kind not in ("required", "incompatible"):
                continue
            pinned = await catalog.version(dependency.version_id) if dependency.version_id else None
            project_id = pinned.project_id if pinned else dependency.project_id
            if project_id is None:
                continue
            if dependency.kind == "incompatible":
                _refuse_incompatible(version, project_id, pinned, plan, installed)
                continue
            present = plan[project_id].version if project_id in plan else installed.get(project_id)
            if present is not None:
                if pinned is not None and present.id != pinned.id:
                    raise ModIncompatible(
                        f"{version.name} needs {pinned.name} {pinned.version_number}, but"
                        f" {present.version_number} of it is installed or planned: two versions"
                        " of one project",
                        project_id=project_id,
                    )
                continue  # already there: also what ends a dependency cycle
            chosen = pinned or await catalog.newest_version(project_id, target, game_version)
            if chosen is None:
                raise ModIncompatible(
                    f"{version.name} needs project {project_id}, which has no version for"
                    f" {'/'.join(target.loaders)} on Minecraft {game_version}",
                    project_id=project_id,
                )
            if len(plan) >= MAX_PLAN:
                raise ModIncompatible(
                    f"{root.name} brings in more than {MAX_PLAN} projects", limit=MAX_PLAN
                )
            plan[project_id] = PlannedVersion(version=chosen, dependency_of=version.project_id)
            queue.append(chosen)
    _refuse_installed_objections(plan, installed)
    return list(plan.values())


def _refuse_incompatible(
    version: ModVersion,
    project_id: str,
    pinned: ModVersion | None,
    plan: Mapping[str, PlannedVersion],
    installed: Mapping[str, ModVersion],
) -> None:
    present = plan[project_id].version if project_id in plan else installed.get(project_id)
    if present is not None and (pinned is None or pinned.id == present.id):
        raise ModIncompatible(
            f"{version.name} {version.version_number} is incompatible with {present.name}"
            f" {present.version_number}, which is installed or planned",
            project_id=project_id,
        )


def _refuse_installed_objections(
    plan: Mapping[str, PlannedVersion], installed: Mapping[str, ModVersion]
) -> None:
    """An installed mod that declares something in the plan incompatible refuses it too."""
    for have in installed.values():
        for dependency in have.dependencies:
            objected = dependency.project_id
            if dependency.kind == "incompatible" and objected is not None and objected in plan:
                wanted = plan[objected].version
                raise ModIncompatible(
                    f"the installed {have.name} {have.version_number} is incompatible with"
                    f" {wanted.name}",
                    project_id=objected,
                )


def installed_by_project(
    identified: Mapping[str, ModVersion], *, but: str | None = None
) -> dict[str, ModVersion]:
    return {v.project_id: v for v in identified.values() if v.project_id != but}


def root_version(found: ModVersion | None, project: str) -> ModVersion:
    if found is None:
        raise ModNotFound(f"project {project} has no version for this server's loader and version")
    return found
