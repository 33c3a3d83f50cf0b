"""A server's effective op list and whitelist, and how they merge into its existing files."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from app.groups.domain.model import GroupType


@dataclass(frozen=True, slots=True, kw_only=True)
class OpEntry:
    """One object of ops.json."""

    uuid: str
    name: str
    level: int
    bypasses_player_limit: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class WhitelistEntry:
    """One object of whitelist.json."""

    uuid: str
    name: str


class Entry(Protocol):
    @property
    def uuid(self) -> str: ...
    @property
    def name(self) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """One attached group as a server sees it: its kind, level, priority and players."""

    group_id: uuid.UUID
    group_type: GroupType
    op_level: int | None
    priority: int
    players: tuple[tuple[uuid.UUID, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessLists:
    ops: tuple[OpEntry, ...]
    whitelist: tuple[WhitelistEntry, ...]


def effective_lists(grants: Iterable[Grant]) -> AccessLists:
    """The union of the attached groups; a player's op level comes from the highest priority.

    Between op groups of equal priority the higher level wins.
    """
    ops: dict[uuid.UUID, tuple[tuple[int, int], str]] = {}
    whitelist: dict[uuid.UUID, str] = {}
    for grant in grants:
        for player_uuid, name in grant.players:
            if grant.group_type is GroupType.WHITELIST:
                whitelist.setdefault(player_uuid, name)
                continue
            rank = (grant.priority, grant.op_level or 4)
            if player_uuid not in ops or rank > ops[player_uuid][0]:
                ops[player_uuid] = (rank, name)
    return AccessLists(
        ops=tuple(
            OpEntry(uuid=str(key), name=name, level=rank[1])
            for key, (rank, name) in sorted(ops.items(), key=lambda item: item[1][1].lower())
        ),
        whitelist=tuple(
            WhitelistEntry(uuid=str(key), name=name)
            for key, name in sorted(whitelist.items(), key=lambda item: item[1].lower())
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconciliation[E: Entry]:
    """The file's new entries, and what changed on the way: the console commands to send."""

    entries: tuple[E, ...]
    added: tuple[E, ...]
    removed: tuple[E, ...]
    drift: tuple[E, ...]

    @property
    def changes_file(self) -> bool:
        return bool(self.added or self.removed)


def reconcile[E: Entry](
    current: Sequence[E],
    desired: Sequence[E],
    applied: Iterable[str],
    *,
    authoritative: bool,
) -> Reconciliation[E]:
    """Merge the dashboard's list into a file's entries.

    Authoritative: the file becomes exactly the dashboard's list. Otherwise entries someone
    added by hand stay (and are reported as drift); only entries the dashboard itself put
    there earlier (`applied` UUIDs) and no longer wants are removed.
    """
    applied_uuids = {value.lower() for value in applied}
    wanted_uuids = {entry.uuid.lower() for entry in desired}
    wanted_names = {entry.name.lower() for entry in desired}
    kept: list[E] = []
    removed: list[E] = []
    for entry in current:
        if entry.uuid.lower() in wanted_uuids or entry.name.lower() in wanted_names:
            continue
        if authoritative or entry.uuid.lower() in applied_uuids:
            removed.append(entry)
        else:
            kept.append(entry)
    present_uuids = {entry.uuid.lower() for entry in current}
    present_names = {entry.name.lower() for entry in current}
    added = [
        entry
        for entry in desired
        if entry.uuid.lower() not in present_uuids and entry.name.lower() not in present_names
    ]
    return Reconciliation(
        entries=(*desired, *kept),
        added=tuple(added),
        removed=tuple(removed),
        drift=tuple(kept),
    )


def drift_of[E: Entry](current: Sequence[E], desired: Sequence[E]) -> tuple[E, ...]:
    """Entries of a file that no attached group provides."""
    wanted = {entry.uuid.lower() for entry in desired} | {e.name.lower() for e in desired}
    return tuple(
        e for e in current if e.uuid.lower() not in wanted and e.name.lower() not in wanted
    )


@dataclass(frozen=True, slots=True)
class ConsoleStep:
    """A console command and the replies that answer it: `ok` ones and failing ones."""

    command: str
    ok: tuple[str, ...]
    failed: tuple[str, ...] = ("That player does not exist",)

    def answers(self, message: str) -> bool:
        text = _plain(message)
        return any(_same(text, reply) for reply in (*self.ok, *self.failed))

    def succeeded(self, message: str) -> bool:
        text = _plain(message)
        return any(_same(text, reply) for reply in self.ok)


def console_steps(
    ops: Reconciliation[OpEntry], whitelist: Reconciliation[WhitelistEntry]
) -> list[ConsoleStep]:
    """What a running server is told so that its memory matches the rewritten files."""
    return [
        *(
            ConsoleStep(
                f"op {e.name}",
                (
                    f"Made {e.name} a server operator",
                    "Nothing changed. The player already is an operator",
                ),
            )
            for e in ops.added
        ),
        *(
            ConsoleStep(
                f"deop {e.name}",
                (
                    f"Made {e.name} no longer a server operator",
                    "Nothing changed. The player is not an operator",
                ),
            )
            for e in ops.removed
        ),
        *(
            ConsoleStep(
                f"whitelist add {e.name}",
                (f"Added {e.name} to the whitelist", "Player is already whitelisted"),
            )
            for e in whitelist.added
        ),
        *(
            ConsoleStep(
                f"whitelist remove {e.name}",
                (f"Removed {e.name} from the whitelist", "Player is not whitelisted"),
            )
            for e in whitelist.removed
        ),
    ]


RELOAD = ConsoleStep("whitelist reload", ("Reloaded the whitelist",), ())
_SYSTEM_PREFIX = re.compile(r"^System chat: ")


def _plain(message: str) -> str:
    return _SYSTEM_PREFIX.sub("", message.strip())


def _same(message: str, reply: str) -> bool:
    return message.lower() == reply.lower()
