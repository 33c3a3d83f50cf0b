"""Mods and plugins: which loader and directory a server type takes, and how an install's
required dependencies are resolved (fits, cycles, incompatible pairs, two versions)."""

from __future__ import annotations

import hashlib

import pytest

from app.servers.application.mods import resolve
from app.servers.domain.mods import (
    MAX_PLAN,
    Dependency,
    ModFile,
    ModIncompatible,
    ModsNotSupported,
    ModTarget,
    ModVersion,
    mod_target,
    side_of,
    validate_file_name,
)
from app.shared.domain import InvalidInput

FABRIC = mod_target("fabric")
GAME = "1.21.1"


def version(
    vid: str,
    project: str,
    *deps: tuple[str, str | None, str | None],
    loaders: tuple[str, ...] = ("fabric",),
    games: tuple[str, ...] = (GAME,),
) -> ModVersion:
    return ModVersion(
        id=vid,
        project_id=project,
        name=project.title(),
        version_number=vid,
        loaders=loaders,
        game_versions=games,
        file=ModFile(
            url=f"http://x/{vid}.jar",
            file_name=f"{vid}.jar",
            size=1,
            sha512=hashlib.sha512(vid.encode()).hexdigest(),
        ),
        dependencies=tuple(Dependency(kind=k, project_id=p, version_id=v) for k, p, v in deps),
    )


class FakeCatalog:
    def __init__(self, *versions: ModVersion) -> None:
        self.by_id = {v.id: v for v in versions}
        self.newest_calls: list[str] = []

    async def version(self, version_id: str) -> ModVersion:
        return self.by_id[version_id]

    async def newest_version(
        self, project_id: str, target: ModTarget, game_version: str
    ) -> ModVersion | None:
        self.newest_calls.append(project_id)
        fitting = [
            v
            for v in self.by_id.values()
            if v.project_id == project_id and v.fits(target, game_version) is None
        ]
        return fitting[-1] if fitting else None


async def plan_of(catalog: FakeCatalog, root: ModVersion, **installed: ModVersion) -> list[str]:
    planned = await resolve(catalog, root, target=FABRIC, game_version=GAME, installed=installed)
    return [p.version.id for p in planned]


@pytest.mark.parametrize(
    ("server_type", "directory", "loaders"),
    [
        ("fabric", "mods", ("fabric",)),
        ("forge", "mods", ("forge",)),
        ("neoforge", "mods", ("neoforge",)),
        ("paper", "plugins", ("paper", "spigot", "bukkit")),
        ("purpur", "plugins", ("purpur", "paper", "spigot", "bukkit")),
    ],
)
def test_each_type_has_its_directory_and_loaders(server_type, directory, loaders) -> None:
    target = mod_target(server_type)
    assert (target.directory, target.loaders) == (directory, loaders)


@pytest.mark.parametrize("server_type", ["vanilla", "custom", "unknown"])
def test_types_without_mods_are_refused(server_type) -> None:
    with pytest.raises(ModsNotSupported, match="takes no mods"):
        mod_target(server_type)


def test_sides_are_told_apart() -> None:
    assert side_of("required", "unsupported") == "client-only"
    assert side_of("unsupported", "required") == "server-only"
    assert side_of("optional", "optional") == "both"


@pytest.mark.parametrize(
    "name", ["../evil.jar", "a/b.jar", "nojar.zip", ".hidden.jar", "x" * 200 + ".jar", ""]
)
def test_bad_file_names_are_refused(name) -> None:
    with pytest.raises(InvalidInput):
        validate_file_name(name)


def test_good_file_names_pass() -> None:
    assert validate_file_name("fabric-api-0.100.0+1.21.jar") == "fabric-api-0.100.0+1.21.jar"
    assert validate_file_name("Mod (1).jar.disabled") == "Mod (1).jar.disabled"


async def test_a_required_dependency_comes_with_it() -> None:
    api = version("api1", "api")
    mod = version("mod1", "mod", ("required", "api", None), ("optional", "extra", None))
    assert await plan_of(FakeCatalog(api, mod), mod) == ["mod1", "api1"]


async def test_dependencies_are_resolved_recursively_and_pinned_versions_used() -> None:
    lib = version("lib2", "lib")
    api = version("api1", "api", ("required", None, "lib2"))
    mod = version("mod1", "mod", ("required", "api", None))
    assert await plan_of(FakeCatalog(lib, api, mod), mod) == ["mod1", "api1", "lib2"]


async def test_a_dependency_cycle_ends() -> None:
    a = version("a1", "a", ("required", "b", None))
    b = version("b1", "b", ("required", "a", None))
    catalog = FakeCatalog(a, b)
    assert await plan_of(catalog, a) == ["a1", "b1"]
    assert catalog.newest_calls == ["b"]


async def test_an_installed_dependency_is_not_installed_again() -> None:
    api = version("api1", "api")
    mod = version("mod1", "mod", ("required", "api", None))
    assert await plan_of(FakeCatalog(api, mod), mod, api=api) == ["mod1"]


async def test_an_incompatible_installed_mod_refuses_the_install() -> None:
    other = version("other1", "other")
    mod = version("mod1", "mod", ("incompatible", "other", None))
    with pytest.raises(ModIncompatible, match="incompatible with Other"):
        await plan_of(FakeCatalog(other, mod), mod, other=other)


async def test_an_installed_mod_objecting_to_the_new_one_refuses_it() -> None:
    mod = version("mod1", "mod")
    other = version("other1", "other", ("incompatible", "mod", None))
    with pytest.raises(ModIncompatible, match="installed Other"):
        await plan_of(FakeCatalog(other, mod), mod, other=other)


async def test_two_versions_of_one_project_are_refused() -> None:
    api1, api2 = version("api1", "api"), version("api2", "api")
    mod = version("mod1", "mod", ("required", None, "api2"))
    with pytest.raises(ModIncompatible, match="two versions of one project"):
        await plan_of(FakeCatalog(api1, api2, mod), mod, api=api1)


@pytest.mark.parametrize(
    ("loaders", "games", "reason"),
    [(("forge",), (GAME,), "not fabric"), (("fabric",), ("1.20.1",), "not 1.21.1")],
    ids=["wrong-loader", "wrong-minecraft-version"],
)
async def test_a_version_that_does_not_fit_is_refused(loaders, games, reason) -> None:
    mod = version("mod1", "mod", loaders=loaders, games=games)
    with pytest.raises(ModIncompatible, match=reason):
        await plan_of(FakeCatalog(mod), mod)


async def test_a_dependency_with_no_fitting_version_is_refused() -> None:
    api = version("api1", "api", games=("1.20.1",))
    mod = version("mod1", "mod", ("required", "api", None))
    with pytest.raises(ModIncompatible, match="needs project api"):
        await plan_of(FakeCatalog(api, mod), mod)


async def test_a_plan_is_bounded() -> None:
    chain = [
        version(f"v{i}", f"p{i}", ("required", f"p{i + 1}", None)) for i in range(MAX_PLAN + 5)
    ]
    with pytest.raises(ModIncompatible, match="more than"):
        await plan_of(FakeCatalog(*chain), chain[0])
