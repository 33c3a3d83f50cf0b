"""Handlers of the servers context through the bootstrapped bus, on in-memory fakes: what
owners ask for (create, update, jar, delete, lifecycle, console) and what nodes observe."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.groups.application.messages import AttachGroupToServer, CreateGroup
from app.groups.domain.model import GroupType
from app.servers.application.handlers import NodeOffline
from app.servers.application.messages import (
    CreateServer,
    DeleteServer,
    ExpireStaleStarts,
    GetConsoleLog,
    GetServerStatus,
    ListNodes,
    ListServers,
    MarkRestartRequired,
    RecordPlayers,
    RecordProcessExit,
    RecordProcessLaunched,
    RecordServerReady,
    RecordStartFailure,
    RequestAutomaticStart,
    RequestMaintenanceStop,
    RestartServer,
    SendConsoleCommand,
    ServerListFilter,
    StartServer,
    StopServer,
    UpdateServer,
    UploadServerJar,
)
from app.servers.domain.errors import (
    InvalidJar,
    InvalidTransition,
    JarTooLarge,
    JavaRuntimeMissing,
    PortUnavailable,
    ServerNotFound,
    UnknownVersion,
)
from app.servers.domain.events import (
    ConsoleCommandExecuted,
    ServerConfigurationUpdated,
    ServerCrashed,
    ServerCreated,
    ServerDeleted,
    ServerPlayersChanged,
    ServerStarted,
    ServerStartFailed,
    ServerStarting,
    ServerStopped,
)
from app.servers.domain.model import RestartMode, RestartPolicy, ServerState, ServerType
from app.servers.domain.ports import ServerRuntime
from app.shared.domain import ConcurrencyConflict, Conflict, Forbidden, InvalidInput
from app.shared.security import Role
from tests.fakes import FakeApp, node_record, principal, runnable_jar

ALICE, BOB = principal("alice"), principal("bob")
ADMIN = principal("root", role=Role.ADMIN)
FIRST_PORT = 25565


async def create(world: FakeApp, owner=ALICE, **values: Any) -> uuid.UUID:
    body: dict[str, Any] = {
        "name": "survival",
        "description": None,
        "server_type": ServerType.VANILLA,
        "version": "1.21.4",
        "memory_mb": 2048,
        "eula_accepted": True,
    }
    return await world.bus.handle(CreateServer(owner=owner, **(body | values)))


async def running(world: FakeApp, owner=ALICE, **values: Any) -> uuid.UUID:
    """A server its node has launched and seen ready."""
    server_id = await create(world, owner, **values)
    await world.bus.handle(StartServer(actor=owner, server_id=server_id))
    await world.bus.handle(
        RecordProcessLaunched(server_id=server_id, pid=4242, process_started_at=1.0, java="21")
    )
    await world.bus.handle(RecordServerReady(server_id=server_id, detected_by="log"))
    return server_id


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


class TestCreateServer:
    async def test_stores_a_stopped_server_on_the_first_free_port(self, world: FakeApp) -> None:
        server_id = await create(world)

        stored = world.db.servers[server_id]
        assert (stored.name, stored.owner_id, stored.node) == ("survival", ALICE.user_id, "local")
        assert (stored.state, stored.port, stored.version) == (ServerState.STOPPED, FIRST_PORT, 1)
        assert [type(e) for e in world.events.committed] == [ServerCreated]

    async def test_the_next_server_takes_the_next_free_port_of_its_node(
        self, world: FakeApp
    ) -> None:
        await create(world, name="first")

        second = await create(world, name="second")

        assert world.db.servers[second].port == FIRST_PORT + 1

    async def test_a_port_of_another_server_on_the_same_node_is_refused(
        self, world: FakeApp
    ) -> None:
        await create(world, BOB)

        with pytest.raises(PortUnavailable, match="node local"):
            await create(world, ADMIN, name="wanted", port=FIRST_PORT)

        assert [s.name for s in world.db.servers.values()] == ["survival"]

    async def test_a_full_port_range_asks_for_an_explicit_port(self, world: FakeApp) -> None:
        world.servers.nodes.records["local"] = node_record("local", ports=(30000, 30001))
        await create(world, name="first")
        await create(world, name="second")

        with pytest.raises(PortUnavailable, match="no free port left in node local's range"):
            await create(world)

    @pytest.mark.parametrize(
        "name",
        [pytest.param("survival", id="same-name"), pytest.param("SURVIVAL", id="other-case")],
    )
    async def test_an_owner_cannot_have_two_servers_of_one_name(
        self, world: FakeApp, name: str
    ) -> None:
        await create(world)

        with pytest.raises(Conflict) as caught:
            await create(world, name=name)

        assert caught.value.extra == {"field": "name"}
        assert len(world.db.servers) == 1

    async def test_two_owners_may_use_the_same_name(self, world: FakeApp) -> None:
        await create(world, ALICE)
        await create(world, BOB)

        assert {s.owner_id for s in world.db.servers.values()} == {ALICE.user_id, BOB.user_id}

    async def test_a_create_racing_another_for_the_same_port_is_refused_at_commit(
        self, world: FakeApp
    ) -> None:
        bobs = await create(world, BOB, name="bobs")
        racing = world.db.servers.pop(bobs)  # Bob commits while Alice's port is chosen
        world.db.before_commit.append(lambda _: world.db.servers.setdefault(bobs, racing))

        with pytest.raises(Conflict) as caught:
            await create(world, name="alices")

        assert caught.value.extra["constraint"] == "uq_servers_node_port"
        assert list(world.db.servers) == [bobs]

    @pytest.mark.parametrize(
        ("values", "field"),
        [
            pytest.param({"name": "ab"}, "name", id="name-2-chars"),
            pytest.param({"name": "has space"}, "name", id="name-with-space"),
            pytest.param({"version": "latest"}, "version", id="version-latest"),
            pytest.param({"memory_mb": 256}, "memory_mb", id="memory-256"),
            pytest.param({"memory_mb": 8193}, "memory_mb", id="user-memory-above-limit"),
            pytest.param({"port": 1080}, "port", id="user-port-outside-range"),
            pytest.param({"motd": "two\nlines"}, "motd", id="motd-newline"),
        ],
    )
    async def test_bad_input_is_refused_and_nothing_is_stored(
        self, world: FakeApp, values: dict[str, Any], field: str
    ) -> None:
        with pytest.raises(InvalidInput) as caught:
            await create(world, **values)

        assert caught.value.extra["field"] == field
        assert world.db.servers == {}
        assert world.events.committed == []

    async def test_an_admin_may_go_beyond_the_port_range_and_heap_limit(
        self, world: FakeApp
    ) -> None:
        server_id = await create(world, ADMIN, port=1080, memory_mb=16384)

        assert (world.db.servers[server_id].port, world.db.servers[server_id].config.memory_mb) == (
            1080,
            16384,
        )

    async def test_no_one_gets_more_heap_than_the_node_has(self, world: FakeApp) -> None:
        world.servers.nodes.records["local"] = node_record("local", memory_mb=4096)

        with pytest.raises(InvalidInput, match="more than node local has"):
            await create(world, ADMIN, memory_mb=6144, node="local")
        with pytest.raises(InvalidInput, match="the most of any online node"):
            await create(world, ADMIN, memory_mb=6144)

    async def test_an_unknown_version_is_refused_but_a_custom_server_is_not_checked(
        self, world: FakeApp
    ) -> None:
        world.servers.releases.unknown = {(ServerType.VANILLA, "1.99"), (ServerType.CUSTOM, "1.99")}

        with pytest.raises(UnknownVersion):
            await create(world, version="1.99")
        custom = await create(world, server_type=ServerType.CUSTOM, version="1.99")

        assert list(world.db.servers) == [custom]

    async def test_a_loader_server_records_the_chosen_loader_version(self, world: FakeApp) -> None:
        recommended = await create(world, server_type=ServerType.FABRIC, name="fabric-a")
        asked = await create(
            world, server_type=ServerType.NEOFORGE, name="neo-b", loader_version="21.4.10"
        )

        assert world.db.servers[recommended].config.loader_version == "recommended-1.21.4"
        assert world.db.servers[asked].config.loader_version == "21.4.10"
        [_, created] = world.events.of(ServerCreated)
        assert (created.server_type, created.loader_version) == ("neoforge", "21.4.10")

    async def test_a_loader_version_on_a_type_without_a_loader_is_refused(
        self, world: FakeApp
    ) -> None:
        with pytest.raises(InvalidInput, match="no loader version") as refused:
            await create(world, server_type=ServerType.PAPER, loader_version="0.16.10")

        assert refused.value.extra["field"] == "loader_version"
        assert world.db.servers == {}

    async def test_a_new_game_version_rechooses_the_loader(self, world: FakeApp) -> None:
        server_id = await create(world, server_type=ServerType.FORGE, loader_version="54.0.16")

        await world.bus.handle(UpdateServer(actor=ALICE, server_id=server_id, version="1.20.4"))

        config = world.db.servers[server_id].config
        assert (config.version, config.loader_version) == ("1.20.4", "recommended-1.20.4")


class TestUpdateServer:
    async def test_returns_the_changes_and_asks_the_node_to_rewrite_the_files(
        self, world: FakeApp
    ) -> None:
        server_id = await create(world)

        changed = await world.bus.handle(
            UpdateServer(actor=ALICE, server_id=server_id, motd="hello", max_players=5)
        )

        assert set(changed) == {"motd", "max_players"}
        stored = world.db.servers[server_id]
        assert (stored.config.motd, stored.config.max_players, stored.version) == ("hello", 5, 2)
        assert world.servers.nodes.actions(server_id) == ["sync_files"]
        [updated] = world.events.of(ServerConfigurationUpdated)
        assert not updated.restart_required

    async def test_nothing_changed_writes_nothing(self, world: FakeApp) -> None:
        server_id = await create(world)

        assert (
            await world.bus.handle(
                UpdateServer(actor=ALICE, server_id=server_id, motd="A Minecraft Server")
            )
            == []
        )

        assert world.db.servers[server_id].version == 1
        assert world.servers.nodes.jobs == []

    async def test_a_running_server_needs_a_restart_for_a_new_heap(self, world: FakeApp) -> None:
        server_id = await running(world)

        await world.bus.handle(UpdateServer(actor=ALICE, server_id=server_id, memory_mb=4096))

        assert world.db.servers[server_id].restart_required
        assert world.events.of(ServerConfigurationUpdated)[-1].restart_required

    @pytest.mark.parametrize(
        ("values", "error"),
        [
            pytest.param({"port": FIRST_PORT + 1}, PortUnavailable, id="port-of-another-server"),
            pytest.param({"version": "1.99"}, UnknownVersion, id="unknown-version"),
            pytest.param({"memory_mb": 100000}, InvalidInput, id="memory-100000"),
        ],
    )
    async def test_a_refused_change_leaves_the_server_as_it_was(
        self, world: FakeApp, values: dict[str, Any], error: type[Exception]
    ) -> None:
        server_id = await create(world)
        await create(world, BOB)
        world.servers.releases.unknown = {(ServerType.VANILLA, "1.99")}

        with pytest.raises(error):
            await world.bus.handle(UpdateServer(actor=ALICE, server_id=server_id, **values))

        assert world.db.servers[server_id].version == 1
        assert world.servers.nodes.jobs == []

    async def test_the_eula_cannot_be_withdrawn_while_the_server_runs(self, world: FakeApp) -> None:
        server_id = await running(world)

        with pytest.raises(Conflict, match="EULA"):
            await world.bus.handle(
                UpdateServer(actor=ALICE, server_id=server_id, eula_accepted=False)
            )

    async def test_another_owners_server_is_not_found(self, world: FakeApp) -> None:
        server_id = await create(world, BOB)

        with pytest.raises(ServerNotFound):
            await world.bus.handle(UpdateServer(actor=ALICE, server_id=server_id, motd="mine"))


class TestUploadServerJar:
    async def test_a_runnable_jar_becomes_the_custom_servers_jar(self, world: FakeApp) -> None:
        server_id = await create(world, server_type=ServerType.CUSTOM)
        jar = runnable_jar()

        stored_jar = await world.bus.handle(
            UploadServerJar(actor=ALICE, server_id=server_id, chunks=chunks(jar[:10], jar[10:]))
        )

        assert stored_jar.size == len(jar)
        assert world.db.servers[server_id].config.jar_sha256 == stored_jar.sha256
        assert world.servers.jars.jars[stored_jar.sha256] == jar

    @pytest.mark.parametrize(
        ("content", "error"),
        [
            pytest.param(b"not a zip", InvalidJar, id="not-a-zip"),
            pytest.param(runnable_jar(main_class=None), InvalidJar, id="no-main-class"),
            pytest.param(b"PK" + b"\0" * 2048, JarTooLarge, id="over-the-size-limit"),
        ],
    )
    async def test_a_bad_jar_is_refused_and_the_server_keeps_none(
        self, world: FakeApp, content: bytes, error: type[Exception]
    ) -> None:
        server_id = await create(world, server_type=ServerType.CUSTOM)
        world.servers.jars.max_upload_bytes = 1024

        with pytest.raises(error):
            await world.bus.handle(
                UploadServerJar(actor=ALICE, server_id=server_id, chunks=chunks(content))
            )

        assert world.db.servers[server_id].config.jar_sha256 is None

    async def test_only_a_custom_server_takes_a_jar(self, world: FakeApp) -> None:
        server_id = await create(world)

        with pytest.raises(Conflict) as caught:
            await world.bus.handle(
                UploadServerJar(actor=ALICE, server_id=server_id, chunks=chunks(runnable_jar()))
            )

        assert caught.value.extra == {"field": "server_type"}
        assert world.servers.jars.jars == {}


class TestDeleteServer:
    async def test_a_stopped_server_goes_with_its_files_status_and_attachments(
        self, world: FakeApp
    ) -> None:
        server_id = await create(world)
        group_id = await world.bus.handle(
            CreateGroup(actor=ALICE, name="ops", description=None, group_type=GroupType.OP)
        )
        await world.bus.handle(
            AttachGroupToServer(actor=ALICE, group_id=group_id, server_id=server_id)
        )
        world.backups.storage.objects[f"{server_id}/old.tar.gz"] = b"archive"

        await world.bus.handle(DeleteServer(actor=ALICE, server_id=server_id))

        assert server_id not in world.db.servers
        assert [e.server_id for e in world.events.of(ServerDeleted)] == [server_id]
        assert world.servers.nodes.actions(server_id) == ["delete_files"]
        assert world.servers.runtime.forgotten == [server_id]
        assert world.db.groups[group_id].servers == {}
        assert world.backups.storage.objects == {}, "its archives go on ServerDeleted"

    async def test_a_running_server_must_be_stopped_first(self, world: FakeApp) -> None:
        server_id = await running(world)

        with pytest.raises(InvalidTransition, match="stop it first"):
            await world.bus.handle(DeleteServer(actor=ALICE, server_id=server_id))

        assert server_id in world.db.servers
        assert world.events.of(ServerDeleted) == []

    async def test_another_owners_server_is_not_found_and_stays(self, world: FakeApp) -> None:
        server_id = await create(world, BOB)

        with pytest.raises(ServerNotFound):
            await world.bus.handle(DeleteServer(actor=ALICE, server_id=server_id))

        assert server_id in world.db.servers


class TestLifecycle:
    async def test_start_marks_the_server_starting_and_queues_it_on_its_node(
        self, world: FakeApp
    ) -> None:
        server_id = await create(world)

        result = await world.bus.handle(StartServer(actor=ALICE, server_id=server_id))

        assert (result.state, result.node, result.node_online) == ("starting", "local", True)
        assert result.message == "start queued on node local"
        assert result.job_id == world.servers.nodes.jobs[-1].job_id
        assert world.db.servers[server_id].state is ServerState.STARTING
        assert world.servers.nodes.actions(server_id) == ["start"]

    async def test_a_start_on_an_offline_node_says_when_it_would_run(self, world: FakeApp) -> None:
        server_id = await create(world)
        world.servers.nodes.online.clear()

        result = await world.bus.handle(StartServer(actor=ALICE, server_id=server_id))

        assert not result.node_online
        assert "offline" in result.message
        assert "300 s" in result.message
        assert world.servers.nodes.actions(server_id) == ["start"]

    @pytest.mark.parametrize(
        ("values", "reason"),
        [
            pytest.param({"eula_accepted": False}, "eula-not-accepted", id="eula-not-accepted"),
            pytest.param(
                {"server_type": ServerType.CUSTOM}, "jar-missing", id="custom-without-jar"
            ),
        ],
    )
    async def test_a_server_that_cannot_run_yet_is_not_started(
        self, world: FakeApp, values: dict[str, Any], reason: str
    ) -> None:
        server_id = await create(world, **values)

        with pytest.raises(Conflict) as caught:
            await world.bus.handle(StartServer(actor=ALICE, server_id=server_id))

        assert caught.value.extra["reason"] == reason
        assert world.db.servers[server_id].state is ServerState.STOPPED
        assert world.servers.nodes.jobs == []

    async def test_a_node_without_the_java_the_version_needs_refuses_the_start(
        self, world: FakeApp
    ) -> None:
        server_id = await create(world)
        world.servers.releases.java["local"] = 17

        with pytest.raises(JavaRuntimeMissing):
            await world.bus.handle(StartServer(actor=ALICE, server_id=server_id))

        assert world.db.servers[server_id].state is ServerState.STOPPED

    async def test_starting_twice_is_refused(self, world: FakeApp) -> None:
        server_id = await create(world)
        await world.bus.handle(StartServer(actor=ALICE, server_id=server_id))

        with pytest.raises(InvalidTransition, match="already starting"):
            await world.bus.handle(StartServer(actor=ALICE, server_id=server_id))

        assert world.servers.nodes.actions(server_id) == ["start"]

    @pytest.mark.parametrize(
        ("kill", "action"),
        [pytest.param(False, "stop", id="stop"), pytest.param(True, "kill", id="kill")],
    )
    async def test_stop_queues_a_stop_or_a_kill(
        self, world: FakeApp, kill: bool, action: str
    ) -> None:
        server_id = await running(world)

        result = await world.bus.handle(StopServer(actor=ALICE, server_id=server_id, kill=kill))

        assert result.state == "stopping"
        assert world.servers.nodes.actions(server_id)[-1] == action

    @pytest.mark.parametrize(
        ("request_", "starts_running", "state"),
        [
            pytest.param("stop", True, "stopping", id="stop-while-the-node-reports-ready"),
            pytest.param("start", False, "starting", id="start-racing-another-writer"),
            pytest.param("restart", True, "stopping", id="restart-racing-another-writer"),
        ],
    )
    async def test_a_lifecycle_request_racing_the_nodes_report_is_retried(
        self, world: FakeApp, request_: str, starts_running: bool, state: str
    ) -> None:
        """The node records "launched" or "ready" at the moment the owner clicks: the owner's
        request is applied to the reloaded server, not refused with 409."""
        server_id = await (running(world) if starts_running else create(world))
        races = []

        def node_writes_first(_: object) -> None:
            if not races:
                races.append(1)
                world.db.servers[server_id].version += 1

        world.db.before_commit.append(node_writes_first)
        message = {"stop": StopServer, "start": StartServer, "restart": RestartServer}[request_]

        result = await world.bus.handle(message(actor=ALICE, server_id=server_id))

        assert races == [1]
        assert result.state == state
        assert world.db.servers[server_id].state.value == state

    async def test_a_stop_that_keeps_losing_the_race_gives_up(self, world: FakeApp) -> None:
        server_id = await running(world)
        world.db.before_commit.append(
            lambda _: setattr(
                world.db.servers[server_id], "version", world.db.servers[server_id].version + 1
            )
        )

        with pytest.raises(ConcurrencyConflict):
            await world.bus.handle(StopServer(actor=ALICE, server_id=server_id))

        assert world.db.servers[server_id].state is ServerState.RUNNING

    async def test_a_stopped_server_cannot_be_stopped(self, world: FakeApp) -> None:
        server_id = await create(world)

        with pytest.raises(InvalidTransition):
            await world.bus.handle(StopServer(actor=ALICE, server_id=server_id))

    @pytest.mark.parametrize(
        ("is_running", "state", "action"),
        [
            pytest.param(True, "stopping", "restart", id="running-server"),
            pytest.param(False, "starting", "start", id="stopped-server"),
        ],
    )
    async def test_restart_stops_a_running_server_and_starts_a_stopped_one(
        self, world: FakeApp, is_running: bool, state: str, action: str
    ) -> None:
        server_id = await (running(world) if is_running else create(world))

        result = await world.bus.handle(RestartServer(actor=ALICE, server_id=server_id))

        assert result.state == state
        assert world.servers.nodes.actions(server_id)[-1] == action
        assert result.message.startswith("restart queued")


class TestConsole:
    async def test_a_command_is_audited_and_sent_to_the_node(self, world: FakeApp) -> None:
        server_id = await running(world)

        sent = await world.bus.handle(
            SendConsoleCommand(actor=ALICE, server_id=server_id, command=" /deop bob ", via="ws")
        )

        assert sent == "deop bob"
        assert world.servers.nodes.console == [("local", server_id, "deop bob")]
        [audited] = world.events.of(ConsoleCommandExecuted)
        assert (audited.command, audited.user_id, audited.via) == ("deop bob", ALICE.user_id, "ws")

    @pytest.mark.parametrize(
        ("command", "error"),
        [
            pytest.param("stop", Forbidden, id="stop-verb"),
            pytest.param("minecraft:reload", Forbidden, id="namespaced-reload"),
            pytest.param("say hi\nop eve", InvalidInput, id="newline-in-command"),
            pytest.param("   ", InvalidInput, id="blank"),
        ],
    )
    async def test_a_refused_command_is_neither_sent_nor_audited(
        self, world: FakeApp, command: str, error: type[Exception]
    ) -> None:
        server_id = await running(world)

        with pytest.raises(error):
            await world.bus.handle(
                SendConsoleCommand(actor=ALICE, server_id=server_id, command=command)
            )

        assert world.servers.nodes.console == []
        assert world.events.of(ConsoleCommandExecuted) == []

    async def test_a_stopped_server_has_no_console(self, world: FakeApp) -> None:
        server_id = await create(world)

        with pytest.raises(Conflict, match="is stopped"):
            await world.bus.handle(
                SendConsoleCommand(actor=ALICE, server_id=server_id, command="list")
            )

    async def test_a_node_whose_supervisor_is_not_listening_is_offline(
        self, world: FakeApp
    ) -> None:
        server_id = await running(world)
        world.servers.nodes.listening.clear()

        with pytest.raises(NodeOffline):
            await world.bus.handle(
                SendConsoleCommand(actor=ALICE, server_id=server_id, command="list")
            )

        assert world.events.of(ConsoleCommandExecuted) == []


class TestObservations:
    async def test_a_launch_then_readiness_make_the_server_running(self, world: FakeApp) -> None:
        server_id = await running(world)

        stored = world.db.servers[server_id]
        assert (stored.state, stored.pid, stored.started_at) == (
            ServerState.RUNNING,
            4242,
            world.clock.now(),
        )
        assert [type(e) for e in world.events.committed][-2:] == [ServerStarting, ServerStarted]

    async def test_readiness_of_a_server_no_longer_starting_changes_nothing(
        self, world: FakeApp
    ) -> None:
        server_id = await create(world)

        await world.bus.handle(RecordServerReady(server_id=server_id, detected_by="ping"))

        assert world.db.servers[server_id].state is ServerState.STOPPED
        assert world.events.of(ServerStarted) == []

    async def test_a_start_failure_stops_the_server_with_the_reason(self, world: FakeApp) -> None:
        server_id = await create(world)
        await world.bus.handle(StartServer(actor=ALICE, server_id=server_id))

        await world.bus.handle(RecordStartFailure(server_id=server_id, reason="port 25565 in use"))

        stored = world.db.servers[server_id]
        assert stored.state is ServerState.STOPPED
        assert stored.status_message == "start failed: port 25565 in use"
        assert [e.reason for e in world.events.of(ServerStartFailed)] == ["port 25565 in use"]

    async def test_an_exit_after_a_stop_is_a_stop(self, world: FakeApp) -> None:
        server_id = await running(world)
        await world.bus.handle(StopServer(actor=ALICE, server_id=server_id))

        restart = await world.bus.handle(
            RecordProcessExit(server_id=server_id, exit_code=0, reason="stopped")
        )

        assert restart is False
        assert world.db.servers[server_id].state is ServerState.STOPPED
        assert [e.exit_code for e in world.events.of(ServerStopped)] == [0]

    @pytest.mark.parametrize(
        ("policy", "crashes", "restarts"),
        [
            pytest.param(RestartPolicy(), 1, [False], id="policy-off"),
            pytest.param(
                RestartPolicy(mode=RestartMode.ON_FAILURE, max_restarts=2),
                3,
                [True, True, False],
                id="on-failure-max-2",
            ),
            pytest.param(
                RestartPolicy(mode=RestartMode.ON_FAILURE, max_restarts=0), 1, [False], id="max-0"
            ),
        ],
    )
    async def test_a_crash_asks_for_a_restart_while_the_policy_allows(
        self, world: FakeApp, policy: RestartPolicy, crashes: int, restarts: list[bool]
    ) -> None:
        server_id = await running(world, restart=policy)
        answers = []
        for _ in range(crashes):
            answers.append(
                await world.bus.handle(
                    RecordProcessExit(server_id=server_id, exit_code=137, reason="out of memory")
                )
            )
            if answers[-1]:
                await world.bus.handle(RequestAutomaticStart(server_id=server_id))
                await world.bus.handle(
                    RecordProcessLaunched(
                        server_id=server_id, pid=7, process_started_at=2.0, java="21"
                    )
                )

        assert answers == restarts
        stored = world.db.servers[server_id]
        assert (stored.state, stored.status_message) == (ServerState.CRASHED, "out of memory")
        assert stored.restart_count == restarts.count(True)
        assert [e.will_restart for e in world.events.of(ServerCrashed)] == restarts

    async def test_an_exit_of_a_stopped_server_is_ignored(self, world: FakeApp) -> None:
        server_id = await create(world)

        assert not await world.bus.handle(
            RecordProcessExit(server_id=server_id, exit_code=1, reason="late report")
        )

        assert world.db.servers[server_id].version == 1

    async def test_players_are_recorded_when_they_change(self, world: FakeApp) -> None:
        server_id = await running(world)

        for players in (("alex",), ("alex",), ("alex", "steve")):
            await world.bus.handle(RecordPlayers(server_id=server_id, players=players))

        assert world.db.servers[server_id].players == ("alex", "steve")
        assert [e.players for e in world.events.of(ServerPlayersChanged)] == [
            ("alex",),
            ("alex", "steve"),
        ]

    async def test_an_edited_file_of_a_running_server_flags_a_restart_once(
        self, world: FakeApp
    ) -> None:
        stopped, active = await create(world, name="idle"), await running(world)

        answers = [
            await world.bus.handle(
                MarkRestartRequired(server_id=sid, changed_file="server.properties")
            )
            for sid in (stopped, active, active)
        ]

        assert answers == [False, True, False]
        assert not world.db.servers[stopped].restart_required
        assert world.db.servers[active].restart_required

    async def test_a_maintenance_stop_stops_only_a_running_server(self, world: FakeApp) -> None:
        stopped, active = await create(world, name="idle"), await running(world)

        answers = [
            await world.bus.handle(RequestMaintenanceStop(server_id=sid, reason="restore"))
            for sid in (stopped, active)
        ]

        assert answers == [False, True]
        assert world.db.servers[active].state is ServerState.STOPPING

    async def test_starts_no_worker_picked_up_expire_after_the_job_lifetime(
        self, world: FakeApp
    ) -> None:
        stale, launched = await create(world, name="stale"), await create(world, name="launched")
        for server_id in (stale, launched):
            await world.bus.handle(StartServer(actor=ALICE, server_id=server_id))
        await world.bus.handle(
            RecordProcessLaunched(server_id=launched, pid=9, process_started_at=1.0, java="21")
        )
        world.clock.advance(301)
        recent = await create(world, name="recent")
        await world.bus.handle(StartServer(actor=ALICE, server_id=recent))

        expired = await world.bus.handle(ExpireStaleStarts())

        assert expired == [stale]
        assert world.db.servers[stale].state is ServerState.STOPPED
        assert "did not pick up the start within 300 s" in world.db.servers[stale].status_message
        assert world.db.servers[launched].state is ServerState.STARTING
        assert world.db.servers[recent].state is ServerState.STARTING

    async def test_an_observation_racing_an_owners_change_is_retried(self, world: FakeApp) -> None:
        server_id = await create(world)
        await world.bus.handle(StartServer(actor=ALICE, server_id=server_id))
        races = []

        def owner_writes_first(_: object) -> None:
            if not races:
                races.append(1)
                world.db.servers[server_id].version += 1

        world.db.before_commit.append(owner_writes_first)

        await world.bus.handle(
            RecordProcessLaunched(server_id=server_id, pid=11, process_started_at=1.0, java="21")
        )

        assert races == [1]
        assert world.db.servers[server_id].pid == 11

    async def test_an_observation_that_keeps_losing_the_race_gives_up(self, world: FakeApp) -> None:
        server_id = await running(world)
        world.db.before_commit.append(
            lambda _: setattr(
                world.db.servers[server_id], "version", world.db.servers[server_id].version + 1
            )
        )

        with pytest.raises(ConcurrencyConflict):
            await world.bus.handle(RecordPlayers(server_id=server_id, players=("alex",)))

        assert world.db.servers[server_id].players == ()


class TestQueries:
    async def test_owners_list_their_own_servers_and_admins_all(self, world: FakeApp) -> None:
        mine, theirs = await create(world, ALICE), await create(world, BOB)
        world.clock.advance(1)

        own = await world.bus.handle(ListServers(actor=ALICE, filter=ServerListFilter()))
        every = await world.bus.handle(ListServers(actor=ADMIN, filter=ServerListFilter()))

        assert [item["id"] for item in own.items] == [mine]
        assert {item["id"] for item in every.items} == {mine, theirs}

    async def test_status_shows_live_facts_only_of_an_active_server(self, world: FakeApp) -> None:
        stopped, active = await create(world, name="idle"), await running(world)
        for server_id in (stopped, active):
            world.servers.runtime.statuses[server_id] = ServerRuntime(state="running", pid=1)

        views = [
            await world.bus.handle(GetServerStatus(actor=ALICE, server_id=sid))
            for sid in (stopped, active)
        ]

        assert [view.runtime is not None for view in views] == [False, True]

    @pytest.mark.parametrize(
        ("before", "expected"),
        [
            pytest.param(None, ["three", "two"], id="newest-first"),
            pytest.param("1001-0", ["one"], id="older-than-a-line"),
            pytest.param("0-0", [], id="before-the-first-line"),
        ],
    )
    async def test_the_console_log_pages_back_from_the_newest_line(
        self, world: FakeApp, before: str | None, expected: list[str]
    ) -> None:
        server_id = await create(world)
        world.servers.runtime.say(server_id, "one", "two", "three")

        page = await world.bus.handle(
            GetConsoleLog(actor=ALICE, server_id=server_id, before=before, limit=2)
        )

        assert [entry.line for entry in page] == expected

    async def test_only_operators_and_admins_see_the_nodes(self, world: FakeApp) -> None:
        with pytest.raises(Forbidden):
            await world.bus.handle(ListNodes(actor=ALICE))

        nodes = await world.bus.handle(ListNodes(actor=ADMIN))
        assert [(node.name, node.online, node.server_count) for node in nodes] == [
            ("local", True, 0)
        ]
