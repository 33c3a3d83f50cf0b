"""server.properties read exactly as `java.util.Properties.load(Reader)` reads it.

The dashboard owns a few keys (`managed_properties`) and rewrites them before every start.
Anything Java would read as one of those keys, however it is spelled (`server-port 1`,
`server\\-port:1`, `\\u0073erver-port=1`, a key split over continuation lines, a repeat
further down), must be found and replaced here, or it would override the dashboard's value.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from app.servers.domain.model import ServerConfig

_WHITESPACE = " \t\f"
_TERMINATORS = "\r\n"
_SIMPLE_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
_ESCAPES = {"\\": "\\\\", "=": "\\=", ":": "\\:", "#": "\\#", "!": "\\!"}
_HEX = frozenset("0123456789abcdefABCDEF")
_NATURAL_BREAK = re.compile(r"\r\n|\r|\n")
_NATURAL = re.compile(r"([^\r\n]*)(\r\n|\r|\n)?")
_KEY_VALUE = re.compile(r"((?:[^=: \t\f\\]|\\.|\\\Z)*)[ \t\f]*(?:[=:][ \t\f]*)?(.*)", re.DOTALL)


class MalformedEscape(ValueError):
    """A `\\u` not followed by four hex digits: Java's Properties refuses the whole file."""


@dataclass(frozen=True, slots=True)
class LogicalLine:
    """One key/value line as Java assembles it, and the span of text it came from.

    `start` is the start of its first natural line (leading whitespace included), `end`
    the end of its last one, terminator included; `text` has continuations joined. A
    `dangling` line is nothing but continuations into a comment: Java 9+ skips it, Java 8
    reads that comment as a key.
    """

    start: int
    end: int
    text: str
    dangling: bool = False


def _escape_char(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
        return f"\\u{ord(ch):04x}"
    return ch


def escape_value(value: str) -> str:
    """Escape for Java properties; line breaks of any kind become \\uXXXX, never a new line."""
    escaped = "".join(_escape_char(ch) for ch in value)
    return "\\ " + escaped[1:] if escaped.startswith(" ") else escaped


def escape_key(key: str) -> str:
    """As `escape_value`, and every space escaped: in a key, a bare space ends it."""
    return "".join(_escape_char(ch) for ch in key).replace(" ", "\\ ")


def unescape_value(raw: str) -> str:
    """Java's `loadConvert`: \\t \\n \\r \\f \\uXXXX, any other `\\x` is `x`.

    Raises MalformedEscape where Java throws. A lone trailing backslash (which Java's line
    reader never hands over) is dropped.
    """
    if "\\" not in raw:
        return raw
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        ch = raw[i]
        i += 1
        if ch != "\\":
            out.append(ch)
            continue
        if i == n:
            break
        ch = raw[i]
        i += 1
        if ch != "u":
            out.append(_SIMPLE_ESCAPES.get(ch, ch))
            continue
        digits = raw[i : i + 4]
        if len(digits) < 4 or not _HEX.issuperset(digits):
            raise MalformedEscape(f"malformed \\uxxxx escape: \\u{digits}")
        out.append(chr(int(digits, 16)))
        i += 4
    return "".join(out)


def managed_properties(config: ServerConfig, port: int) -> dict[str, str]:
    """The keys the dashboard owns; every other key of server.properties is left alone."""
    return {
        "server-port": str(port),
        "max-players": str(config.max_players),
        "motd": config.motd,
        "online-mode": str(config.online_mode).lower(),
        "white-list": str(config.whitelist).lower(),
        "enforce-whitelist": str(config.whitelist).lower(),
    }


def _java_lines(text: str) -> list[str]:
    """Natural lines as Java's Properties sees them: only \\n, \\r and \\r\\n end a line."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def logical_lines(text: str) -> Iterator[LogicalLine]:
    """Java's `Properties.LineReader.readLine` (JDK 9 to 21), natural line by natural line.

    Blank lines and comments yield nothing. A comment starts with `#` or `!` as the first
    non-blank character of a logical line; a natural line ending in an odd number of
    backslashes continues on the next, whose leading blanks are dropped.
    """
    parts: list[str] = []
    start, size, continued, n = 0, 0, False, len(text)
    for natural in _NATURAL.finditer(text):
        line_start, end = natural.span()
        if line_start == n:
            break
        content = natural[1].lstrip(_WHITESPACE)
        if not continued:
            if not content or content[0] in "#!":
                continue
            parts, start, size = [], line_start, 0
        elif not content or (size == 0 and content[0] in "#!"):
            continued = False
            if size:
                yield LogicalLine(start, end, "".join(parts))
            elif content:
                yield LogicalLine(start, line_start, "", dangling=True)
            continue
        backslashes = len(content) - len(content.rstrip("\\"))
        if backslashes % 2 == 0:
            parts.append(content)
            continued = False
            yield LogicalLine(start, end, "".join(parts))
            continue
        parts.append(content[:-1])
        size += len(content) - 1
        continued = True
        if natural[2] is None or (end == n and natural[2] != "\r\n"):
            continued = False  # Java hits the end before it would drop the \n of a \r\n
            yield LogicalLine(start, n, "".join(parts))
    if continued and size:
        yield LogicalLine(start, n, "".join(parts))


def split_key_value(line: str) -> tuple[str, str]:
    """Java's `load0`: the raw key ends at the first unescaped `=`, `:` or blank.

    Then blanks, at most one `=` or `:`, and blanks again, before the raw value.
    """
    match = _KEY_VALUE.match(line)
    assert match is not None  # every part of the pattern may match nothing
    return match[1], match[2]


def _entry(line: LogicalLine) -> tuple[str, str] | None:
    """The unescaped key and value, or None where Java would throw on the escapes."""
    raw_key, raw_value = split_key_value(line.text)
    try:
        return unescape_value(raw_key), unescape_value(raw_value)
    except MalformedEscape:
        return None


def parse_properties(text: str) -> dict[str, str]:
    """What Java reads from `text` once `merge_properties` has written it.

    A line with a malformed `\\u` escape is skipped: Java would refuse the whole file, and
    the merge comments such a line out.
    """
    result: dict[str, str] = {}
    for line in logical_lines(text):
        entry = None if line.dangling else _entry(line)
        if entry is not None:
            result[entry[0]] = entry[1]
    return result


def merge_properties(existing: str, updates: dict[str, str]) -> str:
    """Rewrite the given keys, keep every other byte, append the keys still missing.

    The first logical line of an updated key is replaced whole (continuations included),
    later ones are dropped (Java keeps the last). A line with a malformed `\\u` escape is
    commented out, natural line by natural line, so that Java can load the file at all;
    so is a dangling one, so that Java 8 and Java 9+ read the rest alike.
    """
    pending = dict(updates)
    out: list[str] = []
    copied = 0
    for line in logical_lines(existing):
        entry = None if line.dangling else _entry(line)
        if entry is not None and entry[0] not in updates:
            continue
        out.append(existing[copied : line.start])
        copied = line.end
        span = existing[line.start : line.end]
        if entry is None:
            out.append(_comment_out(span))
        elif entry[0] in pending:
            out.append(_line(entry[0], pending.pop(entry[0])) + _terminator(span))
    out.append(existing[copied:])
    merged = "".join(out)
    if not pending:
        return merged
    appended = "".join(_line(key, value) + "\n" for key, value in pending.items())
    return merged + _break_before_appending(merged) + appended


def _line(key: str, value: str) -> str:
    return f"{escape_key(key)}={escape_value(value)}"


def _break_before_appending(text: str) -> str:
    """What makes a line appended to `text` start afresh rather than continue its last line."""
    if not text:
        return ""
    terminator, last = _terminator(text), _java_lines(text)[-1]
    continued = (len(last) - len(last.rstrip("\\"))) % 2 == 1
    if not terminator:
        return "\n\n" if continued else "\n"
    if not continued:
        return ""
    return "\r\n" if terminator == "\r" else "\n"  # an empty natural line ends it


def _terminator(span: str) -> str:
    if span.endswith("\r\n"):
        return "\r\n"
    return span[-1] if span and span[-1] in _TERMINATORS else ""


def _comment_out(span: str) -> str:
    """Prefix every natural line (ended by \\r, \\n or \\r\\n only) with `#`."""
    body = span.rstrip(_TERMINATORS)
    return "#" + _NATURAL_BREAK.sub(lambda m: m[0] + "#", body) + span[len(body) :]
