"""Handlers of the groups context through the bootstrapped bus, on in-memory fakes: groups,
their players (Mojang or offline), attachments to servers, access mode, recorded syncs, and the
reaction to a hand edit of a server's lists."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from app.files.application.messages import WriteFile
from app.groups.application.messages import (
    AddPlayerToGroup,
    AttachGroupToServer,
    CreateGroup,
    DeleteGroup,
    DetachGroupFromServer,
    GetAccessPlan,
    GetGroup,
    GetServerAccess,
    GroupListFilter,
    ListGroups,
    RecordAccessSync,
    RemovePlayerFromGroup,
    SetServerAccessMode,
    SyncOutcome,
    UpdateGroup,
)
from app.groups.domain.events import (
    GroupAttachedToServer,
    GroupCreated,
    GroupDeleted,
    GroupDetachedFromServer,
    GroupUpdated,
    PlayerAddedToGroup,
    PlayerRemovedFromGroup,
)
from app.groups.domain.model import (
    GroupNotFound,
    GroupType,
    PlayerNotInGroup,
    ProfileServiceUnavailable,
    UnknownPlayer,
    VersionMismatch,
    offline_uuid,
)
from app.servers.application.messages import CreateServer, DeleteServer
from app.servers.domain.errors import ServerNotFound
from app.servers.domain.model import ServerType
from app.shared.domain import Conflict, Forbidden, InvalidInput, NotFound
from app.shared.security import Principal, Role
from tests.fakes import FakeApp, principal

ALICE, BOB = principal("alice"), principal("bob")
ADMIN = principal("root", role=Role.ADMIN)
OPERATOR = principal("olga", role=Role.OPERATOR)


async def group(
    world: FakeApp,
    name: str = "ops",
    *,
    actor: Principal = ALICE,
    group_type: GroupType = GroupType.OP,
    **values: Any,
) -> uuid.UUID:
    values = {"description": None, **values}
    return await world.bus.handle(
        CreateGroup(actor=actor, name=name, group_type=group_type, **values)
    )


async def server(world: FakeApp, name: str = "survival", owner: Principal = ALICE) -> uuid.UUID:
    return await world.bus.handle(
        CreateServer(
            owner=owner,
            name=name,
            description=None,
            server_type=ServerType.VANILLA,
            version="1.21.4",
            memory_mb=1024,
        )
    )


async def attached(world: FakeApp, **values: Any) -> tuple[uuid.UUID, uuid.UUID]:
    """An op group of Alice's attached to a server of hers."""
    group_id, server_id = await group(world, **values), await server(world)
    await world.bus.handle(AttachGroupToServer(actor=ALICE, group_id=group_id, server_id=server_id))
    world.groups.access_sync.requests.clear()
    return group_id, server_id


def outcome(*, check_only: bool = False, ops: tuple[str, ...] = ("a-uuid",)) -> SyncOutcome:
    return SyncOutcome(
        at=datetime(2026, 3, 1, tzinfo=UTC),
        check_only=check_only,
        applied_ops=ops,
        applied_whitelist=(),
        commands=("op alex",),
        failures=(),
        drift_ops=(),
        drift_whitelist=(),
    )


class TestCreateGroup:
    async def test_an_op_group_gets_level_4(self, world: FakeApp) -> None:
        group_id = await group(world, "  Admins ")

        stored = world.db.groups[group_id]
        assert (stored.name, stored.op_level, stored.owner_id) == ("Admins", 4, ALICE.user_id)
        assert [type(e) for e in world.events.committed] == [GroupCreated]

    async def test_a_whitelist_group_has_no_level(self, world: FakeApp) -> None:
        group_id = await group(world, "friends", group_type=GroupType.WHITELIST)

        assert world.db.groups[group_id].op_level is None

    @pytest.mark.parametrize(
        "name", [pytest.param("ops", id="same-name"), pytest.param("OPS", id="other-case")]
    )
    async def test_an_owner_cannot_have_two_groups_of_one_name(
        self, world: FakeApp, name: str
    ) -> None:
        await group(world)

        with pytest.raises(Conflict) as caught:
            await group(world, name)

        assert caught.value.extra == {"field": "name"}
        assert len(world.db.groups) == 1

    async def test_two_owners_may_use_the_same_name(self, world: FakeApp) -> None:
        await group(world, actor=ALICE)
        await group(world, actor=BOB)

        assert len(world.db.groups) == 2

    @pytest.mark.parametrize(
        ("name", "values", "field"),
        [
            pytest.param("   ", {}, "name", id="blank-name"),
            pytest.param("x" * 101, {}, "name", id="name-101-chars"),
            pytest.param("tab\tname", {}, "name", id="name-with-tab"),
            pytest.param("ops", {"op_level": 5}, "op_level", id="op-level-5"),
            pytest.param("ops", {"op_level": 0}, "op_level", id="op-level-0"),
            pytest.param(
                "ops",
                {"group_type": GroupType.WHITELIST, "op_level": 2},
                "op_level",
                id="whitelist-with-op-level",
            ),
            pytest.param("ops", {"description": "d" * 501}, "description", id="description-501"),
        ],
    )
    async def test_bad_input_is_refused_and_nothing_is_stored(
        self, world: FakeApp, name: str, values: dict[str, Any], field: str
    ) -> None:
        with pytest.raises(InvalidInput) as caught:
            await group(world, name, **values)

        assert caught.value.extra["field"] == field
        assert world.db.groups == {}


class TestUpdateGroup:
    async def test_a_new_op_level_resyncs_the_attached_servers(self, world: FakeApp) -> None:
        group_id, server_id = await attached(world)

        changed = await world.bus.handle(
            UpdateGroup(actor=ALICE, group_id=group_id, op_level=2, expected_version=2)
        )

        assert changed == ["op_level"]
        assert world.db.groups[group_id].op_level == 2
        assert world.groups.access_sync.servers() == [server_id]

    async def test_a_rename_changes_no_server_list(self, world: FakeApp) -> None:
        group_id, _ = await attached(world)

        changed = await world.bus.handle(UpdateGroup(actor=ALICE, group_id=group_id, name="Ops"))

        assert changed == ["name"]
        assert world.db.groups[group_id].name == "Ops"
        assert world.groups.access_sync.requests == []
        assert world.events.of(GroupUpdated)[-1].changed_fields == ("name",)

    async def test_a_stale_expected_version_is_refused(self, world: FakeApp) -> None:
        group_id = await group(world)
        await world.bus.handle(UpdateGroup(actor=ALICE, group_id=group_id, description="one"))

        with pytest.raises(VersionMismatch) as caught:
            await world.bus.handle(
                UpdateGroup(actor=ALICE, group_id=group_id, description="two", expected_version=1)
            )

        assert caught.value.extra == {"current_version": 2}
        assert world.db.groups[group_id].description == "one"

    async def test_a_rename_onto_another_group_of_the_owner_is_refused(
        self, world: FakeApp
    ) -> None:
        await group(world, "builders")
        group_id = await group(world, "ops")

        with pytest.raises(Conflict):
            await world.bus.handle(UpdateGroup(actor=ALICE, group_id=group_id, name="Builders"))

        assert world.db.groups[group_id].name == "ops"

    async def test_a_whitelist_group_takes_no_op_level(self, world: FakeApp) -> None:
        group_id = await group(world, group_type=GroupType.WHITELIST)

        with pytest.raises(InvalidInput):
            await world.bus.handle(UpdateGroup(actor=ALICE, group_id=group_id, op_level=3))

    @pytest.mark.parametrize(
        ("actor", "error"),
        [
            pytest.param(BOB, GroupNotFound, id="another-user"),
            pytest.param(OPERATOR, Forbidden, id="operator-only-looks"),
        ],
    )
    async def test_only_the_owner_or_an_admin_changes_a_group(
        self, world: FakeApp, actor: Principal, error: type[Exception]
    ) -> None:
        group_id = await group(world)

        with pytest.raises(error):
            await world.bus.handle(UpdateGroup(actor=actor, group_id=group_id, name="mine"))
        await world.bus.handle(UpdateGroup(actor=ADMIN, group_id=group_id, name="admins"))

        assert world.db.groups[group_id].name == "admins"


class TestDeleteGroup:
    async def test_the_group_goes_and_its_servers_are_resynced(self, world: FakeApp) -> None:
        group_id, server_id = await attached(world)

        await world.bus.handle(DeleteGroup(actor=ALICE, group_id=group_id))

        assert group_id not in world.db.groups
        [deleted] = world.events.of(GroupDeleted)
        assert deleted.server_ids == (server_id,)
        assert world.groups.access_sync.servers() == [server_id]

    async def test_another_users_group_is_not_found_and_stays(self, world: FakeApp) -> None:
        group_id = await group(world, actor=BOB)

        with pytest.raises(GroupNotFound):
            await world.bus.handle(DeleteGroup(actor=ALICE, group_id=group_id))

        assert group_id in world.db.groups


class TestPlayers:
    async def test_an_online_player_gets_the_accounts_uuid_and_spelling(
        self, world: FakeApp
    ) -> None:
        group_id, server_id = await attached(world)
        account = world.groups.profiles.add("Notch")

        member = await world.bus.handle(
            AddPlayerToGroup(actor=ALICE, group_id=group_id, name="notch")
        )

        assert (member.minecraft_uuid, member.name) == (account, "Notch")
        assert world.db.groups[group_id].members[member.player_id] == member
        assert world.db.players[account] == member
        assert world.groups.access_sync.servers() == [server_id]
        assert world.events.of(PlayerAddedToGroup)[0].name == "Notch"

    async def test_an_offline_player_is_not_looked_up(self, world: FakeApp) -> None:
        group_id = await group(world)

        member = await world.bus.handle(
            AddPlayerToGroup(actor=ALICE, group_id=group_id, name="LanFriend", mode="offline")
        )

        assert member.minecraft_uuid == offline_uuid("LanFriend")
        assert world.groups.profiles.lookups == []

    @pytest.mark.parametrize(
        ("unavailable", "error"),
        [
            pytest.param(False, UnknownPlayer, id="no-such-account"),
            pytest.param(True, ProfileServiceUnavailable, id="mojang-unreachable"),
        ],
    )
    async def test_a_player_mojang_cannot_confirm_is_not_added(
        self, world: FakeApp, unavailable: bool, error: type[Exception]
    ) -> None:
        group_id = await group(world)
        world.groups.profiles.unavailable = unavailable

        with pytest.raises(error):
            await world.bus.handle(AddPlayerToGroup(actor=ALICE, group_id=group_id, name="ghost"))

        assert world.db.groups[group_id].members == {}
        assert world.db.players == {}

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("ab", id="2-chars"),
            pytest.param("has-dash", id="dash"),
            pytest.param("x" * 17, id="17-chars"),
            pytest.param("", id="empty"),
        ],
    )
    async def test_a_malformed_name_is_refused_before_any_lookup(
        self, world: FakeApp, name: str
    ) -> None:
        group_id = await group(world)

        with pytest.raises(InvalidInput):
            await world.bus.handle(AddPlayerToGroup(actor=ALICE, group_id=group_id, name=name))

        assert world.groups.profiles.lookups == []

    async def test_a_player_is_in_a_group_once(self, world: FakeApp) -> None:
        group_id = await group(world)
        world.groups.profiles.add("alex")
        await world.bus.handle(AddPlayerToGroup(actor=ALICE, group_id=group_id, name="alex"))

        with pytest.raises(Conflict, match="already in group"):
            await world.bus.handle(AddPlayerToGroup(actor=ALICE, group_id=group_id, name="ALEX"))

        assert len(world.db.groups[group_id].members) == 1

    async def test_groups_share_the_player_record_and_see_a_rename(self, world: FakeApp) -> None:
        first, second = await group(world, "ops"), await group(world, "builders")
        account = world.groups.profiles.add("alex")
        await world.bus.handle(AddPlayerToGroup(actor=ALICE, group_id=first, name="alex"))
        world.groups.profiles.accounts = {"alexander": (account, "Alexander")}

        member = await world.bus.handle(
            AddPlayerToGroup(actor=ALICE, group_id=second, name="alexander")
        )
        detail = await world.bus.handle(GetGroup(actor=ALICE, group_id=first))

        assert [p.name for p in detail.players] == ["Alexander"]
        assert detail.players[0].id == member.player_id
        assert list(world.db.players) == [account]

    @pytest.mark.parametrize("by", [pytest.param("player-id"), pytest.param("minecraft-uuid")])
    async def test_a_player_is_removed_by_either_id(self, world: FakeApp, by: str) -> None:
        group_id, server_id = await attached(world)
        world.groups.profiles.add("alex")
        member = await world.bus.handle(
            AddPlayerToGroup(actor=ALICE, group_id=group_id, name="alex")
        )
        world.groups.access_sync.requests.clear()

        await world.bus.handle(
            RemovePlayerFromGroup(
                actor=ALICE,
                group_id=group_id,
                player_id=member.player_id if by == "player-id" else member.minecraft_uuid,
            )
        )

        assert world.db.groups[group_id].members == {}
        assert world.events.of(PlayerRemovedFromGroup)[0].name == "alex"
        assert world.groups.access_sync.servers() == [server_id]

    async def test_removing_a_player_not_in_the_group_is_not_found(self, world: FakeApp) -> None:
        group_id = await group(world)

        with pytest.raises(PlayerNotInGroup):
            await world.bus.handle(
                RemovePlayerFromGroup(actor=ALICE, group_id=group_id, player_id=uuid.uuid4())
            )


class TestAttachments:
    async def test_attaching_asks_the_servers_node_to_sync(self, world: FakeApp) -> None:
        group_id, server_id = await group(world), await server(world)

        await world.bus.handle(
            AttachGroupToServer(actor=ALICE, group_id=group_id, server_id=server_id, priority=10)
        )

        assert world.db.groups[group_id].servers == {server_id: 10}
        assert [(r.server_id, r.node, r.check_only) for r in world.groups.access_sync.requests] == [
            (server_id, "local", False)
        ]
        assert world.events.of(GroupAttachedToServer)[0].priority == 10

    @pytest.mark.parametrize(
        "priority",
        [pytest.param(-1, id="priority-minus-1"), pytest.param(1001, id="priority-1001")],
    )
    async def test_a_priority_out_of_range_is_refused(self, world: FakeApp, priority: int) -> None:
        group_id, server_id = await group(world), await server(world)

        with pytest.raises(InvalidInput):
            await world.bus.handle(
                AttachGroupToServer(
                    actor=ALICE, group_id=group_id, server_id=server_id, priority=priority
                )
            )

        assert world.db.groups[group_id].servers == {}

    async def test_a_group_is_attached_to_a_server_once(self, world: FakeApp) -> None:
        group_id, server_id = await attached(world)

        with pytest.raises(Conflict, match="already attached"):
            await world.bus.handle(
                AttachGroupToServer(actor=ALICE, group_id=group_id, server_id=server_id)
            )

    @pytest.mark.parametrize(
        "whose", [pytest.param("another-owner"), pytest.param("no-such-server")]
    )
    async def test_a_server_the_actor_cannot_see_is_not_found(
        self, world: FakeApp, whose: str
    ) -> None:
        group_id = await group(world)
        server_id = await server(world, owner=BOB) if whose == "another-owner" else uuid.uuid4()

        with pytest.raises(ServerNotFound):
            await world.bus.handle(
                AttachGroupToServer(actor=ALICE, group_id=group_id, server_id=server_id)
            )

        assert world.db.groups[group_id].servers == {}

    async def test_the_highest_priority_group_decides_a_players_op_level(
        self, world: FakeApp
    ) -> None:
        server_id = await server(world)
        account = world.groups.profiles.add("alex")
        for name, level, priority in (("mods", 2, 10), ("owners", 4, 1), ("friends", None, 0)):
            group_type = GroupType.WHITELIST if level is None else GroupType.OP
            group_id = await group(world, name, group_type=group_type, op_level=level)
            await world.bus.handle(AddPlayerToGroup(actor=ALICE, group_id=group_id, name="alex"))
            await world.bus.handle(
                AttachGroupToServer(
                    actor=ALICE, group_id=group_id, server_id=server_id, priority=priority
                )
            )

        plan = await world.bus.handle(GetAccessPlan(server_id=server_id))

        assert [(e.uuid, e.level) for e in plan.lists.ops] == [(str(account), 2)]
        assert [e.name for e in plan.lists.whitelist] == ["alex"]
        assert [g.name for g in plan.groups] == ["mods", "owners", "friends"]

    async def test_detaching_resyncs_and_a_second_detach_is_not_found(self, world: FakeApp) -> None:
        group_id, server_id = await attached(world)

        await world.bus.handle(
            DetachGroupFromServer(actor=ALICE, group_id=group_id, server_id=server_id)
        )
        with pytest.raises(NotFound):
            await world.bus.handle(
                DetachGroupFromServer(actor=ALICE, group_id=group_id, server_id=server_id)
            )

        assert world.db.groups[group_id].servers == {}
        assert len(world.events.of(GroupDetachedFromServer)) == 1
        assert world.groups.access_sync.servers() == [server_id]

    async def test_a_deleted_servers_attachments_go_with_it(self, world: FakeApp) -> None:
        group_id, server_id = await attached(world)

        await world.bus.handle(DeleteServer(actor=ALICE, server_id=server_id))

        detail = await world.bus.handle(GetGroup(actor=ALICE, group_id=group_id))
        assert detail.servers == ()


class TestAccessMode:
    async def test_the_owner_makes_the_lists_authoritative_once(self, world: FakeApp) -> None:
        _, server_id = await attached(world)

        for _ in range(2):
            await world.bus.handle(
                SetServerAccessMode(actor=ALICE, server_id=server_id, authoritative=True)
            )

        access = await world.bus.handle(GetServerAccess(actor=ALICE, server_id=server_id))
        assert access.plan.authoritative
        assert world.groups.access_sync.servers() == [server_id], "the second changed nothing"

    @pytest.mark.parametrize(
        ("actor", "error"),
        [
            pytest.param(BOB, ServerNotFound, id="another-user"),
            pytest.param(OPERATOR, Forbidden, id="operator"),
        ],
    )
    async def test_only_the_owner_or_an_admin_sets_the_mode(
        self, world: FakeApp, actor: Principal, error: type[Exception]
    ) -> None:
        _, server_id = await attached(world)

        with pytest.raises(error):
            await world.bus.handle(
                SetServerAccessMode(actor=actor, server_id=server_id, authoritative=True)
            )
        await world.bus.handle(
            SetServerAccessMode(actor=ADMIN, server_id=server_id, authoritative=True)
        )

        assert world.db.server_access[server_id].authoritative


class TestRecordedSync:
    async def test_an_applied_sync_is_the_last_sync_and_what_was_applied(
        self, world: FakeApp
    ) -> None:
        _, server_id = await attached(world)

        await world.bus.handle(RecordAccessSync(server_id=server_id, outcome=outcome()))
        await world.bus.handle(
            RecordAccessSync(server_id=server_id, outcome=outcome(check_only=True, ops=("x",)))
        )

        access = await world.bus.handle(GetServerAccess(actor=ALICE, server_id=server_id))
        assert access.last_sync == outcome(check_only=True, ops=("x",))
        assert access.plan.applied_ops == ("a-uuid",), "a check applies nothing"

    async def test_a_sync_of_a_deleted_server_is_not_kept(self, world: FakeApp) -> None:
        _, server_id = await attached(world)
        await world.bus.handle(DeleteServer(actor=ALICE, server_id=server_id))

        await world.bus.handle(RecordAccessSync(server_id=server_id, outcome=outcome()))

        assert server_id not in world.db.server_access


class TestFileModified:
    @pytest.mark.parametrize(
        ("path", "attach", "checked"),
        [
            pytest.param("ops.json", True, True, id="ops-json-of-a-managed-server"),
            pytest.param("whitelist.json", True, True, id="whitelist-json"),
            pytest.param("ops.json", False, False, id="server-without-groups"),
            pytest.param("banned-players.json", True, False, id="another-file"),
        ],
    )
    async def test_a_hand_edit_of_the_lists_asks_the_node_to_measure_the_drift(
        self, world: FakeApp, path: str, attach: bool, checked: bool
    ) -> None:
        if attach:
            _, server_id = await attached(world)
        else:
            server_id = await server(world)

        await world.bus.handle(WriteFile(actor=ALICE, server_id=server_id, path=path, content="[]"))

        assert world.groups.access_sync.servers(check_only=True) == ([server_id] if checked else [])
        assert world.groups.access_sync.servers() == []


class TestQueries:
    async def test_owners_list_their_own_groups_with_counts(self, world: FakeApp) -> None:
        group_id, _ = await attached(world)
        await group(world, actor=BOB)

        page = await world.bus.handle(ListGroups(actor=ALICE, filter=GroupListFilter()))

        assert [(g.id, g.player_count, g.server_count) for g in page.items] == [(group_id, 0, 1)]

    async def test_an_operator_reads_any_group_but_a_user_only_their_own(
        self, world: FakeApp
    ) -> None:
        group_id = await group(world, actor=BOB)

        assert (await world.bus.handle(GetGroup(actor=OPERATOR, group_id=group_id))).id == group_id
        with pytest.raises(GroupNotFound):
            await world.bus.handle(GetGroup(actor=ALICE, group_id=group_id))
