"""Console rules: which typed commands are allowed, and what the server's log lines mean."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from app.shared.domain import Forbidden, InvalidInput

COMMAND_MAX = 200
LINE_MAX_BYTES = 8192  # a longer console line is cut here, the rest of it dropped

# Linear in the line's length: the time is found by a lookahead (atomic, tried once) and no
# two quantifiers that follow each other can match the same character.
_LINE = re.compile(
    r"^(?:\[(?=[^\]]*\d{2}:\d{2}:\d{2})[^\]]*\]\s*)?\[(?P<thread>[^\]/]+)/(?P<level>[A-Z]+)\]"
    r"(?:\s*\[[^\]]*\])?:\s?(?P<message>.*)$"
)
_PAPER_LINE = re.compile(
    r"^\[\d{2}:\d{2}:\d{2} (?P<level>[A-Z]+)\]:\s?(?P<message>.*)$"
)  # Paper's console: [16:39:41 INFO]: message
_SYSTEM = r"(?:System chat: )?"
READY = re.compile(r'Done \([0-9.]+s\)! For help, type "help"')
JOINED = re.compile(rf"^{_SYSTEM}(?P<name>[A-Za-z0-9_]{{3,16}}) joined the game$")
LEFT = re.compile(rf"^{_SYSTEM}(?P<name>[A-Za-z0-9_]{{3,16}}) left the game$")
LIST = re.compile(
    rf"^{_SYSTEM}There are ([0-9]+) of a max of ([0-9]+) players online: ?(?P<names>.*)$"
)


def cut_line(raw: bytes) -> str:
    """The first LINE_MAX_BYTES of a longer line, ended at a character, marked as cut."""
    end = LINE_MAX_BYTES
    while end > 0 and raw[end] & 0xC0 == 0x80:  # not inside a UTF-8 sequence
        end -= 1
    kept = raw[:end].decode("utf-8", "replace")
    return f"{kept} [... cut: the line was longer than {LINE_MAX_BYTES} bytes]"


@dataclass(frozen=True, slots=True)
class ConsoleLine:
    """One line of server output, split into thread, level and message when it has that shape."""

    text: str
    thread: str | None = None
    level: str | None = None
    message: str = ""

    @classmethod
    def parse(cls, text: str) -> ConsoleLine:
        match = _LINE.match(text)
        if match is not None:
            return cls(
                text=text, thread=match["thread"], level=match["level"], message=match["message"]
            )
        paper = _PAPER_LINE.match(text)
        if paper is not None:
            return cls(text=text, level=paper["level"], message=paper["message"])
        return cls(text=text, message=text)

    @property
    def is_ready(self) -> bool:
        return READY.search(self.message) is not None

    def joined(self) -> str | None:
        match = JOINED.match(self.message)
        return match["name"] if match else None

    def left(self) -> str | None:
        match = LEFT.match(self.message)
        return match["name"] if match else None

    def player_list(self) -> tuple[str, ...] | None:
        match = LIST.match(self.message)
        if match is None:
            return None
        return tuple(name.strip() for name in match["names"].split(",") if name.strip())


@dataclass(frozen=True, slots=True)
class ConsolePolicy:
    """Allows a command by its verbs, never by substrings of the whole line.

    The verbs are the first word and the word after every `run` (`execute ... run`,
    `return run`, nested or namespaced): each one starts a command the server runs.
    `stop` is always refused, denied verbs too; when `allowed_verbs` is set, every verb
    must also be one of them.
    """

    denied_verbs: frozenset[str]
    allowed_verbs: frozenset[str] | None = None

    @classmethod
    def of(cls, verbs: Iterable[str], allowed: Iterable[str] | None = None) -> ConsolePolicy:
        return cls(_normalised(verbs), None if allowed is None else _normalised(allowed))

    def check(self, command: str) -> str:
        """Return the command to send, or raise why it may not be sent."""
        if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in command):
            raise InvalidInput(
                "commands must be one line without control characters", field="command"
            )
        command = command.strip()
        if not command:
            raise InvalidInput("command is empty", field="command")
        if len(command) > COMMAND_MAX:
            raise InvalidInput(f"command must be at most {COMMAND_MAX} characters", field="command")
        command = command.removeprefix("/").strip()
        if not command:
            raise InvalidInput("command is empty", field="command")
        for verb in _verbs(command):
            self._check_verb(verb)
        return command

    def _check_verb(self, verb: str) -> None:
        namespace, _, bare = verb.rpartition(":")
        if bare == "stop":
            raise Forbidden(
                "stop the server with POST /api/v2/servers/{id}/stop, not from the console",
                verb="stop",
            )
        for denied in (bare, verb):
            if denied in self.denied_verbs:
                raise Forbidden(f"the console command '{denied}' is not allowed here", verb=denied)
        allowed = self.allowed_verbs
        if (
            allowed is None
            or verb in allowed
            or (namespace in ("", "minecraft") and bare in allowed)
        ):
            return
        raise Forbidden(
            f"the console command '{verb}' is not allowed here; allowed: "
            + ", ".join(sorted(allowed)),
            verb=verb,
            allowed=sorted(allowed),
        )


def _normalised(verbs: Iterable[str]) -> frozenset[str]:
    return frozenset(verb.strip().lower().lstrip("/") for verb in verbs if verb.strip())


def _verbs(command: str) -> list[str]:
    """The command's verb and the verb after every `run`, lower case, without a leading `/`."""
    tokens = [token.lstrip("/") for token in command.lower().split()]
    return [tokens[0]] + [tokens[i + 1] for i, word in enumerate(tokens[:-1]) if word == "run"]
