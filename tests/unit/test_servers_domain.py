"""The Server aggregate: creation rules, configuration value objects and the lifecycle."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.servers.domain.errors import InvalidTransition
from app.servers.domain.events import (
    ServerConfigurationUpdated,
    ServerCrashed,
    ServerCreated,
    ServerDeleted,
    ServerPlayersChanged,
    ServerStarted,
    ServerStartFailed,
    ServerStarting,
    ServerStartRequested,
    ServerStopped,
    ServerStopRequested,
)
from app.servers.domain.model import (
    RestartMode,
    RestartPolicy,
    Server,
    ServerConfig,
    ServerState,
    ServerType,
)
from app.shared.domain import Conflict, InvalidInput

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
SERVER_ID = uuid.UUID("11111111-1111-4111-8111-111111111111")
OWNER_ID = uuid.UUID("22222222-2222-4222-8222-222222222222")
USER_ID = uuid.UUID("33333333-3333-4333-8333-333333333333")
NODE = "node-1"
PID = 4242
PROCESS_STARTED_AT = 1_700_000_000.25


def make_config(**overrides: Any) -> ServerConfig:
    values: dict[str, Any] = {
        "server_type": ServerType.VANILLA,
        "version": "1.21",
        "memory_mb": 2048,
    }
    values.update(overrides)
    return ServerConfig(**values)


def create(**overrides: Any) -> Server:
    values: dict[str, Any] = {
        "server_id": SERVER_ID,
        "name": "survival",
        "description": "A friendly world",
        "owner_id": OWNER_ID,
        "node": NODE,
        "port": 25565,
        "config": make_config(),
        "eula_accepted": True,
        "now": NOW,
    }
    values.update(overrides)
    return Server.create(**values)


def make_server(state: ServerState = ServerState.STOPPED, **overrides: Any) -> Server:
    """A server driven through the state machine to `state`, with no pending events."""
    server = create(**overrides)
    if state is not ServerState.STOPPED:
        server.request_start(by=USER_ID, now=NOW)
        if state is not ServerState.STARTING:
            server.process_launched(
                pid=PID, process_started_at=PROCESS_STARTED_AT, java="/usr/bin/java", now=NOW
            )
            server.mark_running(detected_by="log", now=NOW)
            if state is ServerState.STOPPING:
                server.request_stop(by=USER_ID, kill=False, now=NOW)
            elif state is ServerState.CRASHED:
                server.process_exited(exit_code=1, reason="boom", will_restart=False, now=NOW)
    assert server.state is state
    server.collect_events()
    return server


def crash(server: Server, *, now: datetime = LATER) -> bool:
    """What the exit handler does: decide on a restart from the policy, then record the exit."""
    will_restart = server.should_restart_after_crash()
    server.process_exited(exit_code=137, reason="killed", will_restart=will_restart, now=now)
    return will_restart


def assert_invalid(exc: pytest.ExceptionInfo[InvalidInput], field: str) -> None:
    assert type(exc.value) is InvalidInput
    assert exc.value.extra["field"] == field
    assert exc.value.status == 422


# --- creation ------------------------------------------------------------------------------


class TestCreate:
    def test_new_server_is_stopped_and_records_server_created(self) -> None:
        server = create()

        assert server.id == SERVER_ID
        assert server.state is ServerState.STOPPED
        assert server.created_at == NOW
        assert server.state_changed_at is None
        assert server.pid is None
        assert server.players == ()
        assert server.restart_count == 0
        assert server.restart_required is False
        assert server.is_active is False
        assert server.changed is True
        assert server.collect_events() == [
            ServerCreated(
                occurred_at=NOW,
                server_id=SERVER_ID,
                name="survival",
                owner_id=OWNER_ID,
                node=NODE,
                port=25565,
                server_type="vanilla",
                version="1.21",
                memory_mb=2048,
            )
        ]
        assert server.pending_events == []

    @pytest.mark.parametrize(
        "name",
        ["abc", "a" * 50, "My_Server-01", "___", "---", "123"],
        ids=["3-chars", "50-chars", "mixed", "underscores", "dashes", "digits"],
    )
    def test_accepts_valid_names(self, name: str) -> None:
        assert create(name=name).name == name

    @pytest.mark.parametrize(
        "name",
        [
            "",
            "ab",
            "a" * 51,
            "my server",
            " abc",
            "abc ",
            "abc\n",
            "sérveur",
            "сервер",
            "サーバー",
            "\uff11\uff12\uff13",
            "abc😀",
            "x'; DROP TABLE servers;--",
            "abc'",
            'abc"',
            "abc;",
            "abc%",
            "a*b",
            "../etc",
            "my.server",
            "a\x00bc",
        ],
        ids=[
            "empty",
            "too-short-2",
            "too-long-51",
            "inner-space",
            "leading-space",
            "trailing-space",
            "trailing-newline",
            "latin-accent",
            "cyrillic",
            "japanese",
            "fullwidth-digits",
            "emoji",
            "sql-injection",
            "sql-single-quote",
            "sql-double-quote",
            "sql-semicolon",
            "sql-like-percent",
            "asterisk",
            "path-traversal",
            "dot",
            "nul",
        ],
    )
    def test_refuses_bad_names(self, name: str) -> None:
        with pytest.raises(InvalidInput) as exc:
            create(name=name)
        assert_invalid(exc, "name")

    @pytest.mark.parametrize(
        "description", [None, "", "x" * 500], ids=["none", "empty", "500-chars"]
    )
    def test_accepts_descriptions_up_to_500_chars(self, description: str | None) -> None:
        assert create(description=description).description == description

    def test_refuses_description_over_500_chars(self) -> None:
        with pytest.raises(InvalidInput) as exc:
            create(description="x" * 501)
        assert_invalid(exc, "description")

    @pytest.mark.parametrize("port", [1024, 25565, 65535], ids=["min-1024", "default", "max"])
    def test_accepts_ports_in_range(self, port: int) -> None:
        assert create(port=port).port == port

    @pytest.mark.parametrize(
        "port",
        [1023, 65536, 0, -1, 80, 100_000],
        ids=["1023-below-min", "65536-above-max", "zero", "negative", "privileged-80", "huge"],
    )
    def test_refuses_ports_out_of_range(self, port: int) -> None:
        with pytest.raises(InvalidInput) as exc:
            create(port=port)
        assert_invalid(exc, "port")


# --- configuration value objects -----------------------------------------------------------


class TestServerConfig:
    def test_defaults(self) -> None:
        config = make_config()

        assert config.max_players == 20
        assert config.motd == "A Minecraft Server"
        assert config.online_mode is True
        assert config.whitelist is False
        assert config.jar_sha256 is None
        assert config.restart == RestartPolicy()

    @pytest.mark.parametrize(
        "version",
        ["1.21", "1.20.4", "1.8.9", "26.1", "1.21.10"],
        ids=["major-minor", "patch", "old", "new-scheme", "two-digit-patch"],
    )
    def test_accepts_release_versions(self, version: str) -> None:
        assert make_config(version=version).version == version

    @pytest.mark.parametrize(
        "version",
        [
            "1",
            "1.21-pre1",
            "1.21.4.1",
            "",
            "v1.21",
            "1.21 ",
            " 1.21",
            "1..21",
            "1.21.",
            ".21",
            "24w14a",
            "1.21\n",
            "1.21/../../x",
        ],
        ids=[
            "major-only",
            "pre-release",
            "four-parts",
            "empty",
            "v-prefix",
            "trailing-space",
            "leading-space",
            "double-dot",
            "trailing-dot",
            "no-major",
            "snapshot",
            "trailing-newline",
            "path-traversal",
        ],
    )
    def test_refuses_bad_versions(self, version: str) -> None:
        with pytest.raises(InvalidInput) as exc:
            make_config(version=version)
        assert_invalid(exc, "version")

    @pytest.mark.parametrize(
        "version",
        ["\u0661.\u0662\u0661", "\uff11.\uff12\uff11"],
        ids=["arabic-indic-digits", "fullwidth-digits"],
    )
    def test_refuses_non_ascii_digit_versions(self, version: str) -> None:
        with pytest.raises(InvalidInput) as exc:
            make_config(version=version)
        assert_invalid(exc, "version")

    @pytest.mark.parametrize("memory_mb", [512, 4096, 32768], ids=["min-512", "mid", "max-32768"])
    def test_accepts_memory_in_bounds_inclusive(self, memory_mb: int) -> None:
        assert make_config(memory_mb=memory_mb).memory_mb == memory_mb

    @pytest.mark.parametrize(
        "memory_mb", [511, 32769, 0, -1024], ids=["511", "32769", "zero", "negative"]
    )
    def test_refuses_memory_out_of_bounds(self, memory_mb: int) -> None:
        with pytest.raises(InvalidInput) as exc:
            make_config(memory_mb=memory_mb)
        assert_invalid(exc, "memory_mb")

    @pytest.mark.parametrize("max_players", [1, 10000], ids=["min-1", "max-10000"])
    def test_accepts_max_players_in_bounds(self, max_players: int) -> None:
        assert make_config(max_players=max_players).max_players == max_players

    @pytest.mark.parametrize("max_players", [0, 10001, -5], ids=["zero", "10001", "negative"])
    def test_refuses_max_players_out_of_bounds(self, max_players: int) -> None:
        with pytest.raises(InvalidInput) as exc:
            make_config(max_players=max_players)
        assert_invalid(exc, "max_players")

    @pytest.mark.parametrize(
        "motd",
        ["", "x" * 150, "§a Hello ✓", "Key=value: #1 !", "  padded  "],
        ids=["empty", "150-chars", "formatting-and-unicode", "properties-metachars", "spaces"],
    )
    def test_accepts_one_line_motds_up_to_150_chars(self, motd: str) -> None:
        assert make_config(motd=motd).motd == motd

    @pytest.mark.parametrize(
        "motd",
        [
            "x" * 151,
            "line one\nline two",
            "line one\rline two",
            "tab\there",
            "nul\x00",
            "\x1b[31mred",
            "bell\x07",
            "unit\x1fsep",
        ],
        ids=[
            "151-chars",
            "newline",
            "carriage-return",
            "tab",
            "nul",
            "escape",
            "bell",
            "unit-separator",
        ],
    )
    def test_refuses_long_or_multiline_motds(self, motd: str) -> None:
        with pytest.raises(InvalidInput) as exc:
            make_config(motd=motd)
        assert_invalid(exc, "motd")

    @pytest.mark.parametrize(
        "motd",
        [
            "del\x7f",
            "Hi\x85enable-rcon true",
            "Hi\u2028enable-rcon true",
            "Hi\u2029online-mode false",
        ],
        ids=["del-0x7f", "nel-0x85", "line-separator-u2028", "paragraph-separator-u2029"],
    )
    def test_refuses_other_control_and_line_break_characters_in_motd(self, motd: str) -> None:
        with pytest.raises(InvalidInput) as exc:
            make_config(motd=motd)
        assert_invalid(exc, "motd")

    def test_is_an_immutable_value(self) -> None:
        assert make_config() == make_config()
        assert make_config(memory_mb=1024) != make_config(memory_mb=2048)
        with pytest.raises(AttributeError):
            make_config().memory_mb = 1024  # type: ignore[misc]


class TestRestartPolicy:
    def test_defaults_to_off(self) -> None:
        policy = RestartPolicy()

        assert policy.mode is RestartMode.OFF
        assert policy.max_restarts == 3
        assert policy.backoff_seconds == 10.0

    @pytest.mark.parametrize(
        ("max_restarts", "backoff_seconds"),
        [(0, 0), (100, 3600), (5, 0.5)],
        ids=["both-min", "both-max", "fractional-backoff"],
    )
    def test_accepts_bounds_inclusive(self, max_restarts: int, backoff_seconds: float) -> None:
        policy = RestartPolicy(
            mode=RestartMode.ON_FAILURE, max_restarts=max_restarts, backoff_seconds=backoff_seconds
        )
        assert (policy.max_restarts, policy.backoff_seconds) == (max_restarts, backoff_seconds)

    @pytest.mark.parametrize("max_restarts", [-1, 101], ids=["negative", "101"])
    def test_refuses_max_restarts_out_of_bounds(self, max_restarts: int) -> None:
        with pytest.raises(InvalidInput) as exc:
            RestartPolicy(max_restarts=max_restarts)
        assert_invalid(exc, "max_restarts")

    @pytest.mark.parametrize(
        "backoff_seconds",
        [-0.1, 3600.5, float("nan"), float("inf")],
        ids=["negative", "over-3600", "nan", "infinity"],
    )
    def test_refuses_backoff_out_of_bounds(self, backoff_seconds: float) -> None:
        with pytest.raises(InvalidInput) as exc:
            RestartPolicy(backoff_seconds=backoff_seconds)
        assert_invalid(exc, "backoff_seconds")


# --- starting ------------------------------------------------------------------------------


class TestRequestStart:
    def test_from_stopped_enters_starting(self) -> None:
        server = make_server()

        server.request_start(by=USER_ID, now=LATER)

        assert server.state is ServerState.STARTING
        assert server.is_active is True
        assert server.state_changed_at == LATER
        assert server.status_message == "start requested"
        assert server.collect_events() == [
            ServerStartRequested(
                occurred_at=LATER, server_id=SERVER_ID, node=NODE, requested_by=USER_ID
            )
        ]

    def test_from_crashed_is_allowed(self) -> None:
        server = make_server(ServerState.CRASHED)

        server.request_start(by=USER_ID, now=LATER)

        assert server.state is ServerState.STARTING
        assert [type(e) for e in server.collect_events()] == [ServerStartRequested]

    def test_requires_the_eula(self) -> None:
        server = make_server(eula_accepted=False)

        with pytest.raises(Conflict) as exc:
            server.request_start(by=USER_ID, now=LATER)

        assert not isinstance(exc.value, InvalidTransition)
        assert exc.value.extra == {"reason": "eula-not-accepted"}
        assert exc.value.status == 409
        assert "EULA" in exc.value.detail
        assert server.state is ServerState.STOPPED
        assert server.state_changed_at is None
        assert server.pending_events == []

    @pytest.mark.parametrize(
        "state",
        [ServerState.STARTING, ServerState.RUNNING, ServerState.STOPPING],
        ids=["starting", "running", "stopping"],
    )
    def test_refused_while_active(self, state: ServerState) -> None:
        server = make_server(state)

        with pytest.raises(InvalidTransition) as exc:
            server.request_start(by=USER_ID, now=LATER)

        assert exc.value.slug == "invalid-state"
        assert exc.value.status == 409
        assert server.state is state
        assert server.pending_events == []

    def test_clears_restart_required(self) -> None:
        server = make_server(ServerState.RUNNING)
        server.update(now=NOW, port=25570)
        assert server.restart_required is True
        server.request_stop(by=USER_ID, kill=False, now=NOW)
        server.process_exited(exit_code=0, reason="stopped", will_restart=False, now=NOW)

        server.request_start(by=USER_ID, now=LATER)

        assert server.restart_required is False


class TestLaunchAndReady:
    def test_process_launched_records_the_process_identity(self) -> None:
        server = make_server(ServerState.STARTING)

        server.process_launched(
            pid=PID, process_started_at=PROCESS_STARTED_AT, java="/opt/java21/bin/java", now=LATER
        )

        assert server.state is ServerState.STARTING
        assert server.pid == PID
        assert server.process_started_at == PROCESS_STARTED_AT
        assert server.status_message == "starting"
        assert server.collect_events() == [
            ServerStarting(
                occurred_at=LATER,
                server_id=SERVER_ID,
                pid=PID,
                process_started_at=PROCESS_STARTED_AT,
                java="/opt/java21/bin/java",
            )
        ]

    @pytest.mark.parametrize(
        "state",
        [ServerState.STOPPED, ServerState.RUNNING, ServerState.STOPPING, ServerState.CRASHED],
        ids=["stopped", "running", "stopping", "crashed"],
    )
    def test_process_launched_only_while_starting(self, state: ServerState) -> None:
        server = make_server(state)

        with pytest.raises(InvalidTransition):
            server.process_launched(pid=1, process_started_at=1.0, java="java", now=LATER)

        assert server.state is state
        assert server.pending_events == []

    def test_mark_running(self) -> None:
        server = make_server(ServerState.STARTING)
        server.process_launched(pid=PID, process_started_at=1.0, java="java", now=NOW)
        server.collect_events()

        server.mark_running(detected_by="log", now=LATER)

        assert server.state is ServerState.RUNNING
        assert server.started_at == LATER
        assert server.state_changed_at == LATER
        assert server.status_message is None
        assert server.pid == PID
        assert server.collect_events() == [
            ServerStarted(occurred_at=LATER, server_id=SERVER_ID, pid=PID, detected_by="log")
        ]

    @pytest.mark.parametrize(
        "state",
        [ServerState.STOPPED, ServerState.RUNNING, ServerState.STOPPING, ServerState.CRASHED],
        ids=["stopped", "running", "stopping", "crashed"],
    )
    def test_mark_running_only_while_starting(self, state: ServerState) -> None:
        server = make_server(state)

        with pytest.raises(InvalidTransition):
            server.mark_running(detected_by="ping", now=LATER)

        assert server.state is state
        assert server.pending_events == []

    def test_start_failed_returns_to_stopped_and_clears_the_process(self) -> None:
        server = make_server(ServerState.STARTING)
        server.process_launched(pid=PID, process_started_at=1.0, java="java", now=NOW)
        server.collect_events()

        server.start_failed(reason="java not found", now=LATER)

        assert server.state is ServerState.STOPPED
        assert server.is_active is False
        assert server.status_message == "start failed: java not found"
        assert server.state_changed_at == LATER
        assert server.pid is None
        assert server.process_started_at is None
        assert server.started_at is None
        assert server.collect_events() == [
            ServerStartFailed(occurred_at=LATER, server_id=SERVER_ID, reason="java not found")
        ]

    @pytest.mark.parametrize(
        "state",
        [ServerState.STOPPED, ServerState.RUNNING, ServerState.STOPPING],
        ids=["stopped", "running", "stopping"],
    )
    def test_start_failed_only_while_starting(self, state: ServerState) -> None:
        server = make_server(state)

        with pytest.raises(InvalidTransition):
            server.start_failed(reason="x", now=LATER)

        assert server.state is state


# --- stopping and exits --------------------------------------------------------------------


class TestRequestStop:
    @pytest.mark.parametrize(
        ("state", "kill", "message"),
        [
            (ServerState.STARTING, False, "stop requested"),
            (ServerState.RUNNING, False, "stop requested"),
            (ServerState.RUNNING, True, "kill requested"),
            (ServerState.STOPPING, True, "kill requested"),
        ],
        ids=["starting-stop", "running-stop", "running-kill", "stopping-kill"],
    )
    def test_enters_stopping(self, state: ServerState, kill: bool, message: str) -> None:
        server = make_server(state)

        server.request_stop(by=USER_ID, kill=kill, now=LATER)

        assert server.state is ServerState.STOPPING
        assert server.status_message == message
        assert server.state_changed_at == LATER
        assert server.collect_events() == [
            ServerStopRequested(
                occurred_at=LATER, server_id=SERVER_ID, node=NODE, requested_by=USER_ID, kill=kill
            )
        ]

    def test_automatic_stop_has_no_requester(self) -> None:
        server = make_server(ServerState.RUNNING)

        server.request_stop(by=None, kill=False, now=LATER)

        (event,) = server.collect_events()
        assert isinstance(event, ServerStopRequested)
        assert event.requested_by is None

    @pytest.mark.parametrize(
        ("state", "kill"),
        [
            (ServerState.STOPPED, False),
            (ServerState.STOPPED, True),
            (ServerState.CRASHED, False),
            (ServerState.CRASHED, True),
            (ServerState.STOPPING, False),
        ],
        ids=["stopped-stop", "stopped-kill", "crashed-stop", "crashed-kill", "stopping-stop-again"],
    )
    def test_refused(self, state: ServerState, kill: bool) -> None:
        server = make_server(state)
        before = server.status_message

        with pytest.raises(InvalidTransition):
            server.request_stop(by=USER_ID, kill=kill, now=LATER)

        assert server.state is state
        assert server.status_message == before
        assert server.pending_events == []


class TestProcessExited:
    def test_while_stopping_is_a_clean_stop(self) -> None:
        server = make_server(ServerState.STOPPING)
        server.players_changed(("Alice",), now=NOW)
        server.collect_events()

        server.process_exited(exit_code=0, reason="exited", will_restart=True, now=LATER)

        assert server.state is ServerState.STOPPED
        assert server.status_message is None
        assert server.state_changed_at == LATER
        assert server.pid is None
        assert server.process_started_at is None
        assert server.started_at is None
        assert server.players == ()
        assert server.restart_count == 0
        assert server.collect_events() == [
            ServerStopped(occurred_at=LATER, server_id=SERVER_ID, exit_code=0)
        ]

    @pytest.mark.parametrize(
        ("will_restart", "expected_count"), [(False, 0), (True, 1)], ids=["no-restart", "restart"]
    )
    def test_while_running_is_a_crash(self, will_restart: bool, expected_count: int) -> None:
        server = make_server(ServerState.RUNNING)

        server.process_exited(
            exit_code=137, reason="out of memory", will_restart=will_restart, now=LATER
        )

        assert server.state is ServerState.CRASHED
        assert server.is_active is False
        assert server.status_message == "out of memory"
        assert server.pid is None
        assert server.started_at is None
        assert server.restart_count == expected_count
        assert server.collect_events() == [
            ServerCrashed(
                occurred_at=LATER,
                server_id=SERVER_ID,
                exit_code=137,
                reason="out of memory",
                will_restart=will_restart,
            )
        ]

    def test_while_starting_is_a_crash(self) -> None:
        server = make_server(ServerState.STARTING)

        server.process_exited(exit_code=None, reason="vanished", will_restart=False, now=LATER)

        assert server.state is ServerState.CRASHED
        assert [type(e) for e in server.collect_events()] == [ServerCrashed]

    @pytest.mark.parametrize(
        "state", [ServerState.STOPPED, ServerState.CRASHED], ids=["stopped", "crashed"]
    )
    def test_refused_when_no_process_runs(self, state: ServerState) -> None:
        server = make_server(state)

        with pytest.raises(InvalidTransition):
            server.process_exited(exit_code=0, reason="x", will_restart=False, now=LATER)

        assert server.state is state
        assert server.pending_events == []


class TestRestartAfterCrash:
    def test_off_never_restarts(self) -> None:
        server = make_server(ServerState.RUNNING)

        assert server.should_restart_after_crash() is False
        assert crash(server) is False
        assert server.restart_count == 0

    def test_on_failure_restarts_at_most_max_restarts_times(self) -> None:
        policy = RestartPolicy(mode=RestartMode.ON_FAILURE, max_restarts=3)
        server = make_server(ServerState.RUNNING, config=make_config(restart=policy))

        decisions = [crash(server)]
        while decisions[-1] and len(decisions) < 10:
            server.request_start(by=None, now=LATER)  # the automatic restart
            decisions.append(crash(server))

        assert decisions == [True, True, True, False]
        assert server.restart_count == 3
        assert server.state is ServerState.CRASHED

    def test_on_failure_with_zero_max_restarts_never_restarts(self) -> None:
        policy = RestartPolicy(mode=RestartMode.ON_FAILURE, max_restarts=0)
        server = make_server(ServerState.RUNNING, config=make_config(restart=policy))

        assert server.should_restart_after_crash() is False

    def test_automatic_start_keeps_the_restart_count(self) -> None:
        policy = RestartPolicy(mode=RestartMode.ON_FAILURE, max_restarts=3)
        server = make_server(ServerState.RUNNING, config=make_config(restart=policy))
        assert crash(server) is True

        server.request_start(by=None, now=LATER)

        assert server.restart_count == 1
        event = server.collect_events()[-1]
        assert isinstance(event, ServerStartRequested)
        assert event.requested_by is None

    def test_start_by_a_user_resets_the_restart_count(self) -> None:
        policy = RestartPolicy(mode=RestartMode.ON_FAILURE, max_restarts=1)
        server = make_server(ServerState.RUNNING, config=make_config(restart=policy))
        assert crash(server) is True
        server.request_start(by=None, now=LATER)
        server.process_launched(pid=PID, process_started_at=1.0, java="java", now=LATER)
        server.mark_running(detected_by="log", now=LATER)
        assert crash(server) is False
        assert server.should_restart_after_crash() is False

        server.request_start(by=USER_ID, now=LATER)

        assert server.restart_count == 0
        assert server.should_restart_after_crash() is True


# --- deletion and players ------------------------------------------------------------------


class TestDelete:
    @pytest.mark.parametrize(
        "state", [ServerState.STOPPED, ServerState.CRASHED], ids=["stopped", "crashed"]
    )
    def test_records_server_deleted(self, state: ServerState) -> None:
        server = make_server(state)

        server.delete(now=LATER)

        assert server.collect_events() == [
            ServerDeleted(occurred_at=LATER, server_id=SERVER_ID, node=NODE)
        ]

    @pytest.mark.parametrize(
        "state",
        [ServerState.STARTING, ServerState.RUNNING, ServerState.STOPPING],
        ids=["starting", "running", "stopping"],
    )
    def test_refused_while_active(self, state: ServerState) -> None:
        server = make_server(state)

        with pytest.raises(InvalidTransition) as exc:
            server.delete(now=LATER)

        assert "stop it first" in exc.value.detail
        assert server.state is state
        assert server.pending_events == []


class TestPlayersChanged:
    def test_records_a_change(self) -> None:
        server = make_server(ServerState.RUNNING)

        server.players_changed(("Alice", "Bob"), now=LATER)

        assert server.players == ("Alice", "Bob")
        assert server.collect_events() == [
            ServerPlayersChanged(occurred_at=LATER, server_id=SERVER_ID, players=("Alice", "Bob"))
        ]

    def test_same_players_record_nothing(self) -> None:
        server = make_server(ServerState.RUNNING)
        server.players_changed(("Alice",), now=NOW)
        server.collect_events()

        server.players_changed(("Alice",), now=LATER)

        assert server.pending_events == []
        assert server.players == ("Alice",)

    def test_empty_on_a_new_server_records_nothing(self) -> None:
        server = make_server(ServerState.RUNNING)

        server.players_changed((), now=LATER)

        assert server.pending_events == []

    def test_everyone_leaving_is_a_change(self) -> None:
        server = make_server(ServerState.RUNNING)
        server.players_changed(("Alice",), now=NOW)
        server.collect_events()

        server.players_changed((), now=LATER)

        assert server.players == ()
        assert server.collect_events() == [
            ServerPlayersChanged(occurred_at=LATER, server_id=SERVER_ID, players=())
        ]


# --- update --------------------------------------------------------------------------------


def updated_event(server: Server) -> ServerConfigurationUpdated:
    (event,) = server.collect_events()
    assert isinstance(event, ServerConfigurationUpdated)
    assert event.occurred_at == LATER
    assert event.server_id == SERVER_ID
    return event


class TestUpdate:
    def test_description_on_a_stopped_server(self) -> None:
        server = make_server()

        changed = server.update(now=LATER, description="New text")

        assert changed == ["description"]
        assert server.description == "New text"
        assert server.restart_required is False
        assert updated_event(server) == ServerConfigurationUpdated(
            occurred_at=LATER,
            server_id=SERVER_ID,
            changed_fields=("description",),
            restart_required=False,
        )

    def test_description_alone_on_a_running_server_needs_no_restart(self) -> None:
        server = make_server(ServerState.RUNNING)

        server.update(now=LATER, description="New text")

        assert server.restart_required is False
        assert updated_event(server).restart_required is False

    def test_port_on_a_stopped_server_needs_no_restart(self) -> None:
        server = make_server()

        assert server.update(now=LATER, port=25570) == ["port"]

        assert server.port == 25570
        assert server.restart_required is False
        assert updated_event(server).changed_fields == ("port",)

    @pytest.mark.parametrize(
        "state",
        [ServerState.STARTING, ServerState.RUNNING, ServerState.STOPPING],
        ids=["starting", "running", "stopping"],
    )
    def test_port_on_an_active_server_requires_a_restart(self, state: ServerState) -> None:
        server = make_server(state)

        server.update(now=LATER, port=25570)

        assert server.restart_required is True
        assert updated_event(server).restart_required is True

    @pytest.mark.parametrize(
        ("overrides", "fields"),
        [
            ({"memory_mb": 4096}, ("memory_mb",)),
            ({"version": "1.20.4"}, ("version",)),
            ({"server_type": ServerType.PAPER}, ("server_type",)),
            ({"max_players": 50}, ("max_players",)),
            ({"motd": "Hello"}, ("motd",)),
            ({"online_mode": False}, ("online_mode",)),
            ({"whitelist": True}, ("whitelist",)),
            ({"jar_sha256": "ab" * 32}, ("jar_sha256",)),
            ({"memory_mb": 4096, "motd": "Hi"}, ("memory_mb", "motd")),
        ],
        ids=[
            "memory",
            "version",
            "server-type",
            "max-players",
            "motd",
            "online-mode",
            "whitelist",
            "jar",
            "memory-and-motd",
        ],
    )
    def test_config_changes_on_a_running_server_require_a_restart(
        self, overrides: dict[str, Any], fields: tuple[str, ...]
    ) -> None:
        server = make_server(ServerState.RUNNING)
        new_config = make_config(**overrides)

        changed = server.update(now=LATER, config=new_config)

        assert tuple(changed) == fields
        assert server.config == new_config
        assert server.restart_required is True
        assert updated_event(server) == ServerConfigurationUpdated(
            occurred_at=LATER, server_id=SERVER_ID, changed_fields=fields, restart_required=True
        )

    def test_config_change_on_a_stopped_server_needs_no_restart(self) -> None:
        server = make_server()

        server.update(now=LATER, config=make_config(memory_mb=4096))

        assert server.restart_required is False
        assert updated_event(server).changed_fields == ("memory_mb",)

    def test_restart_policy_alone_needs_no_restart(self) -> None:
        server = make_server(ServerState.RUNNING)
        policy = RestartPolicy(mode=RestartMode.ON_FAILURE)

        changed = server.update(now=LATER, config=make_config(restart=policy))

        assert changed == ["restart"]
        assert server.config.restart == policy
        assert server.restart_required is False

    def test_all_kinds_of_change_in_order(self) -> None:
        server = make_server()

        changed = server.update(
            now=LATER,
            description="d",
            port=25570,
            eula_accepted=False,
            config=make_config(memory_mb=1024),
        )

        assert changed == ["description", "port", "eula_accepted", "memory_mb"]
        assert server.eula_accepted is False
        assert updated_event(server).changed_fields == (
            "description",
            "port",
            "eula_accepted",
            "memory_mb",
        )

    def test_accepting_the_eula(self) -> None:
        server = make_server(eula_accepted=False)

        assert server.update(now=LATER, eula_accepted=True) == ["eula_accepted"]

        assert server.eula_accepted is True
        server.collect_events()
        server.request_start(by=USER_ID, now=LATER)
        assert server.state is ServerState.STARTING

    @pytest.mark.parametrize(
        "state",
        [ServerState.STARTING, ServerState.RUNNING, ServerState.STOPPING],
        ids=["starting", "running", "stopping"],
    )
    def test_withdrawing_the_eula_while_active_is_a_conflict(self, state: ServerState) -> None:
        server = make_server(state)

        with pytest.raises(Conflict) as exc:
            server.update(now=LATER, eula_accepted=False)

        assert exc.value.status == 409
        assert server.eula_accepted is True
        assert server.pending_events == []

    def test_withdrawing_the_eula_while_stopped_blocks_the_next_start(self) -> None:
        server = make_server()

        assert server.update(now=LATER, eula_accepted=False) == ["eula_accepted"]
        server.collect_events()

        with pytest.raises(Conflict) as exc:
            server.request_start(by=USER_ID, now=LATER)
        assert exc.value.extra["reason"] == "eula-not-accepted"

    @pytest.mark.parametrize(
        "kwargs",
        [
            {},
            {"description": "A friendly world"},
            {"port": 25565},
            {"eula_accepted": True},
            {"config": make_config()},
            {
                "description": "A friendly world",
                "port": 25565,
                "eula_accepted": True,
                "config": make_config(),
            },
        ],
        ids=["nothing", "same-description", "same-port", "same-eula", "equal-config", "all-same"],
    )
    def test_no_op_updates_record_nothing(self, kwargs: dict[str, Any]) -> None:
        server = make_server(ServerState.RUNNING)
        server.changed = False

        assert server.update(now=LATER, **kwargs) == []

        assert server.pending_events == []
        assert server.changed is False
        assert server.restart_required is False

    def test_restart_required_sticks_until_the_next_start(self) -> None:
        server = make_server(ServerState.RUNNING)
        server.update(now=LATER, port=25570)
        server.collect_events()

        server.update(now=LATER, description="only text")

        assert server.restart_required is True
        assert updated_event(server).restart_required is True

    @pytest.mark.parametrize("port", [1023, 65536], ids=["1023", "65536"])
    def test_refuses_bad_port(self, port: int) -> None:
        server = make_server()

        with pytest.raises(InvalidInput) as exc:
            server.update(now=LATER, port=port)

        assert_invalid(exc, "port")
        assert server.port == 25565
        assert server.pending_events == []

    def test_refuses_long_description(self) -> None:
        server = make_server()

        with pytest.raises(InvalidInput) as exc:
            server.update(now=LATER, description="x" * 501)

        assert_invalid(exc, "description")
        assert server.description == "A friendly world"
        assert server.pending_events == []
