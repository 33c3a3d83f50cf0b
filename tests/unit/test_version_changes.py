"""Version changes of a stopped server on fakes: the checks of a create, the safety backup
first, downgrades only when allowed, and the rollback to the old configuration and backup."""

from __future__ import annotations

import uuid

import pytest

from app.servers.application.messages import StartServer
from app.servers.application.versions import ChangeServerVersion, RollBackServerVersion
from app.servers.domain.errors import InvalidTransition, UnknownVersion
from app.servers.domain.events import ServerConfigurationUpdated
from app.servers.domain.model import ServerConfig, ServerType
from app.servers.domain.versions import (
    ServerVersionChanged,
    ServerVersionRolledBack,
    VersionDowngrade,
    downgrade_reasons,
    release_key,
)
from app.shared.domain import Conflict, InvalidInput, NotFound
from tests.fakes import FakeApp
from tests.unit.test_servers_handlers import ALICE, BOB, create, running


async def change(world: FakeApp, server_id: uuid.UUID, actor=ALICE, **values):
    return await world.bus.handle(ChangeServerVersion(actor=actor, server_id=server_id, **values))


def config(server_type: ServerType, version: str) -> ServerConfig:
    return ServerConfig(server_type=server_type, version=version, memory_mb=1024)


class TestDowngradeRule:
    @pytest.mark.parametrize(
        ("older", "newer"),
        [("1.20.4", "1.21"), ("1.21", "1.21.1"), ("1.9", "1.10"), ("1.20.10", "1.21")],
    )
    def test_releases_compare_by_number_not_by_text(self, older: str, newer: str) -> None:
        assert release_key(older) < release_key(newer)

    def test_1_21_is_1_21_0(self) -> None:
        assert release_key("1.21") == release_key("1.21.0")

    def test_an_older_version_is_a_downgrade_and_says_why(self) -> None:
        (reason,) = downgrade_reasons(
            config(ServerType.PAPER, "1.21.4"), config(ServerType.PAPER, "1.20.4")
        )
        assert "older than 1.21.4" in reason
        assert "chunks" in reason

    def test_leaving_a_mod_loader_is_a_downgrade(self) -> None:
        (reason,) = downgrade_reasons(
            config(ServerType.FABRIC, "1.21.1"), config(ServerType.VANILLA, "1.21.1")
        )
        assert "leaving fabric" in reason

    @pytest.mark.parametrize(
        ("before", "after"),
        [
            (config(ServerType.VANILLA, "1.20.4"), config(ServerType.PAPER, "1.20.4")),
            (config(ServerType.VANILLA, "1.20.4"), config(ServerType.FABRIC, "1.21.1")),
            (config(ServerType.PAPER, "1.21"), config(ServerType.PAPER, "1.21.4")),
        ],
        ids=["vanilla-to-paper", "vanilla-to-fabric-newer", "paper-upgrade"],
    )
    def test_upgrades_and_side_steps_are_not(self, before, after) -> None:
        assert downgrade_reasons(before, after) == []


class TestChangeVersion:
    async def test_vanilla_to_paper_takes_a_backup_then_records_the_change(
        self, world: FakeApp
    ) -> None:
        sid = await create(world, version="1.20.4")

        result = await change(world, sid, server_type=ServerType.PAPER)

        stored = world.db.servers[sid].config
        assert (stored.server_type, stored.version) == (ServerType.PAPER, "1.20.4")
        assert world.servers.safety_backups.taken == [
            (sid, "before vanilla 1.20.4 -> paper 1.20.4")
        ]
        (event,) = world.events.of(ServerVersionChanged)
        assert (event.from_type, event.from_version, event.to_type) == (
            "vanilla",
            "1.20.4",
            "paper",
        )
        assert event.backup_id == result.backup_id
        assert event.actor_id == ALICE.user_id
        assert world.events.of(ServerConfigurationUpdated)[-1].changed_fields == ("server_type",)
        assert world.servers.nodes.actions(sid)[-1] == "sync_files"

    async def test_to_a_loader_chooses_its_recommended_build(self, world: FakeApp) -> None:
        sid = await create(world, version="1.21.1")

        result = await change(world, sid, server_type=ServerType.FABRIC)

        assert result.current.loader_version == "recommended-1.21.1"

    async def test_a_loader_upgrade_alone_keeps_type_and_version(self, world: FakeApp) -> None:
        sid = await create(world, server_type=ServerType.FABRIC, version="1.21.1")

        result = await change(world, sid, loader_version="0.17.0")

        assert (result.previous.loader_version, result.current.loader_version) == (
            "recommended-1.21.1",
            "0.17.0",
        )

    async def test_a_new_game_version_of_a_loader_server_gets_that_versions_loader(
        self, world: FakeApp
    ) -> None:
        sid = await create(world, server_type=ServerType.FABRIC, version="1.21.1")

        result = await change(world, sid, version="1.21.4")

        assert result.current.loader_version == "recommended-1.21.4"

    async def test_refused_while_running_with_409_and_no_backup(self, world: FakeApp) -> None:
        sid = await running(world)

        with pytest.raises(InvalidTransition, match="stop it to change its version"):
            await change(world, sid, server_type=ServerType.PAPER)

        assert world.servers.safety_backups.taken == []

    async def test_a_downgrade_is_refused_with_the_reason_and_nothing_taken(
        self, world: FakeApp
    ) -> None:
        sid = await create(world, version="1.21.4")

        with pytest.raises(VersionDowngrade, match="allow_downgrade") as refused:
            await change(world, sid, version="1.20.4")

        assert refused.value.status == 409
        assert refused.value.extra["reasons"]
        assert world.servers.safety_backups.taken == []
        assert world.db.servers[sid].config.version == "1.21.4"

    async def test_an_allowed_downgrade_is_recorded_as_one(self, world: FakeApp) -> None:
        sid = await create(world, version="1.21.4")

        result = await change(world, sid, version="1.20.4", allow_downgrade=True)

        assert result.downgrade_reasons
        assert world.events.of(ServerVersionChanged)[0].downgrade

    async def test_leaving_forge_needs_allow_downgrade(self, world: FakeApp) -> None:
        sid = await create(world, server_type=ServerType.FORGE, version="1.21.1")

        with pytest.raises(VersionDowngrade, match="leaving forge"):
            await change(world, sid, server_type=ServerType.VANILLA)

    @pytest.mark.parametrize(
        "values",
        [
            {"server_type": ServerType.CUSTOM},
            {"server_type": ServerType.PAPER, "loader_version": "0.16.10"},
            {"version": "1.21.4"},
        ],
        ids=["to-custom", "loader-version-on-paper", "nothing-changes"],
    )
    async def test_bad_requests_are_422_and_change_nothing(self, world: FakeApp, values) -> None:
        sid = await create(world, version="1.21.4")

        with pytest.raises(InvalidInput):
            await change(world, sid, **values)

        assert world.servers.safety_backups.taken == []
        assert world.events.of(ServerVersionChanged) == []

    async def test_an_unknown_version_is_refused_before_the_backup(self, world: FakeApp) -> None:
        sid = await create(world, version="1.21.1")
        world.servers.releases.unknown.add((ServerType.PAPER, "1.99"))

        with pytest.raises(UnknownVersion):
            await change(world, sid, server_type=ServerType.PAPER, version="1.99")

        assert world.servers.safety_backups.taken == []

    async def test_a_failed_safety_backup_changes_nothing(self, world: FakeApp) -> None:
        sid = await create(world, version="1.20.4")
        world.servers.safety_backups.fail = "node offline"

        with pytest.raises(Conflict, match="safety backup failed"):
            await change(world, sid, server_type=ServerType.PAPER)

        assert world.db.servers[sid].config.server_type is ServerType.VANILLA

    async def test_another_owners_server_is_not_found(self, world: FakeApp) -> None:
        sid = await create(world, version="1.20.4")

        with pytest.raises(NotFound):
            await change(world, sid, BOB, server_type=ServerType.PAPER)


class TestRollback:
    async def test_puts_back_the_old_configuration_and_restores_the_backup(
        self, world: FakeApp
    ) -> None:
        sid = await create(world, server_type=ServerType.FABRIC, version="1.21.1")
        changed = await change(world, sid, server_type=ServerType.NEOFORGE, allow_downgrade=True)

        rolled = await world.bus.handle(RollBackServerVersion(actor=ALICE, server_id=sid))

        stored = world.db.servers[sid].config
        assert (stored.server_type, stored.loader_version) == (
            ServerType.FABRIC,
            "recommended-1.21.1",
        )
        assert world.servers.safety_backups.restored == [(sid, changed.backup_id)]
        assert rolled.restore_job_id == "restore-1"
        (event,) = world.events.of(ServerVersionRolledBack)
        assert event.backup_id == changed.backup_id
        assert event.to_type == "fabric"

    async def test_a_second_rollback_has_nothing_to_undo(self, world: FakeApp) -> None:
        sid = await create(world, version="1.20.4")
        await change(world, sid, server_type=ServerType.PAPER)
        await world.bus.handle(RollBackServerVersion(actor=ALICE, server_id=sid))

        with pytest.raises(Conflict, match="no version change to roll back"):
            await world.bus.handle(RollBackServerVersion(actor=ALICE, server_id=sid))

    async def test_a_server_never_changed_has_nothing_to_undo(self, world: FakeApp) -> None:
        sid = await create(world)

        with pytest.raises(Conflict, match="no version change"):
            await world.bus.handle(RollBackServerVersion(actor=ALICE, server_id=sid))

    async def test_a_refused_restore_leaves_the_new_configuration(self, world: FakeApp) -> None:
        sid = await create(world, version="1.20.4")
        await change(world, sid, server_type=ServerType.PAPER)
        world.servers.safety_backups.refuse_restore = NotFound("backup deleted")

        with pytest.raises(NotFound):
            await world.bus.handle(RollBackServerVersion(actor=ALICE, server_id=sid))

        assert world.db.servers[sid].config.server_type is ServerType.PAPER
        assert world.events.of(ServerVersionRolledBack) == []

    async def test_refused_while_running(self, world: FakeApp) -> None:
        sid = await create(world, version="1.20.4")
        await change(world, sid, server_type=ServerType.PAPER)
        await world.bus.handle(StartServer(actor=ALICE, server_id=sid))

        with pytest.raises(InvalidTransition):
            await world.bus.handle(RollBackServerVersion(actor=ALICE, server_id=sid))
        assert world.servers.safety_backups.restored == []
