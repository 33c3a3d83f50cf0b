"""Handlers of the files context through the bootstrapped bus, on an in-memory server
directory: conditional writes and their history, deletes, moves, directories, uploads,
restores, and the paths and code the dashboard refuses."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from app.files.application.messages import (
    DeleteFile,
    DiffVersion,
    ListFiles,
    ListVersions,
    MakeDirectory,
    MoveFile,
    ReadFile,
    RestoreVersion,
    UploadFile,
    WriteFile,
)
from app.files.domain.events import FileModified
from app.files.domain.model import (
    FileConflict,
    FileMissing,
    Outcome,
    PreconditionFailed,
    PreconditionRequired,
    TooLarge,
    VersionAction,
)
from app.files.domain.paths import InvalidPath, PathForbidden
from app.servers.application.messages import (
    CreateServer,
    RecordProcessLaunched,
    RecordServerReady,
    StartServer,
)
from app.servers.domain.errors import ServerNotFound
from app.servers.domain.model import ServerType
from app.shared.domain import Forbidden
from app.shared.security import Principal, Role
from tests.fakes import FakeApp, principal

ALICE, BOB = principal("alice"), principal("bob")
OPERATOR = principal("olga", role=Role.OPERATOR)


def etag(content: bytes | str) -> str:
    data = content.encode() if isinstance(content, str) else content
    return f'"{hashlib.sha256(data).hexdigest()}"'


async def server(world: FakeApp, *, owner: Principal = ALICE, running: bool = False) -> uuid.UUID:
    server_id = await world.bus.handle(
        CreateServer(
            owner=owner,
            name=f"s{uuid.uuid4().hex[:6]}",
            description=None,
            server_type=ServerType.VANILLA,
            version="1.21.4",
            memory_mb=1024,
            eula_accepted=True,
        )
    )
    if running:
        await world.bus.handle(StartServer(actor=owner, server_id=server_id))
        await world.bus.handle(
            RecordProcessLaunched(server_id=server_id, pid=1, process_started_at=1.0, java="21")
        )
        await world.bus.handle(RecordServerReady(server_id=server_id, detected_by="log"))
    return server_id


async def write(
    world: FakeApp, server_id: uuid.UUID, path: str, content: str, actor=ALICE, **values: Any
) -> Any:
    return await world.bus.handle(
        WriteFile(actor=actor, server_id=server_id, path=path, content=content, **values)
    )


def history(world: FakeApp, server_id: uuid.UUID, path: str) -> list[tuple[str, str, bytes | None]]:
    """(action, outcome, content) of each version of a path, oldest first."""
    return [
        (v.action.value, v.outcome.value, v.content) for v in world.db.versions_of(server_id, path)
    ]


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.fixture
async def sid(world: FakeApp) -> uuid.UUID:
    return await server(world)


class TestWriteFile:
    async def test_a_new_file_is_created_with_its_first_version(
        self, world: FakeApp, sid: uuid.UUID
    ) -> None:
        result = await write(world, sid, "config/motd.txt", "hello", if_none_match="*")

        assert (result.path, result.version, result.created) == ("config/motd.txt", 1, True)
        assert result.etag == etag("hello")
        assert world.files.store.read(sid, "config/motd.txt") == b"hello"
        assert history(world, sid, "config/motd.txt") == [("created", "applied", b"hello")]
        [event] = world.events.of(FileModified)
        assert (event.path, event.action, event.version, event.author_id) == (
            "config/motd.txt",
            "created",
            1,
            ALICE.user_id,
        )

    async def test_a_file_made_outside_keeps_its_original_before_the_edit(
        self, world: FakeApp, sid: uuid.UUID
    ) -> None:
        world.files.store.put(sid, "notes.txt", "by hand")

        result = await write(world, sid, "notes.txt", "edited", if_match=etag("by hand"))

        assert (result.version, result.created) == (2, False)
        assert history(world, sid, "notes.txt") == [
            ("original", "applied", b"by hand"),
            ("written", "applied", b"edited"),
        ]

    async def test_a_change_made_outside_since_the_last_version_is_recorded_first(
        self, world: FakeApp, sid: uuid.UUID
    ) -> None:
        await write(world, sid, "notes.txt", "one")
        world.files.store.put(sid, "notes.txt", "two by hand")

        await write(world, sid, "notes.txt", "three", if_match=etag("two by hand"))

        assert [a for a, _, _ in history(world, sid, "notes.txt")] == [
            "created",
            "external",
            "written",
        ]
        assert world.db.versions_of(sid, "notes.txt")[1].note == "changed outside the dashboard"

    async def test_replacing_a_file_without_if_match_is_refused_and_records_nothing(
        self, world: FakeApp, sid: uuid.UUID
    ) -> None:
        world.files.store.put(sid, "notes.txt", "by hand")

        with pytest.raises(PreconditionRequired) as caught:
            await write(world, sid, "notes.txt", "blind overwrite")

        assert caught.value.extra["current_etag"] == etag("by hand")
        assert world.files.store.read(sid, "notes.txt") == b"by hand"
        assert history(world, sid, "notes.txt") == []

    @pytest.mark.parametrize(
        ("values", "message"),
        [
            pytest.param({"if_match": etag("stale")}, "changed since you read it", id="stale-etag"),
            pytest.param({"if_match": f"W/{etag('one')}"}, "changed since", id="weak-etag"),
            pytest.param({"if_none_match": "*"}, "already exists", id="if-none-match-on-existing"),
        ],
    )
    async def test_a_write_based_on_a_stale_read_is_kept_rejected_not_applied(
        self, world: FakeApp, sid: uuid.UUID, values: dict[str, str], message: str
    ) -> None:
        await write(world, sid, "notes.txt", "one")

        with pytest.raises(PreconditionFailed, match=message) as caught:
            await write(world, sid, "notes.txt", "my lost work", **values)

        assert caught.value.extra["current_etag"] == etag("one")
        assert world.files.store.read(sid, "notes.txt") == b"one"
        assert history(world, sid, "notes.txt") == [
            ("created", "applied", b"one"),
            ("written", "rejected", b"my lost work"),
        ]
        assert len(world.events.of(FileModified)) == 1

    async def test_if_match_on_a_file_deleted_meanwhile_is_refused(
        self, world: FakeApp, sid: uuid.UUID
    ) -> None:
        with pytest.raises(PreconditionFailed, match="no longer exists"):
            await write(world, sid, "gone.txt", "x", if_match=etag("old"))

        assert world.files.store.read(sid, "gone.txt") is None

    async def test_a_rejected_attempt_keeps_only_its_hash_past_the_limit(
        self, world_with: Callable[..., FakeApp]
    ) -> None:
        world = world_with(file_rejected_keep_bytes=4)
        sid = await server(world)
        await write(world, sid, "notes.txt", "one")

        with pytest.raises(PreconditionFailed):
            await write(world, sid, "notes.txt", "too long to keep", if_match=etag("x"))

        rejected = world.db.versions_of(sid, "notes.txt")[-1]
        assert (rejected.outcome, rejected.content) == (Outcome.REJECTED, None)
        assert rejected.sha256 == hashlib.sha256(b"too long to keep").hexdigest()
        assert "at most 4 bytes" in (rejected.note or "")

    async def test_an_edit_over_the_limit_is_too_large(
        self, world: FakeApp, sid: uuid.UUID
    ) -> None:
        with pytest.raises(TooLarge):
            await write(world, sid, "big.txt", "x" * (world.settings.file_edit_max_bytes + 1))

        assert world.files.store.paths(sid) == []

    @pytest.mark.parametrize(
        ("path", "error"),
        [
            pytest.param("../escape.txt", InvalidPath, id="dot-dot"),
            pytest.param("/etc/passwd", InvalidPath, id="absolute"),
            pytest.param("a\\b.txt", InvalidPath, id="backslash"),
            pytest.param("nul\x00.txt", InvalidPath, id="nul-byte"),
            pytest.param("%2e%2e/x.txt", InvalidPath, id="encoded-dots"),
            pytest.param("", InvalidPath, id="empty"),
            pytest.param(".mcdash/state.json", PathForbidden, id="control-directory"),
            pytest.param("server.jar", PathForbidden, id="server-jar"),
        ],
    )
    async def test_a_path_it_may_not_write_is_refused(
        self, world: FakeApp, sid: uuid.UUID, path: str, error: type[Exception]
    ) -> None:
        with pytest.raises(error):
            await write(world, sid, path, "x")

        assert world.files.store.paths(sid) == []
        assert world.db.file_versions == []

    async def test_a_link_to_server_jar_is_as_protected_as_the_jar(
        self, world: FakeApp, sid: uuid.UUID
    ) -> None:
        world.files.store.put(sid, "server.jar", b"PK")
        world.files.store.link(sid, "innocent.txt", "server.jar")

        with pytest.raises(PathForbidden):
            await write(world, sid, "innocent.txt", "x", if_match=etag(b"PK"))

        assert world.files.store.read(sid, "server.jar") == b"PK"

    @pytest.mark.parametrize(
        ("actor", "path", "allowed"),
        [
            pytest.param(ALICE, "plugins/evil.jar", False, id="user-jar-into-plugins"),
            pytest.param(ALICE, "MODS/sub/evil.JAR", False, id="user-jar-into-mods-any-case"),
            pytest.param(ALICE, "addons/evil.jar", False, id="user-jar-through-a-link"),
            pytest.param(ALICE, "plugins/config.yml", True, id="user-config-in-plugins"),
            pytest.param(OPERATOR, "plugins/good.jar", True, id="operator-has-server-code"),
        ],
    )
    async def test_a_jar_into_plugins_or_mods_needs_server_code(
        self, world: FakeApp, sid: uuid.UUID, actor: Principal, path: str, allowed: bool
    ) -> None:
        world.files.store.put(sid, "plugins/.keep")
        world.files.store.link(sid, "addons", "plugins")

        if allowed:
            await write(world, sid, path, "x", actor=actor)
        else:
            with pytest.raises(Forbidden) as caught:
                await write(world, sid, path, "x", actor=actor)
            assert caught.value.extra["permission"] == "server:code"

        assert (world.files.store.read(sid, path) is not None) is allowed

    async def test_server_properties_of_a_running_server_flag_a_restart_and_managed_keys(
        self, world: FakeApp
    ) -> None:
        sid = await server(world, running=True)

        result = await write(world, sid, "server.properties", "server-port=1\ndifficulty=hard\n")

        assert result.restart_required
        assert world.db.servers[sid].restart_required
        assert [w.split(" will")[0] for w in result.warnings] == ["server-port=1"]

    async def test_server_properties_of_a_stopped_server_need_no_restart(
        self, world: FakeApp, sid: uuid.UUID
    ) -> None:
        result = await write(world, sid, "server.properties", "difficulty=hard\n")

        assert (result.restart_required, result.warnings) == (False, ())
        assert not world.db.servers[sid].restart_required

    async def test_another_owners_server_is_not_found(self, world: FakeApp) -> None:
        bobs = await server(world, owner=BOB)

        with pytest.raises(ServerNotFound):
            await write(world, bobs, "notes.txt", "mine")

        assert world.files.store.paths(bobs) == []


class TestDeleteFile:
    async def test_a_deleted_file_gets_a_deletion_version(
        self, world: FakeApp, sid: uuid.UUID
    ) -> None:
        await write(world, sid, "notes.txt", "one")

        result = await world.bus.handle(DeleteFile(actor=ALICE, server_id=sid, path="notes.txt"))

        assert (result.version, result.etag) == (2, None)
        assert world.files.store.read(sid, "notes.txt") is None
        assert history(world, sid, "notes.txt")[-1] == ("deleted", "applied", None)
        assert world.events.of(FileModified)[-1].action == "deleted"

    async def test_a_missing_file_is_not_found(self, world: FakeApp, sid: uuid.UUID) -> None:
        world.files.store.put(sid, "other.txt")

        with pytest.raises(FileMissing):
            await world.bus.handle(DeleteFile(actor=ALICE, server_id=sid, path="notes.txt"))

    async def test_a_delete_based_on_a_stale_read_is_refused(
        self, world: FakeApp, sid: uuid.UUID
    ) -> None:
        await write(world, sid, "notes.txt", "one")

        with pytest.raises(PreconditionFailed):
            await world.bus.handle(
                DeleteFile(actor=ALICE, server_id=sid, path="notes.txt", if_match=etag("two"))
            )

        assert world.files.store.read(sid, "notes.txt") == b"one"

    async def test_a_directory_with_files_needs_recursive(
        self, world: FakeApp, sid: uuid.UUID
    ) -> None:
        world.files.store.put(sid, "world/level.dat", b"\x00level")

        with pytest.raises(FileConflict, match="recursive=true"):
            await world.bus.handle(DeleteFile(actor=ALICE, server_id=sid, path="world"))

        assert world.files.store.read(sid, "world/level.dat") == b"\x00level"

    async def test_a_recursive_delete_records_each_tracked_file_inside(
        self, world: FakeApp, sid: uuid.UUID
    ) -> None:
        await write(world, sid, "config/a.yml", "a: 1")
        await write(world, sid, "config/deep/b.yml", "b: 2")
        world.files.store.put(sid, "config/untracked.yml", "c: 3")

        result = await world.bus.handle(
            DeleteFile(actor=ALICE, server_id=sid, path="config", recursive=True)
        )

        assert result.version is None
        assert world.files.store.paths(sid) == []
        for path in ("config/a.yml", "config/deep/b.yml"):
            assert history(world, sid, path)[-1] == ("deleted", "applied", None)
        assert history(world, sid, "config/untracked.yml") == []

    async def test_server_jar_cannot_be_deleted(self, world: FakeApp, sid: uuid.UUID) -> None:
        world.files.store.put(sid, "server.jar", b"PK")

        with pytest.raises(PathForbidden):
            await world.bus.handle(DeleteFile(actor=ALICE, server_id=sid, path="server.jar"))

        assert world.files.store.read(sid, "server.jar") == b"PK"


class TestMoveFile:
    async def test_a_moved_file_leaves_a_version_on_both_paths(
        self, world: FakeApp, sid: uuid.UUID
    ) -> None:
        await write(world, sid, "old.txt", "content")

        result = await world.bus.handle(
            MoveFile(actor=ALICE, server_id=sid, path="old.txt", to="archive/new.txt")
        )

        assert (result.path, result.version, result.etag) == ("archive/new.txt", 1, etag("content"))
        assert world.files.store.paths(sid) == ["archive", "archive/new.txt"]
        [moved_out] = world.db.versions_of(sid, "old.txt")[-1:]
        [moved_in] = world.db.versions_of(sid, "archive/new.txt")
        assert (moved_out.action, moved_out.note) == (
            VersionAction.MOVED_OUT,
            "moved to archive/new.txt",
        )
        assert (moved_in.action, moved_in.content) == (VersionAction.MOVED_IN, b"content")

    @pytest.mark.parametrize(
        ("source", "target", "error"),
        [
            pytest.param("a.txt", "b.txt", FileConflict, id="target-exists"),
            pytest.param("missing.txt", "c.txt", FileMissing, id="source-missing"),
            pytest.param("dir", "dir/inside", InvalidPath, id="into-itself"),
            pytest.param("a.txt", "server.jar", PathForbidden, id="onto-server-jar"),
            pytest.param("a.txt", "../a.txt", InvalidPath, id="out-of-the-server"),
        ],
    )
    async def test_a_move_it_cannot_make_changes_nothing(
        self, world: FakeApp, sid: uuid.UUID, source: str, target: str, error: type[Exception]
    ) -> None:
        for path in ("a.txt", "b.txt", "dir/x.txt"):
            world.files.store.put(sid, path, path)
        before = world.files.store.paths(sid)

        with pytest.raises(error):
            await world.bus.handle(MoveFile(actor=ALICE, server_id=sid, path=source, to=target))

        assert world.files.store.paths(sid) == before
        assert world.db.file_versions == []

    @pytest.mark.parametrize(
        ("actor", "allowed"),
        [pytest.param(ALICE, False, id="user"), pytest.param(OPERATOR, True, id="operator")],
    )
    async def test_moving_jars_into_plugins_needs_server_code(
        self, world: FakeApp, sid: uuid.UUID, actor: Principal, allowed: bool
    ) -> None:
        world.files.store.put(sid, "downloads/pack/tool.jar", b"PK")
        world.files.store.put(sid, "single.jar", b"PK")
        moves = [("downloads/pack", "plugins/pack"), ("single.jar", "mods/single.jar")]

        for source, target in moves:
            if allowed:
                await world.bus.handle(MoveFile(actor=actor, server_id=sid, path=source, to=target))
            else:
                with pytest.raises(Forbidden):
                    await world.bus.handle(
                        MoveFile(actor=actor, server_id=sid, path=source, to=target)
                    )

        assert (world.files.store.read(sid, "plugins/pack/tool.jar") is not None) is allowed
        assert (world.files.store.read(sid, "mods/single.jar") is not None) is allowed


class TestMakeDirectory:
    async def test_a_new_directory_is_listed(self, world: FakeApp, sid: uuid.UUID) -> None:
        await world.bus.handle(MakeDirectory(actor=ALICE, server_id=sid, path="plugins/conf"))

        listing = await world.bus.handle(ListFiles(actor=ALICE, server_id=sid, path="plugins"))
        assert [(e.name, e.type) for e in listing.items] == [("conf", "directory")]

    @pytest.mark.parametrize(
        ("path", "error"),
        [
            pytest.param("existing", FileConflict, id="exists"),
            pytest.param("../up", InvalidPath, id="dot-dot"),
            pytest.param(".mcdash", PathForbidden, id="control-directory"),
        ],
    )
    async def test_a_directory_it_cannot_make_is_refused(
        self, world: FakeApp, sid: uuid.UUID, path: str, error: type[Exception]
    ) -> None:
        await world.bus.handle(MakeDirectory(actor=ALICE, server_id=sid, path="existing"))

        with pytest.raises(error):
            await world.bus.handle(MakeDirectory(actor=ALICE, server_id=sid, path=path))

        assert world.files.store.paths(sid) == ["existing"]


class TestUploadFile:
    async def test_an_upload_is_stored_and_recorded(self, world: FakeApp, sid: uuid.UUID) -> None:
        result = await world.bus.handle(
            UploadFile(
                actor=ALICE,
                server_id=sid,
                directory="config",
                filename="rules.txt",
                chunks=chunks(b"be ", b"nice"),
            )
        )

        assert (result.path, result.size, result.created) == ("config/rules.txt", 7, True)
        assert world.files.store.read(sid, "config/rules.txt") == b"be nice"
        assert history(world, sid, "config/rules.txt") == [("uploaded", "applied", b"be nice")]

    @pytest.mark.parametrize(
        ("overwrite", "content"),
        [
            pytest.param(False, b"old", id="without-overwrite"),
            pytest.param(True, b"new", id="with-overwrite"),
        ],
    )
    async def test_an_existing_file_is_replaced_only_when_asked(
        self, world: FakeApp, sid: uuid.UUID, overwrite: bool, content: bytes
    ) -> None:
        world.files.store.put(sid, "rules.txt", b"old")
        upload = UploadFile(
            actor=ALICE,
            server_id=sid,
            directory="",
            filename="rules.txt",
            chunks=chunks(b"new"),
            overwrite=overwrite,
        )

        if overwrite:
            assert not (await world.bus.handle(upload)).created
        else:
            with pytest.raises(FileConflict, match="overwrite=true"):
                await world.bus.handle(upload)

        assert world.files.store.read(sid, "rules.txt") == content
        assert world.files.store.aborted_uploads == (0 if overwrite else 1)

    async def test_an_upload_over_the_limit_leaves_nothing(
        self, world_with: Callable[..., FakeApp]
    ) -> None:
        world = world_with(file_upload_max_bytes=1024)
        sid = await server(world)

        with pytest.raises(TooLarge):
            await world.bus.handle(
                UploadFile(
                    actor=ALICE,
                    server_id=sid,
                    directory="",
                    filename="big.bin",
                    chunks=chunks(b"x" * 1000, b"x" * 25),
                )
            )

        assert world.files.store.read(sid, "big.bin") is None
        assert world.files.store.aborted_uploads == 1
        assert world.db.file_versions == []

    @pytest.mark.parametrize(
        ("directory", "filename", "actor", "error"),
        [
            pytest.param("", "a/b.txt", ALICE, InvalidPath, id="slash-in-filename"),
            pytest.param("", "", ALICE, InvalidPath, id="no-filename"),
            pytest.param("..", "x.txt", ALICE, InvalidPath, id="directory-dot-dot"),
            pytest.param("", "server.jar", OPERATOR, PathForbidden, id="server-jar"),
            pytest.param("plugins", "evil.jar", ALICE, Forbidden, id="user-jar-into-plugins"),
        ],
    )
    async def test_an_upload_it_may_not_make_is_refused_before_reading(
        self,
        world: FakeApp,
        sid: uuid.UUID,
        directory: str,
        filename: str,
        actor: Principal,
        error: type[Exception],
    ) -> None:
        with pytest.raises(error):
            await world.bus.handle(
                UploadFile(
                    actor=actor,
                    server_id=sid,
                    directory=directory,
                    filename=filename,
                    chunks=chunks(b"PK"),
                )
            )

        assert world.files.store.paths(sid) == []


class TestRestoreVersion:
    async def test_an_earlier_version_comes_back_as_a_new_one(
        self, world: FakeApp, sid: uuid.UUID
    ) -> None:
        await write(world, sid, "notes.txt", "one")
        await write(world, sid, "notes.txt", "two", if_match=etag("one"))

        result = await world.bus.handle(
            RestoreVersion(actor=ALICE, server_id=sid, path="notes.txt", version=1)
        )

        assert (result.version, result.etag) == (3, etag("one"))
        assert world.files.store.read(sid, "notes.txt") == b"one"
        restored = world.db.versions_of(sid, "notes.txt")[-1]
        assert (restored.action, restored.note) == (VersionAction.RESTORED, "restored version 1")

    async def test_a_deleted_file_can_be_restored(self, world: FakeApp, sid: uuid.UUID) -> None:
        await write(world, sid, "notes.txt", "one")
        await world.bus.handle(DeleteFile(actor=ALICE, server_id=sid, path="notes.txt"))

        await world.bus.handle(
            RestoreVersion(actor=ALICE, server_id=sid, path="notes.txt", version=1)
        )

        assert world.files.store.read(sid, "notes.txt") == b"one"

    @pytest.mark.parametrize(
        ("version", "error", "message"),
        [
            pytest.param(9, FileMissing, "no version 9", id="unknown-version"),
            pytest.param(2, FileConflict, "records its removal", id="a-deletion"),
            pytest.param(3, FileConflict, "was not kept", id="binary-content"),
        ],
    )
    async def test_a_version_without_content_to_restore_is_refused(
        self, world: FakeApp, sid: uuid.UUID, version: int, error: type[Exception], message: str
    ) -> None:
        await write(world, sid, "data.bin", "text")
        await world.bus.handle(DeleteFile(actor=ALICE, server_id=sid, path="data.bin"))
        await world.bus.handle(
            UploadFile(
                actor=ALICE,
                server_id=sid,
                directory="",
                filename="data.bin",
                chunks=chunks(b"\x00\x01binary"),
            )
        )

        with pytest.raises(error, match=message):
            await world.bus.handle(
                RestoreVersion(actor=ALICE, server_id=sid, path="data.bin", version=version)
            )

        assert world.files.store.read(sid, "data.bin") == b"\x00\x01binary"

    async def test_a_restore_over_a_stale_read_is_refused(
        self, world: FakeApp, sid: uuid.UUID
    ) -> None:
        await write(world, sid, "notes.txt", "one")
        await write(world, sid, "notes.txt", "two", if_match=etag("one"))

        with pytest.raises(PreconditionFailed):
            await world.bus.handle(
                RestoreVersion(
                    actor=ALICE, server_id=sid, path="notes.txt", version=1, if_match=etag("one")
                )
            )

        assert world.files.store.read(sid, "notes.txt") == b"two"


class TestQueries:
    async def test_versions_page_newest_first_without_contents(
        self, world: FakeApp, sid: uuid.UUID
    ) -> None:
        await write(world, sid, "notes.txt", "one")
        await write(world, sid, "notes.txt", "two", if_match=etag("one"))

        page = await world.bus.handle(ListVersions(actor=ALICE, server_id=sid, path="notes.txt"))

        assert [(v.version, v.content) for v in page.items] == [(2, b""), (1, b"")]
        assert page.total == 2

    async def test_a_text_file_reads_back_with_its_etag_and_diffs_against_a_version(
        self, world: FakeApp, sid: uuid.UUID
    ) -> None:
        await write(world, sid, "notes.txt", "one\n")
        await write(world, sid, "notes.txt", "two\n", if_match=etag("one\n"))

        text = await world.bus.handle(ReadFile(actor=ALICE, server_id=sid, path="notes.txt"))
        diff = await world.bus.handle(
            DiffVersion(actor=ALICE, server_id=sid, path="notes.txt", version=1)
        )

        assert (text.content, text.etag) == ("two\n", etag("two\n"))
        assert "-one\n+two\n" in diff.diff
