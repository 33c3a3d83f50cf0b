"""Console rules: the command policy (by verb) and the parsing of server log lines."""

from __future__ import annotations

import pytest

from app.servers.domain.console import (
    COMMAND_MAX,
    LINE_MAX_BYTES,
    ConsoleLine,
    ConsolePolicy,
    cut_line,
)
from app.shared.domain import Forbidden, InvalidInput

# The default denied verbs of the settings, plus "op" and "del" to show that only whole verbs
# count: "deop Alice" and "say delete me" must still pass.
POLICY = ConsolePolicy.of(["reload", "restart", "shutdown", "end", "rl", "op", "del"])


class TestPolicyOf:
    def test_normalises_verbs(self) -> None:
        policy = ConsolePolicy.of(["  /Reload ", "OP", "", "   "])

        assert policy.denied_verbs == frozenset({"reload", "op"})

    def test_empty_policy_still_refuses_stop(self) -> None:
        with pytest.raises(Forbidden):
            ConsolePolicy.of([]).check("stop")


class TestDeniedVerbs:
    @pytest.mark.parametrize(
        "command",
        [
            "reload",
            "RELOAD",
            "Reload",
            "/reload",
            "/ReLoAd",
            "//reload",
            "  reload  ",
            "reload confirm",
            "op Alice",
            "OP Alice",
            "/op Alice",
            "rl",
            "end",
            "del x",
        ],
        ids=[
            "reload",
            "upper",
            "title",
            "slash",
            "slash-mixed-case",
            "double-slash",
            "padded",
            "with-argument",
            "op",
            "op-upper",
            "op-slash",
            "rl-alias",
            "end",
            "del",
        ],
    )
    def test_denied_verb_is_forbidden(self, command: str) -> None:
        with pytest.raises(Forbidden) as exc:
            POLICY.check(command)

        assert exc.value.status == 403
        verb = exc.value.extra["verb"]
        assert verb in POLICY.denied_verbs
        assert f"'{verb}'" in exc.value.detail

    @pytest.mark.parametrize(
        ("command", "sent"),
        [
            ("say reloading soon", "say reloading soon"),
            ("say reload", "say reload"),
            ("deop Alice", "deop Alice"),
            ("say delete me", "say delete me"),
            ("say see you at the weekend", "say see you at the weekend"),
            ("reloaded", "reloaded"),
            ("operator", "operator"),
            ("list", "list"),
            ("whitelist add Alice", "whitelist add Alice"),
            ("whitelist reload", "whitelist reload"),
            ('tellraw @a {"text":"reload"}', 'tellraw @a {"text":"reload"}'),
            ("save-all flush", "save-all flush"),
            ("say stop", "say stop"),
        ],
        ids=[
            "say-reloading",
            "say-reload",
            "deop",
            "say-delete",
            "say-weekend",
            "verb-prefix-reloaded",
            "verb-prefix-operator",
            "list",
            "whitelist-add",
            "whitelist-reload-argument",
            "tellraw-json",
            "save-all",
            "say-stop",
        ],
    )
    def test_only_the_verb_counts(self, command: str, sent: str) -> None:
        assert POLICY.check(command) == sent


class TestStop:
    @pytest.mark.parametrize(
        "command",
        ["stop", "STOP", "/stop", " stop ", "stop now", "/Stop please"],
        ids=["plain", "upper", "slash", "padded", "with-argument", "slash-title-argument"],
    )
    def test_stop_is_always_forbidden(self, command: str) -> None:
        with pytest.raises(Forbidden) as exc:
            ConsolePolicy.of([]).check(command)

        assert exc.value.extra == {"verb": "stop"}
        assert "/stop" in exc.value.detail
        assert "POST" in exc.value.detail

    @pytest.mark.parametrize(
        "command",
        [
            "execute run stop",
            "execute as @p run stop",
            "minecraft:stop",
            "/minecraft:stop",
            "execute run reload",
            "bukkit:reload",
        ],
        ids=[
            "execute-run-stop",
            "execute-as-run-stop",
            "namespaced-stop",
            "slash-namespaced-stop",
            "execute-run-reload",
            "namespaced-reload",
        ],
    )
    def test_stop_and_denied_verbs_cannot_be_reached_indirectly(self, command: str) -> None:
        with pytest.raises(Forbidden):
            POLICY.check(command)


class TestEveryRunStartsACommand:
    """`return run`, nested and namespaced `execute`: each verb after a `run` is checked."""

    @pytest.mark.parametrize(
        ("command", "verb"),
        [
            ("return run stop", "stop"),
            ("return run reload", "reload"),
            ("/return run stop", "stop"),
            ("minecraft:return run stop", "stop"),
            ("return run minecraft:stop", "stop"),
            ("return run /stop", "stop"),
            ("execute as @a run return run stop", "stop"),
            ("execute run execute run reload", "reload"),
            ("minecraft:execute as @a run minecraft:execute at @s run stop", "stop"),
            ("execute if entity @a run return run bukkit:reload", "reload"),
            ("RETURN RUN STOP", "stop"),
            ("return  run   rl", "rl"),
            ("function foo:bar with storage x run reload", "reload"),
            ("return run return run return run restart", "restart"),
        ],
        ids=[
            "return-run-stop",
            "return-run-reload",
            "slash-return-run-stop",
            "namespaced-return-run-stop",
            "return-run-namespaced-stop",
            "return-run-slash-stop",
            "execute-run-return-run-stop",
            "nested-execute-run-reload",
            "namespaced-nested-execute-run-stop",
            "execute-if-return-run-bukkit-reload",
            "upper-case-return-run-stop",
            "extra-spaces-return-run-rl",
            "unknown-verb-run-reload",
            "return-run-three-deep-restart",
        ],
    )
    def test_the_verb_after_any_run_is_refused(self, command: str, verb: str) -> None:
        with pytest.raises(Forbidden) as exc:
            POLICY.check(command)

        assert exc.value.extra["verb"] == verb

    @pytest.mark.parametrize(
        "command",
        ["return run say hi", "execute as @a run return 1", "return 0", "execute run list"],
        ids=["return-run-say", "execute-run-return-value", "return-value", "execute-run-list"],
    )
    def test_harmless_chains_pass(self, command: str) -> None:
        assert POLICY.check(command) == command


ALLOWING = ConsolePolicy.of(["reload"], allowed=["say", "/List", "Execute", "whitelist", "return"])


class TestAllowlist:
    def test_normalises_verbs(self) -> None:
        assert ALLOWING.allowed_verbs == frozenset(
            {"say", "list", "execute", "whitelist", "return"}
        )

    def test_unset_means_deny_list_mode(self) -> None:
        assert ConsolePolicy.of(["reload"]).allowed_verbs is None
        assert ConsolePolicy.of(["reload"]).check("time set day") == "time set day"

    @pytest.mark.parametrize(
        "command",
        [
            "say hi",
            "/list",
            "minecraft:say hi",
            "whitelist add Alice",
            "execute as @a run say hi",
            "return run execute run list",
        ],
        ids=[
            "say",
            "slash-list",
            "minecraft-namespace",
            "whitelist-add",
            "execute-run-say",
            "return-run-execute-run-list",
        ],
    )
    def test_allowed_verbs_pass(self, command: str) -> None:
        assert ALLOWING.check(command) == command.removeprefix("/")

    @pytest.mark.parametrize(
        ("command", "verb"),
        [
            ("op Mallory", "op"),
            ("time set day", "time"),
            ("execute as @a run op @s", "op"),
            ("return run gamemode creative", "gamemode"),
            ("say hi run op @s", "op"),
            ("evil:say hi", "evil:say"),
            ("execute run evil:list", "evil:list"),
        ],
        ids=[
            "op-not-allowed",
            "time-not-allowed",
            "execute-run-op",
            "return-run-gamemode",
            "run-inside-say-text-still-checked",
            "other-namespace-say",
            "execute-run-other-namespace-list",
        ],
    )
    def test_other_verbs_are_refused(self, command: str, verb: str) -> None:
        with pytest.raises(Forbidden) as exc:
            ALLOWING.check(command)

        assert exc.value.extra["verb"] == verb
        assert exc.value.extra["allowed"] == ["execute", "list", "return", "say", "whitelist"]
        assert "allowed: execute, list, return, say, whitelist" in exc.value.detail

    @pytest.mark.parametrize(
        "command",
        ["stop", "execute run stop", "return run stop", "minecraft:stop"],
        ids=["stop", "execute-run-stop", "return-run-stop", "namespaced-stop"],
    )
    def test_stop_stays_refused_even_when_allowed(self, command: str) -> None:
        policy = ConsolePolicy.of([], allowed=["stop", "execute", "return"])

        with pytest.raises(Forbidden) as exc:
            policy.check(command)

        assert exc.value.extra == {"verb": "stop"}

    def test_a_denied_verb_stays_refused_even_when_allowed(self) -> None:
        policy = ConsolePolicy.of(["reload"], allowed=["reload", "say"])

        with pytest.raises(Forbidden) as exc:
            policy.check("reload")

        assert exc.value.extra == {"verb": "reload"}

    def test_an_empty_allowlist_refuses_everything_but_shape_errors(self) -> None:
        policy = ConsolePolicy.of([], allowed=[])

        with pytest.raises(Forbidden):
            policy.check("say hi")
        with pytest.raises(InvalidInput):
            policy.check("   ")


class TestCommandShape:
    @pytest.mark.parametrize(
        ("command", "sent"),
        [
            ("/say hi", "say hi"),
            ("  say hi  ", "say hi"),
            ("  /list  ", "list"),
            ("say  two  spaces", "say  two  spaces"),
            ("say §aHello ✓", "say §aHello ✓"),
            ("say\u00a0nbsp", "say\u00a0nbsp"),
        ],
        ids=[
            "slash-stripped",
            "spaces-stripped",
            "spaces-then-slash",
            "inner-spaces-kept",
            "unicode",
            "no-break-space-inside",
        ],
    )
    def test_returns_what_to_send(self, command: str, sent: str) -> None:
        assert POLICY.check(command) == sent

    @pytest.mark.parametrize(
        "command",
        ["", " ", "    ", "\u3000", "\u00a0"],
        ids=["empty", "one-space", "spaces", "ideographic-space", "no-break-space"],
    )
    def test_refuses_empty(self, command: str) -> None:
        with pytest.raises(InvalidInput) as exc:
            POLICY.check(command)

        assert exc.value.extra == {"field": "command"}
        assert "empty" in exc.value.detail

    @pytest.mark.parametrize("command", ["/", " / "], ids=["slash", "padded-slash"])
    def test_refuses_a_slash_alone(self, command: str) -> None:
        with pytest.raises(InvalidInput):
            POLICY.check(command)

    def test_accepts_exactly_the_maximum_length(self) -> None:
        command = "say " + "x" * (COMMAND_MAX - 4)
        assert len(command) == 200 == COMMAND_MAX

        assert POLICY.check(command) == command

    def test_length_is_counted_after_stripping_spaces(self) -> None:
        command = "say " + "x" * 196

        assert POLICY.check(f"   {command}   ") == command

    @pytest.mark.parametrize(
        "command",
        ["say " + "x" * 197, "x" * 1000],
        ids=["201-chars", "1000-chars"],
    )
    def test_refuses_over_the_maximum_length(self, command: str) -> None:
        with pytest.raises(InvalidInput) as exc:
            POLICY.check(command)

        assert exc.value.extra == {"field": "command"}
        assert "200" in exc.value.detail

    @pytest.mark.parametrize(
        "command",
        [
            "say hi\nop Mallory",
            "say hi\n",
            "\nsay hi",
            "say hi\rop Mallory",
            "say hi\r\nop Mallory",
            "say \x1b[31mred",
            "say hi\x00op Mallory",
            "say hi\u2028op Mallory",
            "say hi\u2029op Mallory",
            "say hi\x85op Mallory",
            "say \u200ehello",
            "say \u202egnp.exe",
            "say zero\u200bwidth",
            "say\ttab",
            "say del\x7f",
        ],
        ids=[
            "newline-injects-op",
            "trailing-newline",
            "leading-newline",
            "carriage-return",
            "crlf",
            "escape",
            "nul",
            "line-separator-u2028",
            "paragraph-separator-u2029",
            "next-line-u0085",
            "lrm-format-u200e",
            "rlo-format-u202e",
            "zero-width-space-u200b",
            "tab",
            "del-u007f",
        ],
    )
    def test_refuses_control_and_format_characters(self, command: str) -> None:
        with pytest.raises(InvalidInput) as exc:
            POLICY.check(command)

        assert exc.value.extra == {"field": "command"}

    def test_a_newline_never_lets_a_second_command_through(self) -> None:
        # Even with a harmless first line, the denied verb on the second line must not pass.
        with pytest.raises(InvalidInput):
            ConsolePolicy.of([]).check("list\nstop")


# --- log lines -----------------------------------------------------------------------------


class TestParseShape:
    @pytest.mark.parametrize(
        ("text", "thread", "level", "message"),
        [
            (
                "[16:39:41] [Server thread/INFO]: Starting minecraft server version 1.21",
                "Server thread",
                "INFO",
                "Starting minecraft server version 1.21",
            ),
            (
                "[16:39:41] [Server thread/INFO]: Starting Minecraft server on *:25565",
                "Server thread",
                "INFO",
                "Starting Minecraft server on *:25565",
            ),
            (
                '[16:39:41] [Server thread/INFO]: Preparing level "world"',
                "Server thread",
                "INFO",
                'Preparing level "world"',
            ),
            (
                '[16:39:44] [Server thread/INFO]: Done (3.152s)! For help, type "help"',
                "Server thread",
                "INFO",
                'Done (3.152s)! For help, type "help"',
            ),
            (
                "[16:39:44] [Server thread/INFO]: RCON running on 0.0.0.0:25575",
                "Server thread",
                "INFO",
                "RCON running on 0.0.0.0:25575",
            ),
            (
                "[16:39:40] [ServerMain/INFO]: Environment: Environment[sessionHost=x]",
                "ServerMain",
                "INFO",
                "Environment: Environment[sessionHost=x]",
            ),
            (
                "[16:39:40] [ServerMain/WARN]: You need to agree to the EULA in order to run the server. Go to eula.txt for more info.",
                "ServerMain",
                "WARN",
                "You need to agree to the EULA in order to run the server. Go to eula.txt for more info.",
            ),
            (
                "[User Authenticator #9/INFO]: UUID of player Alice is 10920508-d5d8-3eed-93d2-92f193afe7d7",
                "User Authenticator #9",
                "INFO",
                "UUID of player Alice is 10920508-d5d8-3eed-93d2-92f193afe7d7",
            ),
            (
                "[Server thread/INFO]: Alice[/127.0.0.1:56812] logged in with entity id 88 at (0.5, 64.0, 0.5)",
                "Server thread",
                "INFO",
                "Alice[/127.0.0.1:56812] logged in with entity id 88 at (0.5, 64.0, 0.5)",
            ),
            (
                "[2024-06-01 16:39:41] [Server thread/INFO]: Starting minecraft server version 1.21",
                "Server thread",
                "INFO",
                "Starting minecraft server version 1.21",
            ),
            (
                "[16:40:02] [Server thread/ERROR]: Encountered an unexpected exception",
                "Server thread",
                "ERROR",
                "Encountered an unexpected exception",
            ),
            (
                "[16:40:00] [Server thread/INFO] [minecraft/DedicatedServer]: Done (1.0s)!",
                "Server thread",
                "INFO",
                "Done (1.0s)!",
            ),
        ],
        ids=[
            "starting-version",
            "starting-on-port",
            "preparing-level",
            "done",
            "rcon",
            "server-main-thread",
            "eula-warning",
            "no-timestamp-authenticator",
            "no-timestamp-logged-in",
            "date-prefix",
            "error-level",
            "logger-name-bracket",
        ],
    )
    def test_splits_thread_level_and_message(
        self, text: str, thread: str, level: str, message: str
    ) -> None:
        line = ConsoleLine.parse(text)

        assert line.text == text
        assert line.thread == thread
        assert line.level == level
        assert line.message == message

    @pytest.mark.parametrize(
        "text",
        [
            "Starting net.minecraft.server.Main",
            "\tat java.base/java.lang.Thread.run(Thread.java:1583)",
            "",
            "[not a log line",
            "Error: Unable to access jarfile server.jar",
        ],
        ids=["plain", "stack-trace", "empty", "unclosed-bracket", "java-error"],
    )
    def test_other_lines_keep_the_whole_text_as_message(self, text: str) -> None:
        line = ConsoleLine.parse(text)

        assert line.thread is None
        assert line.level is None
        assert line.message == text
        assert line.text == text


class TestReady:
    @pytest.mark.parametrize(
        "text",
        [
            '[16:39:44] [Server thread/INFO]: Done (3.152s)! For help, type "help"',
            '[2024-06-01 16:39:44] [Server thread/INFO]: Done (12.5s)! For help, type "help"',
            '[Server thread/INFO]: Done (0.9s)! For help, type "help"',
            'Done (3.152s)! For help, type "help"',
            '[16:39:44] [Server thread/INFO] [minecraft/DedicatedServer]: Done (9.8s)! For help, type "help"',
            '[01Dec2026 16:39:44.123] [Server thread/INFO] [net.minecraft.server.dedicated.DedicatedServer/]: Done (21.4s)! For help, type "help"',
        ],
        ids=["standard", "date-prefix", "no-timestamp", "bare", "forge", "neoforge"],
    )
    def test_done_line_is_ready(self, text: str) -> None:
        assert ConsoleLine.parse(text).is_ready is True

    @pytest.mark.parametrize(
        "text",
        [
            "[16:39:41] [Server thread/INFO]: Starting minecraft server version 1.21",
            "[16:39:41] [Server thread/INFO]: Starting Minecraft server on *:25565",
            '[16:39:41] [Server thread/INFO]: Preparing level "world"',
            "[16:39:44] [Server thread/INFO]: RCON running on 0.0.0.0:25575",
            "[16:39:40] [ServerMain/WARN]: You need to agree to the EULA in order to run the server. Go to eula.txt for more info.",
            '[16:39:44] [Server thread/INFO]: Done (s)! For help, type "help"',
            "[16:39:41] [main/INFO] (FabricLoader/GameProvider) Loading Minecraft 1.21.4 with Fabric Loader 0.16.10",
            "[installer] The server installed successfully",
        ],
        ids=[
            "starting-version",
            "starting-port",
            "preparing",
            "rcon",
            "eula",
            "no-seconds",
            "fabric-loader",
            "installer-output",
        ],
    )
    def test_other_lines_are_not_ready(self, text: str) -> None:
        assert ConsoleLine.parse(text).is_ready is False


class TestPlayers:
    @pytest.mark.parametrize(
        "text",
        [
            "[Server thread/INFO]: Alice joined the game",
            "[16:40:00] [Server thread/INFO]: Alice joined the game",
            "[16:40:00] [Server thread/INFO]: System chat: Alice joined the game",
            "[2024-06-01 16:40:00] [Server thread/INFO]: Alice joined the game",
            "[16:40:00] [Server thread/INFO] [minecraft/MinecraftServer]: Alice joined the game",
            "[01Dec2026 16:40:00.004] [Server thread/INFO] [net.minecraft.server.MinecraftServer/]: Alice joined the game",
        ],
        ids=["no-timestamp", "timestamp", "system-chat-prefix", "date-prefix", "forge", "neoforge"],
    )
    def test_joined(self, text: str) -> None:
        line = ConsoleLine.parse(text)

        assert line.joined() == "Alice"
        assert line.left() is None
        assert line.player_list() is None

    @pytest.mark.parametrize(
        "text",
        [
            "[Server thread/INFO]: Alice left the game",
            "[16:41:00] [Server thread/INFO]: Alice left the game",
            "[16:41:00] [Server thread/INFO]: System chat: Alice left the game",
        ],
        ids=["no-timestamp", "timestamp", "system-chat-prefix"],
    )
    def test_left(self, text: str) -> None:
        line = ConsoleLine.parse(text)

        assert line.left() == "Alice"
        assert line.joined() is None

    @pytest.mark.parametrize(
        "name", ["Bob", "x_Y_9", "A" * 16], ids=["short", "underscore-digit", "16-chars"]
    )
    def test_player_names_follow_minecraft_rules(self, name: str) -> None:
        assert ConsoleLine.parse(f"[Server thread/INFO]: {name} joined the game").joined() == name

    @pytest.mark.parametrize(
        "text",
        [
            "[16:40:05] [Server thread/INFO]: [Not Secure] <Alice> hello",
            "[16:40:05] [Server thread/INFO]: [Not Secure] <Mallory> Bob joined the game",
            "[16:40:05] [Server thread/INFO]: <Mallory> Bob joined the game",
            "[16:40:05] [Server thread/INFO]: [Server] Bob joined the game",
            "[Server thread/INFO]: Alice lost connection: Disconnected",
            "[Server thread/INFO]: Alice[/127.0.0.1:56812] logged in with entity id 88 at (0.5, 64.0, 0.5)",
            "[Server thread/INFO]: Al joined the game",
            "[Server thread/INFO]: " + "A" * 17 + " joined the game",
            "[Server thread/INFO]: Alice joined the game again",
        ],
        ids=[
            "chat",
            "secure-chat-spoof",
            "chat-spoof",
            "say-spoof",
            "lost-connection",
            "logged-in",
            "name-too-short",
            "name-too-long",
            "trailing-text",
        ],
    )
    def test_not_a_join_or_leave(self, text: str) -> None:
        line = ConsoleLine.parse(text)

        assert line.joined() is None
        assert line.left() is None

    def test_chat_line_keeps_the_chat_as_message(self) -> None:
        line = ConsoleLine.parse("[16:40:05] [Server thread/INFO]: [Not Secure] <Alice> hello")

        assert line.thread == "Server thread"
        assert line.message == "[Not Secure] <Alice> hello"

    @pytest.mark.parametrize(
        ("text", "players"),
        [
            (
                "[16:42:00] [Server thread/INFO]: There are 2 of a max of 20 players online: Alice, Bob",
                ("Alice", "Bob"),
            ),
            (
                "[16:42:00] [Server thread/INFO]: There are 1 of a max of 20 players online: Alice",
                ("Alice",),
            ),
            ("[16:42:00] [Server thread/INFO]: There are 0 of a max of 20 players online: ", ()),
            ("[16:42:00] [Server thread/INFO]: There are 0 of a max of 20 players online:", ()),
            ("There are 2 of a max of 20 players online: Alice, Bob", ("Alice", "Bob")),
            ("[16:42:00] [Server thread/INFO]: Alice joined the game", None),
        ],
        ids=[
            "two",
            "one",
            "none-trailing-space",
            "none-stripped",
            "bare",
            "not-a-list",
        ],
    )
    def test_player_list(self, text: str, players: tuple[str, ...] | None) -> None:
        assert ConsoleLine.parse(text).player_list() == players

    @pytest.mark.parametrize(
        ("text", "players"),
        [
            (
                "[16:42:00] [Server thread/INFO]: System chat: There are 2 of a max of 20 players online: Alice, Bob",
                ("Alice", "Bob"),
            ),
            (
                "[16:42:00] [Server thread/INFO]: System chat: There are 0 of a max of 20 players online: ",
                (),
            ),
        ],
        ids=["system-chat-two", "system-chat-none"],
    )
    def test_player_list_with_system_chat_prefix(self, text: str, players: tuple[str, ...]) -> None:
        assert ConsoleLine.parse(text).player_list() == players


CUT_MARK = f" [... cut: the line was longer than {LINE_MAX_BYTES} bytes]"


class TestCutLine:
    @pytest.mark.parametrize(
        "char", ["é", "✓", "😀"], ids=["two-byte-e-acute", "three-byte-check", "four-byte-emoji"]
    )
    def test_cuts_at_a_character_boundary(self, char: str) -> None:
        raw = (char * LINE_MAX_BYTES).encode()

        kept = cut_line(raw).removesuffix(CUT_MARK)

        assert kept == char * len(kept)
        assert LINE_MAX_BYTES - 4 < len(kept.encode()) <= LINE_MAX_BYTES

    def test_a_cut_vanilla_line_keeps_its_thread_and_level(self) -> None:
        raw = b"[16:39:41] [Server thread/INFO]: " + b"m" * 20_000

        parsed = ConsoleLine.parse(cut_line(raw))

        assert (parsed.thread, parsed.level) == ("Server thread", "INFO")
        assert parsed.message.endswith(CUT_MARK)


class TestHostileLinesParse:
    """Lines that made the old pattern backtrack quadratically; here only the results count."""

    @pytest.mark.parametrize(
        "text",
        [
            "[" + "00:" * 33_334,
            "[" + "00:00:00" * 12_500,
            "[" + "00:00:00 " * 11_111 + "]",
            "[" * 100_000,
            "]" * 100_000,
            "[00:00:00] [" + "a" * 100_000,
            "[00:00:00] [t/INFO]" + " " * 100_000,
        ],
        ids=[
            "open-bracket-then-100kb-of-00-colon",
            "open-bracket-then-100kb-of-times",
            "100kb-of-times-in-one-bracket",
            "100kb-of-open-brackets",
            "100kb-of-close-brackets",
            "unclosed-thread-bracket",
            "100kb-of-blanks-after-level",
        ],
    )
    def test_a_line_that_is_not_vanilla_is_kept_whole_as_the_message(self, text: str) -> None:
        parsed = ConsoleLine.parse(text)

        assert (parsed.thread, parsed.message) == (None, text)

    @pytest.mark.parametrize(
        ("text", "thread", "level", "message"),
        [
            ("[16:39:41] [Server thread/INFO]: Done", "Server thread", "INFO", "Done"),
            ("[12:00:00/INFO]: odd", "12:00:00", "INFO", "odd"),
            ("[16Jun2024 16:39:41.123] [main/WARN] [mod/]: hi", "main", "WARN", "hi"),
            ("[x 00:00:00 y]   [a/DEBUG]:msg", "a", "DEBUG", "msg"),
        ],
        ids=["vanilla", "time-inside-thread-bracket", "forge-with-logger", "time-mid-bracket"],
    )
    def test_the_rewritten_pattern_still_reads_real_lines(
        self, text: str, thread: str, level: str, message: str
    ) -> None:
        parsed = ConsoleLine.parse(text)

        assert (parsed.thread, parsed.level, parsed.message) == (thread, level, message)
