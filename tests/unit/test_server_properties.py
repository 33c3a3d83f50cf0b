"""server.properties as java.util.Properties reads it: escapes, logical lines, the merge."""

from __future__ import annotations

from typing import Any

import pytest

from app.servers.domain.model import ServerConfig, ServerType
from app.servers.domain.properties import (
    MalformedEscape,
    escape_key,
    escape_value,
    managed_properties,
    merge_properties,
    parse_properties,
    unescape_value,
)


def make_config(**overrides: Any) -> ServerConfig:
    values: dict[str, Any] = {
        "server_type": ServerType.VANILLA,
        "version": "1.21",
        "memory_mb": 2048,
    }
    values.update(overrides)
    return ServerConfig(**values)


# --- escaping ------------------------------------------------------------------------------


class TestEscape:
    @pytest.mark.parametrize(
        ("value", "escaped"),
        [
            ("plain", "plain"),
            ("a\\b", "a\\\\b"),
            ("a=b", "a\\=b"),
            ("a:b", "a\\:b"),
            ("#not a comment", "\\#not a comment"),
            ("!not a comment", "\\!not a comment"),
            (" leading", "\\ leading"),
            ("inner space", "inner space"),
            ("§a Hello ✓", "§a Hello ✓"),
            ("", ""),
        ],
        ids=[
            "plain",
            "backslash",
            "equals",
            "colon",
            "hash",
            "bang",
            "leading-space",
            "inner-space",
            "unicode",
            "empty",
        ],
    )
    def test_escape_value(self, value: str, escaped: str) -> None:
        assert escape_value(value) == escaped

    @pytest.mark.parametrize(
        "value",
        [
            "C:\\Games\\mc",
            "a=b",
            "host:25565",
            "#1 server",
            "!important",
            " leading",
            "  two leading",
            "trailing\\",
            "§a Hello ✓",
            "mix \\= :# ! end",
            "\\u0041 literal",
            "\\n literal",
            "",
        ],
        ids=[
            "backslashes",
            "equals",
            "colon",
            "hash",
            "bang",
            "leading-space",
            "two-leading-spaces",
            "trailing-backslash",
            "unicode",
            "everything",
            "literal-backslash-u",
            "literal-backslash-n",
            "empty",
        ],
    )
    def test_round_trip(self, value: str) -> None:
        assert unescape_value(escape_value(value)) == value

    @pytest.mark.parametrize(
        ("raw", "value"),
        [
            ("\\u00e9t\\u00e9", "été"),
            ("\\u00A7a Hi", "§a Hi"),
            ("\\u2713", "✓"),
            ("line1\\nline2", "line1\nline2"),
            ("a\\tb\\rc", "a\tb\rc"),
            ("\\ x", " x"),
            ("\\=\\:\\#\\!", "=:#!"),
            ("\\q", "q"),
            ("plain", "plain"),
        ],
        ids=[
            "unicode-escapes",
            "upper-hex",
            "check-mark",
            "newline",
            "tab-and-cr",
            "escaped-space",
            "metachars",
            "unknown-escape-drops-backslash",
            "plain",
        ],
    )
    def test_unescape_value(self, raw: str, value: str) -> None:
        assert unescape_value(raw) == value


# --- properties files ----------------------------------------------------------------------

EXISTING = """\
#Minecraft server properties
#Mon Jun 01 16:39:41 UTC 2024

level-seed=12345
server-port=25565
! bang comment
spawn-protection = 16
motd=Old MOTD
level-name=world
"""


class TestMergeProperties:
    def test_rewrites_in_place_and_keeps_everything_else(self) -> None:
        merged = merge_properties(
            EXISTING, {"server-port": "25570", "motd": "New: #1", "max-players": "50"}
        )

        assert merged.splitlines() == [
            "#Minecraft server properties",
            "#Mon Jun 01 16:39:41 UTC 2024",
            "",
            "level-seed=12345",
            "server-port=25570",
            "! bang comment",
            "spawn-protection = 16",
            "motd=New\\: \\#1",
            "level-name=world",
            "max-players=50",
        ]
        assert merged.endswith("\n")

    def test_appends_missing_keys_in_update_order(self) -> None:
        merged = merge_properties("", {"b": "2", "a": "1"})

        assert merged == "b=2\na=1\n"

    def test_nothing_to_update_keeps_the_file(self) -> None:
        assert merge_properties(EXISTING, {}) == EXISTING

    def test_is_idempotent(self) -> None:
        updates = {"server-port": "25570", "motd": " §a Hi=there ✓"}
        once = merge_properties(EXISTING, updates)

        assert merge_properties(once, updates) == once

    def test_recognises_keys_with_colon_or_spaced_separators(self) -> None:
        merged = merge_properties(
            "  server-port : 1\nmotd:old\nmax-players = 3\n",
            {"server-port": "2", "motd": "new", "max-players": "4"},
        )

        assert merged == "server-port=2\nmotd=new\nmax-players=4\n"

    def test_commented_out_key_is_not_rewritten(self) -> None:
        merged = merge_properties("#server-port=1\n", {"server-port": "2"})

        assert merged == "#server-port=1\nserver-port=2\n"

    def test_key_that_merely_starts_like_a_managed_one_is_kept(self) -> None:
        merged = merge_properties("server-port-extra=1\n", {"server-port": "2"})

        assert merged == "server-port-extra=1\nserver-port=2\n"

    def test_keeps_crlf_line_endings(self) -> None:
        merged = merge_properties("a=1\r\nserver-port=1\r\n", {"server-port": "2"})

        assert merged == "a=1\r\nserver-port=2\r\n"

    def test_duplicated_managed_key_cannot_override_the_managed_value(self) -> None:
        merged = merge_properties("white-list=false\nwhite-list=false\n", {"white-list": "true"})

        assert parse_properties(merged)["white-list"] == "true"

    @pytest.mark.parametrize(
        "separator",
        ["\x85", "\u2028", "\u2029"],
        ids=["nel", "line-separator", "paragraph-separator"],
    )
    def test_unicode_line_separators_cannot_inject_keys(self, separator: str) -> None:
        updates = {"motd": f"Hi{separator}enable-rcon true"}
        once = merge_properties("", updates)

        twice = merge_properties(once, updates)

        assert twice == once
        assert "enable-rcon true" not in twice.split("\n")


class TestParseProperties:
    def test_skips_comments_and_blank_lines(self) -> None:
        assert parse_properties(EXISTING) == {
            "level-seed": "12345",
            "server-port": "25565",
            "spawn-protection": "16",
            "motd": "Old MOTD",
            "level-name": "world",
        }

    def test_unescapes_values_and_splits_on_the_first_equals(self) -> None:
        text = "motd=\\ Hi\\=there \\u2713\nrcon.password=a=b\nempty=\n"

        assert parse_properties(text) == {
            "motd": " Hi=there ✓",
            "rcon.password": "a=b",
            "empty": "",
        }

    def test_reads_back_what_merge_wrote(self) -> None:
        updates = {"motd": "#1 §a Hello ✓ a=b:c!", "server-port": "25570"}

        parsed = parse_properties(merge_properties(EXISTING, updates))

        assert parsed["motd"] == updates["motd"]
        assert parsed["server-port"] == "25570"
        assert parsed["level-seed"] == "12345"


class TestManagedProperties:
    def test_defaults(self) -> None:
        assert managed_properties(make_config(), 25565) == {
            "server-port": "25565",
            "max-players": "20",
            "motd": "A Minecraft Server",
            "online-mode": "true",
            "white-list": "false",
            "enforce-whitelist": "false",
        }

    def test_follows_the_config(self) -> None:
        config = make_config(max_players=7, motd="§a Hi", online_mode=False, whitelist=True)

        assert managed_properties(config, 30000) == {
            "server-port": "30000",
            "max-players": "7",
            "motd": "§a Hi",
            "online-mode": "false",
            "white-list": "true",
            "enforce-whitelist": "true",
        }


# --- every way Java spells a key -------------------------------------------------------------


class TestJavaKeySyntax:
    """Each line is read by Java as `server-port` = `1234`; so must it be here."""

    @pytest.mark.parametrize(
        "text",
        [
            "server-port=1234",
            "server-port:1234",
            "server-port 1234",
            "server-port\t1234",
            "server-port\f1234",
            "server-port = 1234",
            "server-port \t: \f1234",
            "server-port   1234",
            "   server-port=1234",
            "\t\fserver-port=1234",
            "server\\-port=1234",
            "\\u0073erver-port=1234",
            "\\u0073\\u0065\\u0072\\u0076\\u0065\\u0072\\u002d\\u0070\\u006f\\u0072\\u0074=1234",
            "\\s\\er\\v\\er\\-\\p\\ort 1234",
            "server-\\\n    port=1234",
            "server-\\\r\n\t port=1234",
            "server-\\\r  port=1234",
            "server-port\\\n  =1234",
            "server-port=12\\\n      34",
            "ser\\\n ver\\\n  -po\\\n   rt\\\n    =\\\n     1234",
            "server-port=1234\\",
            "server-port=1234\\\n",
            "#comment\nserver-port=1234",
            "a=1\rserver-port=1234\r",
            "\\\nserver-port=1234",
        ],
        ids=[
            "equals",
            "colon",
            "space-separator",
            "tab-separator",
            "formfeed-separator",
            "spaced-equals",
            "mixed-blanks-around-colon",
            "many-spaces",
            "leading-spaces",
            "leading-tab-and-formfeed",
            "escaped-dash",
            "unicode-escaped-s",
            "all-unicode-escaped",
            "every-char-backslash-escaped",
            "continuation-inside-key",
            "crlf-continuation-inside-key",
            "cr-continuation-inside-key",
            "continuation-before-separator",
            "continuation-inside-value",
            "continuation-on-every-line",
            "trailing-backslash-at-eof",
            "trailing-backslash-then-newline-at-eof",
            "after-a-comment",
            "cr-only-line-endings",
            "after-a-lone-backslash-line",
        ],
    )
    def test_reads_the_key_as_java_does(self, text: str) -> None:
        assert parse_properties(text)["server-port"] == "1234"

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("#server-port=1", {}),
            ("!server-port=1", {}),
            ("   #server-port=1", {}),
            ("motd=hi\\\n#server-port=1", {"motd": "hi#server-port=1"}),
            ("motd=hi\\\n!server-port=1", {"motd": "hi!server-port=1"}),
            ("#comment\\\nserver-port=1", {"server-port": "1"}),
            ("\\\n#server-port=1", {}),
            ("motd=a\\\\\nserver-port=1", {"motd": "a\\", "server-port": "1"}),
            ("motd=a\\\\\\\nserver-port=1", {"motd": "a\\server-port=1"}),
            ("motd=a\\\n\nserver-port=1", {"motd": "a", "server-port": "1"}),
            ("server-port", {"server-port": ""}),
            ("server-port==1", {"server-port": "=1"}),
            ("server-port = :1", {"server-port": ":1"}),
            ("server-port=1 \t", {"server-port": "1 \t"}),
            ("=1", {"": "1"}),
            ("server-port\u00a01", {"server-port\u00a01": ""}),
            ("server-port\x0b1", {"server-port\x0b1": ""}),
            ("server-port=1\x852", {"server-port": "1\x852"}),
            ("server-port=1\u20282", {"server-port": "1\u20282"}),
            ("server\\=port=1", {"server=port": "1"}),
            ("server\\ port=1", {"server port": "1"}),
            ("\\u003d=1", {"=": "1"}),
        ],
        ids=[
            "hash-comment",
            "bang-comment",
            "indented-comment",
            "hash-inside-a-continuation-is-text",
            "bang-inside-a-continuation-is-text",
            "a-comment-never-continues",
            "comment-after-a-lone-backslash-line",
            "even-backslashes-do-not-continue",
            "odd-backslashes-continue",
            "empty-line-ends-a-continuation",
            "key-without-value",
            "second-equals-is-value",
            "colon-after-blank-separator-then-colon-is-value",
            "trailing-blanks-kept",
            "empty-key",
            "nbsp-is-not-a-separator",
            "vertical-tab-is-not-a-separator",
            "nel-is-not-a-line-break",
            "line-separator-is-not-a-line-break",
            "escaped-equals-in-key",
            "escaped-space-in-key",
            "unicode-equals-in-key-is-no-separator",
        ],
    )
    def test_parses_exactly(self, text: str, expected: dict[str, str]) -> None:
        assert parse_properties(text) == expected

    @pytest.mark.parametrize(
        ("raw", "value"),
        [
            ("\\f", "\f"),
            ("\\b", "b"),
            ("\\\\u0041", "\\u0041"),
            ("\\u00411", "A1"),
            ("\\uD83D\\uDE00", "\ud83d\ude00"),
        ],
        ids=["formfeed", "backslash-b-is-b", "escaped-backslash-u", "five-digits", "surrogates"],
    )
    def test_unescape_like_load_convert(self, raw: str, value: str) -> None:
        assert unescape_value(raw) == value

    @pytest.mark.parametrize(
        "raw",
        ["\\u12", "\\u", "\\uzzzz", "\\u12g4", "a\\u00"],
        ids=["three-digits", "no-digits", "not-hex", "one-bad-digit", "cut-at-the-end"],
    )
    def test_malformed_unicode_escape_raises_like_java(self, raw: str) -> None:
        with pytest.raises(MalformedEscape):
            unescape_value(raw)

    @pytest.mark.parametrize(
        "text",
        ["server-port=\\u12", "\\u12server-port=1", "server-port=1\\\n\\uzz"],
        ids=["in-the-value", "in-the-key", "in-a-continuation"],
    )
    def test_a_line_java_would_refuse_is_skipped(self, text: str) -> None:
        assert parse_properties(f"a=1\n{text}\nb=2\n") == {"a": "1", "b": "2"}

    def test_later_spellings_override_earlier_ones(self) -> None:
        text = "server-port=1\nserver\\-port 2\n\\u0073erver-port:3\n"

        assert parse_properties(text) == {"server-port": "3"}

    def test_escape_key_keeps_spaces_in_the_key(self) -> None:
        key = "a key=with: #all! \\of\tit"

        assert parse_properties(f"{escape_key(key)}={escape_value(' v ')}") == {key: " v "}


MANAGED = {"server-port": "25570", "white-list": "true"}


class TestMergeHostileFiles:
    """Whatever the file says, after the merge Java reads the dashboard's managed values."""

    @pytest.mark.parametrize(
        ("hostile", "merged"),
        [
            (
                "server-port 1\nwhite-list false\nonline-mode\tfalse\n",
                "server-port=25570\nwhite-list=true\nonline-mode\tfalse\n",
            ),
            ("server-port:1\nwhite-list:false\n", "server-port=25570\nwhite-list=true\n"),
            (
                "  server-port = 1\n\t white-list \x0c false\n",
                "server-port=25570\nwhite-list=true\n",
            ),
            ("server\\-port=1\nwhite\\-list=false\n", "server-port=25570\nwhite-list=true\n"),
            (
                "\\u0073erver-port=1\n\\u0077hite-list=false\n",
                "server-port=25570\nwhite-list=true\n",
            ),
            (
                "server-\\\n    port=1\nwhite-\\\r\n  list=false\r\n",
                "server-port=25570\nwhite-list=true\r\n",
            ),
            (
                "server-port=1\\\n  2345\nwhite-list=fal\\\n se\n",
                "server-port=25570\nwhite-list=true\n",
            ),
            ("a=1\rserver-port=1\rwhite-list=false\r", "a=1\rserver-port=25570\rwhite-list=true\r"),
            (
                "server-port=25570\nwhite-list=true\nserver\\-port 1\nwhite-list:false\n",
                "server-port=25570\nwhite-list=true\n",
            ),
            ("white-list=true\n\\\nwhite-list=false\n", "white-list=true\nserver-port=25570\n"),
            ("level-name=world\\", "level-name=world\\\n\nserver-port=25570\nwhite-list=true\n"),
            ("level-name=world\\\n", "level-name=world\\\n\nserver-port=25570\nwhite-list=true\n"),
            (
                "level-name=world\\\r",
                "level-name=world\\\r\r\nserver-port=25570\nwhite-list=true\n",
            ),
            (
                "level-name=world\\\r\n",
                "level-name=world\\\r\n\nserver-port=25570\nwhite-list=true\n",
            ),
            (
                "level-name=world\\\\\\",
                "level-name=world\\\\\\\n\nserver-port=25570\nwhite-list=true\n",
            ),
            ("#comment\\", "#comment\\\n\nserver-port=25570\nwhite-list=true\n"),
            (
                "motd=x\\\n#server-port=1\n",
                "motd=x\\\n#server-port=1\nserver-port=25570\nwhite-list=true\n",
            ),
            (
                "\\\n#white-list=false\\\nwhite-list=false\n",
                "#\\\n#white-list=false\\\nwhite-list=true\nserver-port=25570\n",
            ),
            (
                "server-port=\\u12\nwhite-list=\\uzzzz\\\n  false\n",
                "#server-port=\\u12\n#white-list=\\uzzzz\\\n#  false\nserver-port=25570\nwhite-list=true\n",
            ),
            (
                "\\u00zzwhite-list=false\n",
                "#\\u00zzwhite-list=false\nserver-port=25570\nwhite-list=true\n",
            ),
        ],
        ids=[
            "space-separators",
            "colon-separators",
            "blanks-and-formfeed",
            "escaped-dash",
            "unicode-escaped-key",
            "continued-keys",
            "continued-values",
            "cr-only-endings",
            "later-duplicates-in-other-spellings",
            "duplicate-after-a-lone-backslash",
            "open-backslash-at-eof",
            "open-continuation-at-eof",
            "open-cr-continuation-at-eof",
            "open-crlf-continuation-at-eof",
            "three-backslashes-at-eof",
            "comment-with-backslash-at-eof",
            "hash-inside-a-continuation",
            "dangling-backslash-before-a-comment",
            "malformed-unicode-escapes",
            "malformed-escape-in-the-key",
        ],
    )
    def test_the_managed_values_win(self, hostile: str, merged: str) -> None:
        assert merge_properties(hostile, MANAGED) == merged
        assert merge_properties(merged, MANAGED) == merged
        assert {key: parse_properties(merged).get(key) for key in MANAGED} == MANAGED

    def test_replaces_the_whole_logical_line_and_drops_later_duplicates(self) -> None:
        existing = (
            "# top\r\n"
            "level-seed=1\\\r\n"
            "   23\r\n"
            "  server-\\\n"
            "\tport \\\n"
            "  1\n"
            "difficulty = hard  \n"
            "server\\-port 2\\\n"
            "  3\n"
            "! end\n"
        )

        merged = merge_properties(existing, {"server-port": "25570"})

        assert merged == (
            "# top\r\nlevel-seed=1\\\r\n   23\r\nserver-port=25570\ndifficulty = hard  \n! end\n"
        )

    def test_keeps_unrelated_bytes_including_odd_whitespace(self) -> None:
        existing = "\f\t a = b \t\r\n\r\n\n   # c\\\r\nd:\\\\\n"

        merged = merge_properties(existing, {"server-port": "1"})

        assert merged == existing + "server-port=1\n"

    def test_a_line_java_would_refuse_is_commented_out_line_by_line(self) -> None:
        existing = "a=1\nmotd=\\u12\\\r\n   more\\\n  end\nb=2\n"

        merged = merge_properties(existing, {"server-port": "1"})

        assert merged == "a=1\n#motd=\\u12\\\r\n#   more\\\n#  end\nb=2\nserver-port=1\n"
        assert parse_properties(merged) == {"a": "1", "b": "2", "server-port": "1"}

    def test_a_dangling_backslash_is_commented_out(self) -> None:
        merged = merge_properties("  \\\n#x=1\nb=2\n", {"server-port": "1"})

        assert merged == "#  \\\n#x=1\nb=2\nserver-port=1\n"

    @pytest.mark.parametrize(
        ("existing", "merged"),
        [
            ("a=b\\", "a=b\\\n\nserver-port=1\n"),
            ("a=b\\\n", "a=b\\\n\nserver-port=1\n"),
            ("a=b\\\r", "a=b\\\r\r\nserver-port=1\n"),
            ("a=b\\\r\n", "a=b\\\r\n\nserver-port=1\n"),
            ("a=b\\\\", "a=b\\\\\nserver-port=1\n"),
            ("a=b", "a=b\nserver-port=1\n"),
        ],
        ids=[
            "backslash-at-eof",
            "lf-continuation-at-eof",
            "cr-continuation-at-eof",
            "crlf-continuation-at-eof",
            "escaped-backslash-at-eof",
            "no-newline-at-eof",
        ],
    )
    def test_appended_keys_never_continue_the_last_line(self, existing: str, merged: str) -> None:
        assert merge_properties(existing, {"server-port": "1"}) == merged
        assert parse_properties(merged) == parse_properties(existing) | {"server-port": "1"}
