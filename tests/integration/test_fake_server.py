"""The fake Minecraft server (tests/fake_server) behaves like a vanilla one.

Runs the built jar the way the dashboard does (``java -Xmx512M -Xms512M -jar server.jar
nogui`` in the server directory) and talks to it over stdin/stdout and the Server List Ping.
Needs only a JDK: no database, no Redis.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mcstatus import JavaServer

from app.servers.domain.model import ServerConfig, ServerType
from app.servers.domain.properties import (
    managed_properties,
    merge_properties,
    parse_properties,
)
from tests.fake_server.build import build_fake_jar, verify_world, world_generation

ALICE_UUID = "10920508-d5d8-3eed-93d2-92f193afe7d7"
LINE = re.compile(r"^\[\d\d:\d\d:\d\d\] \[(?P<thread>[^\]/]+)/(?P<level>[A-Z]+)\]: (?P<msg>.*)$")
DONE = r'Done \([0-9.]+s\)! For help, type "help"'

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="needs a JDK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeMC:
    """One fake server process with its console output collected by a reader thread."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.directory = directory
        self.port: int | None = None
        self.proc = subprocess.Popen(
            ["java", "-Xmx512M", "-Xms512M", "-jar", "server.jar", "nogui"],
            cwd=directory,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self.lines: list[str] = []
        self._pos = 0
        self._cond = threading.Condition()
        self._closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def expect(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """The next output line (after the previous match) that matches pattern."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                while self._pos < len(self.lines):
                    line = self.lines[self._pos]
                    self._pos += 1
                    found = regex.search(line)
                    if found:
                        return found
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    tail = "\n".join(self.lines[-30:])
                    raise AssertionError(f"no line matching {pattern!r}; output:\n{tail}")
                self._cond.wait(remaining)

    def command(self, command: str, reply: str, timeout: float = 10.0) -> str:
        """Send a command and return the message of the next line containing reply."""
        self.send(command)
        found = self.expect(re.escape(reply), timeout)
        parsed = LINE.match(found.string)
        assert parsed, found.string
        return parsed["msg"]

    def messages_after_mark(self) -> list[str]:
        with self._cond:
            return [m["msg"] for m in map(LINE.match, self.lines[self._pos :]) if m]

    def wait(self, timeout: float = 10.0) -> int:
        code = self.proc.wait(timeout)
        with self._cond:
            self._cond.wait_for(lambda: self._closed, timeout)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        with contextlib.suppress(OSError):
            if self.proc.stdin:
                self.proc.stdin.close()


Starter = Callable[..., FakeMC]


@pytest.fixture(scope="session")
def fake_jar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fake_jar(tmp_path_factory.mktemp("fake-jar"))


@pytest.fixture
def start(fake_jar: Path, tmp_path: Path) -> Iterator[Starter]:
    running: list[FakeMC] = []

    def _start(
        directory: Path | None = None,
        *,
        eula: bool | None = True,
        properties: dict[str, str] | None = None,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> FakeMC:
        directory = directory or tmp_path / "server"
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fake_jar, directory / "server.jar")
        if eula is not None:
            (directory / "eula.txt").write_text(f"eula={'true' if eula else 'false'}\n")
        chosen = None
        if properties is not None or port is not None:
            chosen = port or free_port()
            lines = [f"server-port={chosen}"] + [f"{k}={v}" for k, v in (properties or {}).items()]
            (directory / "server.properties").write_text("\n".join(lines) + "\n", "utf-8")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_MC_")}
        full_env |= {"FAKE_MC_STARTUP_MS": "100", **(env or {})}
        server = FakeMC(directory, full_env)
        server.port = chosen
        running.append(server)
        return server

    yield _start
    for server in running:
        server.kill()


def started(start: Starter, *args: object, **kwargs: object) -> FakeMC:
    server = start(*args, **kwargs)
    server.expect(DONE, timeout=15)
    return server


def status(port: int):
    return JavaServer("127.0.0.1", port, timeout=5).status()


# ---- startup -----------------------------------------------------------------------------


def test_without_eula_prints_the_eula_lines_writes_eula_txt_and_exits_0(start: Starter, tmp_path):
    server = start(eula=None)
    assert server.wait() == 0
    parsed = [LINE.match(line) for line in server.lines]
    assert all(parsed), server.lines
    entries = [(m["thread"], m["level"], m["msg"]) for m in parsed if m]
    assert entries[0] == ("Server thread", "INFO", "Starting minecraft server version 1.21")
    assert ("ServerMain", "WARN", "Failed to load eula.txt") in entries
    assert entries[-1][2] == (
        "You need to agree to the EULA in order to run the server. Go to eula.txt for more info."
    )
    directory = tmp_path / "server"
    assert re.search(r"(?m)^eula=false$", (directory / "eula.txt").read_text())
    properties = (directory / "server.properties").read_text()
    assert "server-port=25565" in properties
    assert "max-players=20" in properties
    assert not (directory / "world").exists()


def test_eula_false_is_refused_and_file_kept(start: Starter, tmp_path):
    server = start(eula=False, properties={})
    assert server.wait() == 0
    server.expect(r"You need to agree to the EULA")
    assert (tmp_path / "server" / "eula.txt").read_text() == "eula=false\n"


def test_startup_lines_list_and_latest_log(start: Starter, tmp_path):
    server = start(properties={"max-players": "7"}, env={"FAKE_MC_PRINT_ARGS": "1"})
    server.expect(
        r"^\[\d\d:\d\d:\d\d\] \[Server thread/INFO\]: Starting minecraft server version 1\.21$"
    )
    memory = int(server.expect(r"Max memory: (\d+) MiB")[1])
    assert 400 <= memory <= 512
    server.expect(rf"Starting Minecraft server on \*:{server.port}$")
    server.expect(r'Preparing level "world"')
    server.expect(DONE, timeout=15)
    directory = tmp_path / "server"
    assert world_generation(directory / "world") == 0
    assert verify_world(directory / "world") == 0

    assert server.command("list", "There are") == "There are 0 of a max of 7 players online: "
    server.send("fake:join Alice")
    server.expect("Alice joined the game")
    server.send("fake:join Bob")
    server.expect("Bob joined the game")
    assert (
        server.command("list", "There are")
        == "There are 2 of a max of 7 players online: Alice, Bob"
    )
    server.send("say hello world")
    server.expect(r"\[Server thread/INFO\]: \[Server\] hello world$")

    log = (directory / "logs" / "latest.log").read_text("utf-8").splitlines()
    assert log == server.lines[: len(log)]
    assert any(re.search(DONE, line) for line in log)


def test_unknown_command_say_lines_and_exit_code(start: Starter):
    server = started(start, properties={})
    server.send("frobnicate now")
    server.expect(r"\[Server thread/INFO\]: Unknown or incomplete command, see below for error$")
    server.expect(r"\[Server thread/INFO\]: frobnicate now<--\[HERE\]$")
    server.send("fake:say-lines 2000")
    server.expect(r": line 2000$")
    numbered = [line for line in server.lines if re.search(r": line \d+$", line)]
    assert len(numbered) == 2000
    server.send("fake:exit 3")
    assert server.wait() == 3


# ---- ops and whitelist -------------------------------------------------------------------


def test_op_and_deop_write_ops_json(start: Starter, tmp_path):
    directory = tmp_path / "server"
    directory.mkdir()
    (directory / "ops.json").write_text(
        json.dumps([{"uuid": "x", "name": "Bob", "level": 3, "bypassesPlayerLimit": True}])
    )
    server = started(start, properties={})
    ops = directory / "ops.json"

    assert (
        server.command("op Bob", "operator") == "Nothing changed. The player already is an operator"
    )
    assert server.command("op Alice", "operator") == "Made Alice a server operator"
    text = ops.read_text()
    assert '\n  {\n    "uuid": "x",\n    "name": "Bob",' in text
    assert json.loads(text)[1] == {
        "uuid": ALICE_UUID,
        "name": "Alice",
        "level": 4,
        "bypassesPlayerLimit": False,
    }
    assert json.loads(text)[0]["level"] == 3
    assert (
        server.command("op Alice", "operator")
        == "Nothing changed. The player already is an operator"
    )
    assert server.command("deop Alice", "operator") == "Made Alice no longer a server operator"
    assert (
        server.command("deop Alice", "operator") == "Nothing changed. The player is not an operator"
    )
    assert [entry["name"] for entry in json.loads(ops.read_text())] == ["Bob"]
    assert server.command("deop Bob", "operator") == "Made Bob no longer a server operator"
    assert json.loads(ops.read_text()) == []
    assert not list(directory.glob("*.tmp"))


def test_invalid_player_names_do_not_exist(start: Starter, tmp_path):
    server = started(start, properties={})
    for command in ("op Al", "op Alice-B", "deop ThisNameIsWayTooLong", "whitelist add bad!name"):
        assert server.command(command, "player") == "That player does not exist"
    assert json.loads((tmp_path / "server" / "ops.json").read_text()) == []
    assert json.loads((tmp_path / "server" / "whitelist.json").read_text()) == []


def test_whitelist_add_remove_list_and_reload(start: Starter, tmp_path):
    server = started(start, properties={})
    path = tmp_path / "server" / "whitelist.json"

    assert server.command("whitelist list", "whitelisted") == "There are no whitelisted players"
    assert server.command("whitelist add Alice", "whitelist") == "Added Alice to the whitelist"
    assert server.command("whitelist add Bob", "whitelist") == "Added Bob to the whitelist"
    assert server.command("whitelist add Alice", "whitelisted") == "Player is already whitelisted"
    assert (
        server.command("whitelist list", "whitelisted")
        == "There are 2 whitelisted player(s): Alice, Bob"
    )
    assert json.loads(path.read_text())[0] == {"uuid": ALICE_UUID, "name": "Alice"}
    assert server.command("whitelist remove Bob", "whitelist") == "Removed Bob from the whitelist"
    assert server.command("whitelist remove Bob", "whitelisted") == "Player is not whitelisted"

    path.write_text(json.dumps([{"uuid": "u-1", "name": "Carol"}, {"uuid": "u-2", "name": "Dave"}]))
    assert server.command("whitelist reload", "Reloaded") == "Reloaded the whitelist"
    assert (
        server.command("whitelist list", "whitelisted")
        == "There are 2 whitelisted player(s): Carol, Dave"
    )
    assert server.command("whitelist add Carol", "whitelisted") == "Player is already whitelisted"


def test_whitelist_on_enforces_and_keeps_other_properties(start: Starter, tmp_path):
    directory = tmp_path / "server"
    server = started(
        start, properties={"custom-key": "keep me", "motd": "Hi\\u00e9", "white-list": "false"}
    )
    props = directory / "server.properties"
    props.write_text("# my comment\n" + props.read_text())
    before = props.read_text().splitlines()

    assert server.command("whitelist on", "Whitelist") == "Whitelist is now turned on"
    after = props.read_text().splitlines()
    assert after == [line if line != "white-list=false" else "white-list=true" for line in before]
    assert server.command("whitelist on", "Whitelist") == "Whitelist is already turned on"

    server.send("whitelist add Alice")
    server.expect("Added Alice")
    server.send("fake:join Mallory")
    server.expect(
        r"Disconnecting Mallory \(/127\.0\.0\.1:\d+\): You are not white-listed on this server!$"
    )
    server.send("fake:join Alice")
    server.expect("Alice joined the game")
    assert server.command("whitelist off", "Whitelist") == "Whitelist is now turned off"
    assert "white-list=false" in props.read_text().splitlines()
    assert "custom-key=keep me" in props.read_text().splitlines()


# ---- players and the Server List Ping ----------------------------------------------------


def test_join_and_leave_lines(start: Starter):
    server = started(start, properties={})
    server.send("fake:join Alice")
    uuid_line = server.expect(r"\[(User Authenticator #\d+)/INFO\]: UUID of player Alice is (\S+)$")
    assert uuid_line[2] == ALICE_UUID
    server.expect(
        r"\[Server thread/INFO\]: Alice\[/127\.0\.0\.1:\d+\] logged in with entity id \d+ "
        r"at \(0\.5, 64\.0, 0\.5\)$"
    )
    server.expect(r"\[Server thread/INFO\]: Alice joined the game$")
    server.send("fake:leave Alice")
    server.expect(r"\[Server thread/INFO\]: Alice lost connection: Disconnected$")
    server.expect(r"\[Server thread/INFO\]: Alice left the game$")
    assert server.command("list", "There are").startswith("There are 0 of a max of 20")


def test_server_list_ping(start: Starter):
    motd = 'Fake "MOTD" \u00fc'
    server = started(
        start,
        properties={"max-players": "9", "motd": motd.replace("\u00fc", "\\u00fc")},
        env={"FAKE_MC_VERSION": "1.20.4"},
    )
    assert server.port
    empty = status(server.port)
    assert empty.players.online == 0
    assert empty.players.sample is None

    # clients that go away early, or speak the legacy ping, do not hurt the listener
    with socket.create_connection(("127.0.0.1", server.port)):
        pass
    with socket.create_connection(("127.0.0.1", server.port)) as legacy:
        legacy.sendall(b"\xfe\x01")
        legacy.settimeout(5)
        assert legacy.recv(10) == b""

    for name in ("Alice", "Bob"):
        server.send(f"fake:join {name}")
        server.expect(f"{name} joined the game")

    results = []

    def ask() -> None:
        results.append(status(server.port))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert len(results) == 4
    answer = results[0]
    assert answer.version.name == "1.20.4"
    assert answer.version.protocol == 767
    assert answer.players.max == 9
    assert answer.players.online == 2
    assert answer.players.sample
    assert {(p.name, p.id) for p in answer.players.sample} >= {("Alice", ALICE_UUID)}
    assert sorted(p.name for p in answer.players.sample) == ["Alice", "Bob"]
    assert answer.motd.to_plain() == motd
    assert answer.raw["description"] == {"text": motd}
    assert JavaServer("127.0.0.1", server.port, timeout=5).ping() >= 0


# ---- saving ------------------------------------------------------------------------------


def test_backup_save_sequence_is_recorded_and_bumps_the_generation(start: Starter, tmp_path):
    server = started(start, properties={})
    world = tmp_path / "server" / "world"
    assert world_generation(world) == 0

    t0 = time.time() * 1000
    assert server.command("save-off", "saving") == "Automatic saving is now disabled"
    assert server.command("save-off", "Saving") == "Saving is already turned off"
    server.send("save-all flush")
    server.expect(r"\[Server thread/INFO\]: Saving the game \(this may take a moment!\)$")
    server.expect(r"\[Server thread/INFO\]: Saved the game$")
    assert verify_world(world) == 1
    assert server.command("save-on", "saving") == "Automatic saving is now enabled"
    server.send("save-all")
    server.expect("Saved the game")
    assert verify_world(world) == 2

    entries = (tmp_path / "server" / ".fake" / "save-commands.log").read_text().splitlines()
    stamps = [int(entry.split(" ", 1)[0]) for entry in entries]
    assert [entry.split(" ", 1)[1] for entry in entries] == [
        "save-off",
        "save-off",
        "save-all flush",
        "save-on",
        "save-all",
    ]
    assert stamps == sorted(stamps)
    assert t0 - 1000 <= stamps[0] <= time.time() * 1000


def test_autosave_and_chunk_writer_stop_while_saving_is_off(start: Starter, tmp_path):
    server = started(
        start,
        properties={},
        env={
            "FAKE_MC_AUTOSAVE_MS": "150",
            "FAKE_MC_DIRTY_WRITE_MS": "20",
            "FAKE_MC_REGION_FILES": "3",
            "FAKE_MC_REGION_BYTES": "10000",
        },
    )
    world = tmp_path / "server" / "world"
    region = world / "region" / "r.0.0.mca"

    def snapshot() -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(world.rglob("*")) if p.is_file()}

    deadline = time.monotonic() + 5
    while world_generation(world) < 2 or b"dirty=" not in region.read_bytes():
        assert time.monotonic() < deadline, "autosave and chunk writer did not run"
        time.sleep(0.05)

    server.send("save-off")
    server.expect("Automatic saving is now disabled")
    frozen = snapshot()
    time.sleep(0.5)
    assert snapshot() == frozen

    server.send("save-all flush")
    server.expect("Saved the game")
    generation = verify_world(world, region_files=3, region_bytes=10000)
    time.sleep(0.3)
    assert verify_world(world, region_files=3, region_bytes=10000) == generation

    server.send("save-on")
    server.expect("Automatic saving is now enabled")
    deadline = time.monotonic() + 5
    while world_generation(world) == generation:
        assert time.monotonic() < deadline, "autosave did not resume"
        time.sleep(0.05)


# ---- failures and stopping ---------------------------------------------------------------


def test_port_in_use_fails_to_bind_and_exits_1(start: Starter):
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = start(port=port)
        assert server.wait() == 1
    server.expect(r"\[Server thread/WARN\]: \*\*\*\* FAILED TO BIND TO PORT!$")
    server.expect(
        r"\[Server thread/WARN\]: The exception was: java\.net\.BindException: Address already in use$"
    )
    server.expect(r"\[Server thread/WARN\]: Perhaps a server is already running on that port\?$")
    assert not any(re.search(DONE, line) for line in server.lines)


def test_crash_exits_1(start: Starter):
    server = started(start, properties={})
    server.send("fake:crash")
    assert server.wait() == 1
    server.expect(r"\[Server thread/ERROR\]: Encountered an unexpected exception$")
    server.expect(r"^java\.lang\.IllegalStateException: simulated crash$")


def test_stop_exits_0_and_a_restart_binds_the_same_port(start: Starter, tmp_path):
    server = started(start, properties={})
    assert server.port
    # the server closes after a Pong: its side of that connection stays in TIME_WAIT
    JavaServer("127.0.0.1", server.port, timeout=5).ping()
    server.send("fake:join Alice")
    server.expect("Alice joined the game")
    server.send("stop")
    assert server.wait() == 0
    for message in (
        "Stopping the server",
        "Stopping server",
        "Saving players",
        "Alice lost connection: Server closed",
        "Alice left the game",
        "Saving worlds",
    ):
        server.expect(rf"\[Server thread/INFO\]: {re.escape(message)}$")
    directory = tmp_path / "server"
    assert verify_world(directory / "world") == 1

    again = started(start, directory, port=server.port)
    assert status(server.port).players.online == 0
    assert list((directory / "logs").glob("*.log.gz"))
    again.send("stop")
    assert again.wait() == 0
    assert verify_world(directory / "world") == 2


def test_stop_with_saving_off_leaves_the_world_alone(start: Starter, tmp_path):
    server = started(start, properties={})
    server.send("save-off")
    server.expect("disabled")
    server.send("stop")
    assert server.wait() == 0
    assert verify_world(tmp_path / "server" / "world") == 0


def test_sigterm_runs_the_shutdown_hook_even_after_stdin_eof(start: Starter, tmp_path):
    server = started(start, properties={})
    assert server.proc.stdin is not None
    server.proc.stdin.close()
    time.sleep(0.2)
    assert server.proc.poll() is None
    assert server.port
    assert status(server.port).version.name == "1.21"
    server.proc.send_signal(signal.SIGTERM)
    assert server.wait() in (143, -signal.SIGTERM)
    server.expect(r"\[Server thread/INFO\]: Stopping server$")
    server.expect("Saving worlds")
    assert verify_world(tmp_path / "server" / "world") == 1


def test_ignore_stop_needs_sigkill(start: Starter):
    server = started(start, properties={})
    server.send("fake:ignore-stop")
    server.expect("ignored")
    server.send("stop")
    server.send("list")
    server.expect("There are 0 of a max")
    server.proc.send_signal(signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):
        server.proc.wait(1.0)
    assert not any("Stopping" in line for line in server.lines)
    server.proc.kill()
    assert server.wait() == -signal.SIGKILL


# ---- server.properties as Java reads it ---------------------------------------------------

HOSTILE_PROPERTIES = (
    "#Minecraft server properties\r\n"
    "server-port 1\r\n"
    "server\\-port:2\n"
    "\\u0073erver-port=3\n"
    "white-\\\n"
    "    list=false\n"
    "\t\f online-mode\ttrue\n"
    "max-players\f99\n"
    "mo\\\r\n"
    "  td = hostile\n"
    "motd=a\\\n"
    "#server-port=4\n"
    "\\\n"
    "#white-list=false\\\n"
    "white-list false\n"
    "rcon.password=\\u12zz\n"
    "level-name=world\\"
)


@pytest.mark.parametrize(
    "hostile",
    [HOSTILE_PROPERTIES, HOSTILE_PROPERTIES.replace("\r\n", "\n").replace("\n", "\r")],
    ids=["every-trick-mixed-line-endings", "every-trick-cr-only"],
)
def test_java_reads_the_dashboards_managed_keys_after_the_merge(
    start: Starter, tmp_path, hostile: str
):
    directory = tmp_path / "server"
    directory.mkdir()
    port = free_port()
    config = ServerConfig(
        server_type=ServerType.VANILLA,
        version="1.21",
        memory_mb=512,
        max_players=7,
        motd="dashboard = motd",
        online_mode=False,
        whitelist=True,
    )
    managed = managed_properties(config, port)
    merged = merge_properties(hostile, managed)
    (directory / "server.properties").write_text(merged, "utf-8", newline="")

    server = started(start, directory, env={"FAKE_MC_REPORT_PROPERTIES": "1"})

    read_by_java = json.loads((directory / ".fake" / "properties-read.json").read_text("utf-8"))
    assert {key: read_by_java.get(key) for key in managed} == managed
    assert read_by_java == parse_properties(merged)
    assert read_by_java["level-name"] == "world"
    assert "rcon.password" not in read_by_java
    assert any(line.endswith(f"Starting Minecraft server on *:{port}") for line in server.lines)
    assert status(port).players.max == 7
