"""Rules of the groups domain: names, levels, offline UUIDs, effective lists, reconciliation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from app.groups.domain.access import (
    Grant,
    OpEntry,
    WhitelistEntry,
    console_steps,
    drift_of,
    effective_lists,
    reconcile,
)
from app.groups.domain.events import (
    GroupAttachedToServer,
    GroupCreated,
    GroupDetachedFromServer,
    PlayerAddedToGroup,
    PlayerRemovedFromGroup,
)
from app.groups.domain.model import (
    Group,
    GroupType,
    Member,
    offline_uuid,
    validate_player_name,
)
from app.shared.domain import Conflict, InvalidInput, NotFound

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ALICE = uuid.UUID("10920508-d5d8-3eed-93d2-92f193afe7d7")


def new_group(group_type: GroupType = GroupType.OP, op_level: int | None = None) -> Group:
    return Group.create(
        group_id=uuid.uuid4(),
        name="admins",
        description=None,
        group_type=group_type,
        op_level=op_level,
        owner_id=uuid.uuid4(),
        now=NOW,
    )


def member(name: str) -> Member:
    return Member(player_id=uuid.uuid4(), minecraft_uuid=offline_uuid(name), name=name)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Alice", "10920508-d5d8-3eed-93d2-92f193afe7d7"),
        ("Notch", "b50ad385-829d-3141-a216-7e7d7539ba7f"),
    ],
)
def test_offline_uuid_is_version_3_of_offline_player(name: str, expected: str) -> None:
    found = offline_uuid(name)
    assert str(found) == expected
    assert found.version == 3


@pytest.mark.parametrize("name", ["abc", "Alice_99", "A" * 16])
def test_player_names_accepted(name: str) -> None:
    assert validate_player_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["ab", "A" * 17, "Al ice", "Alice!", "../etc", "Ålice", "", "Alice\n"],
    ids=[
        "too-short",
        "too-long",
        "space",
        "punctuation",
        "traversal",
        "unicode",
        "empty",
        "newline",
    ],
)
def test_player_names_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        validate_player_name(name)


def test_op_group_defaults_to_level_4_and_records_creation() -> None:
    group = new_group()
    assert group.op_level == 4
    (event,) = group.collect_events()
    assert isinstance(event, GroupCreated)
    assert event.op_level == 4


@pytest.mark.parametrize("level", [0, 5, -1], ids=["level-0", "level-5", "negative"])
def test_op_level_outside_1_to_4_is_refused(level: int) -> None:
    with pytest.raises(InvalidInput):
        new_group(op_level=level)
    with pytest.raises(InvalidInput):
        new_group().update(now=NOW, op_level=level)


def test_whitelist_group_carries_no_level() -> None:
    with pytest.raises(InvalidInput):
        new_group(GroupType.WHITELIST, op_level=3)
    with pytest.raises(InvalidInput):
        new_group(GroupType.WHITELIST).update(now=NOW, op_level=2)


def test_duplicate_player_is_a_conflict_and_removal_by_uuid_works() -> None:
    group = new_group()
    alice = member("Alice")
    group.add_player(alice, now=NOW)
    with pytest.raises(Conflict):
        group.add_player(alice, now=NOW)
    removed = group.remove_player(alice.minecraft_uuid, now=NOW)
    assert removed == alice
    with pytest.raises(NotFound):
        group.remove_player(alice.player_id, now=NOW)
    kinds = [type(e) for e in group.collect_events()]
    assert kinds == [GroupCreated, PlayerAddedToGroup, PlayerRemovedFromGroup]


@pytest.mark.parametrize("priority", [-1, 1001], ids=["negative-priority", "priority-over-1000"])
def test_attach_priority_range_and_duplicates(priority: int) -> None:
    group = new_group()
    server = uuid.uuid4()
    with pytest.raises(InvalidInput):
        group.attach(server, priority=priority, now=NOW)
    group.attach(server, priority=5, now=NOW)
    with pytest.raises(Conflict):
        group.attach(server, priority=5, now=NOW)
    group.detach(server, now=NOW)
    with pytest.raises(NotFound):
        group.detach(server, now=NOW)
    kinds = [type(e) for e in group.collect_events()]
    assert kinds == [GroupCreated, GroupAttachedToServer, GroupDetachedFromServer]


def grant(kind: GroupType, priority: int, level: int | None, *names: str) -> Grant:
    return Grant(
        group_id=uuid.uuid4(),
        group_type=kind,
        op_level=level,
        priority=priority,
        players=tuple((offline_uuid(n), n) for n in names),
    )


def test_effective_lists_union_and_priority_decides_the_level() -> None:
    lists = effective_lists(
        [
            grant(GroupType.OP, 10, 2, "Alice", "Bob"),
            grant(GroupType.OP, 0, 4, "Alice", "Carol"),
            grant(GroupType.OP, 10, 3, "Bob"),
            grant(GroupType.WHITELIST, 0, None, "Dave", "alice"),
            grant(GroupType.WHITELIST, 5, None, "Dave"),
        ]
    )
    assert [(e.name, e.level) for e in lists.ops] == [("Alice", 2), ("Bob", 3), ("Carol", 4)]
    assert [e.name for e in lists.whitelist] == ["alice", "Dave"]
    assert lists.ops[0].uuid == str(ALICE)


def op(name: str, level: int = 4) -> OpEntry:
    return OpEntry(uuid=str(offline_uuid(name)), name=name, level=level)


def wl(name: str) -> WhitelistEntry:
    return WhitelistEntry(uuid=str(offline_uuid(name)), name=name)


def test_non_authoritative_keeps_hand_entries_and_removes_only_what_it_applied() -> None:
    current = [op("Alice", 4), op("Hand"), op("Gone")]
    desired = [op("Alice", 2), op("New")]
    result = reconcile(current, desired, [op("Gone").uuid], authoritative=False)
    assert [(e.name, e.level) for e in result.entries] == [("Alice", 2), ("New", 4), ("Hand", 4)]
    assert [e.name for e in result.added] == ["New"]
    assert [e.name for e in result.removed] == ["Gone"]
    assert [e.name for e in result.drift] == ["Hand"]
    steps = [s.command for s in console_steps(result, reconcile([], [], [], authoritative=False))]
    assert steps == ["op New", "deop Gone"]


def test_authoritative_makes_the_file_equal_the_dashboard_list() -> None:
    current = [wl("Alice"), wl("Hand")]
    desired = [wl("Alice"), wl("Bob")]
    result = reconcile(current, desired, [], authoritative=True)
    assert result.entries == (wl("Alice"), wl("Bob"))
    assert [e.name for e in result.removed] == ["Hand"]
    assert result.drift == ()
    empty = reconcile([], [], [], authoritative=True)
    steps = [s.command for s in console_steps(empty, result)]
    assert steps == ["whitelist add Bob", "whitelist remove Hand"]


def test_an_online_entry_replaces_a_hand_entry_of_the_same_name() -> None:
    online = WhitelistEntry(uuid=str(uuid.uuid4()), name="Alice")
    result = reconcile([wl("alice")], [online], [], authoritative=False)
    assert result.entries == (online,)
    assert result.added == ()
    assert result.removed == ()
    assert result.drift == ()
    assert drift_of([wl("alice"), wl("Zed")], [online]) == (wl("Zed"),)


def test_console_step_replies() -> None:
    (step,) = console_steps(
        reconcile([], [op("Alice")], [], authoritative=False),
        reconcile([], [], [], authoritative=False),
    )
    assert step.answers("Made Alice a server operator")
    assert step.succeeded("Made Alice a server operator")
    assert step.answers("System chat: Nothing changed. The player already is an operator")
    assert step.answers("That player does not exist")
    assert not step.succeeded("That player does not exist")
    assert not step.answers("Alice joined the game")
