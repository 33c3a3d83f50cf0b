"""A server's directory on its node: server.properties, eula.txt, the jar, the console files."""

from __future__ import annotations

import os
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from app.servers.domain.model import ServerConfig

PROPERTIES = "server.properties"
_ESCAPES = {"\\": "\\\\", "=": "\\=", ":": "\\:", "#": "\\#", "!": "\\!"}


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


def unescape_value(value: str) -> str:
    out: list[str] = []
    chars = iter(value)
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(chars, "")
        if nxt == "u":
            code = "".join(next(chars, "") for _ in range(4))
            out.append(chr(int(code, 16)) if len(code) == 4 else "\\u" + code)
        else:
            out.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
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


def merge_properties(existing: str, updates: dict[str, str]) -> str:
    """Rewrite the given keys in place, keep comments and unknown keys, append missing keys."""
    pending = dict(updates)
    lines: list[str] = []
    for line in _java_lines(existing):
        stripped = line.lstrip()
        if stripped and stripped[0] not in "#!":
            key = stripped.split("=", 1)[0].split(":", 1)[0].strip()
            if key in pending:
                lines.append(f"{key}={escape_value(pending.pop(key))}")
                continue
            if key in updates:
                continue  # a repeated managed key would override ours: Java keeps the last one
        lines.append(line)
    lines.extend(f"{key}={escape_value(value)}" for key, value in pending.items())
    return "\n".join(lines) + "\n"


def _java_lines(text: str) -> list[str]:
    """Split as Java's Properties does: only \\n, \\r and \\r\\n end a line."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def parse_properties(text: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for line in _java_lines(text):
        stripped = line.strip()
        if not stripped or stripped[0] in "#!":
            continue
        key, _, value = stripped.partition("=")
        result[key.strip()] = unescape_value(value.strip())
    return result


def write_atomically(path: Path, content: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True, slots=True)
class ServerDirectory:
    """Where one server lives: `<data_dir>/servers/<id>/` plus a private `.mcdash/` folder."""

    path: Path

    @property
    def meta(self) -> Path:
        return self.path / ".mcdash"

    @property
    def console_in(self) -> Path:
        return self.meta / "console.in"

    @property
    def console_log(self) -> Path:
        return self.meta / "console.log"

    @property
    def exit_file(self) -> Path:
        return self.meta / "exit_code"

    @property
    def offset_file(self) -> Path:
        return self.meta / "console.offset"

    @property
    def jar(self) -> Path:
        return self.path / "server.jar"

    def write_settings(self, config: ServerConfig, *, port: int, eula_accepted: bool) -> None:
        """Blocking: write eula.txt and the managed keys of server.properties."""
        self.meta.mkdir(parents=True, exist_ok=True)
        properties = self.path / PROPERTIES
        existing = properties.read_text(encoding="utf-8") if properties.exists() else ""
        merged = merge_properties(existing, managed_properties(config, port))
        write_atomically(properties, merged.encode("utf-8"))
        if eula_accepted:
            eula = "# Accepted through mcdash by the server's owner\neula=true\n"
            write_atomically(self.path / "eula.txt", eula.encode())

    def install_jar(self, source: Path) -> None:
        """Blocking: hard-link the cached jar (copy across file systems)."""
        tmp = self.path / ".server.jar.tmp"
        tmp.unlink(missing_ok=True)
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, self.jar)

    def ensure_console_fifo(self) -> None:
        self.meta.mkdir(parents=True, exist_ok=True)
        if not self.console_in.exists():
            os.mkfifo(self.console_in, 0o600)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
