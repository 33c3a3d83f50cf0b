"""Paths inside a server directory: what a request may name, checked before any file is touched."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.shared.domain import DomainError

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
CONTROL_DIRECTORY = ".mcdash"
TEMP_PREFIX = ".mcdash-tmp-"
PROTECTED_FILES = frozenset({"server.jar", "fabric-server-launch.jar"})  # linked from the jar cache
# Where a game server loads code from: Bukkit/Paper plugins, Forge/Fabric mods.
CODE_DIRECTORIES = frozenset({"plugins", "mods"})
_ENCODED = re.compile(r"%(2e|2f|5c|25|00)", re.IGNORECASE)


class InvalidPath(DomainError):
    """The path is malformed: it can never name a file of the server."""

    status = 400
    slug = "invalid-path"
    title = "Invalid path"


class PathForbidden(DomainError):
    """The path is well formed but leads somewhere the dashboard must not touch."""

    status = 403
    slug = "path-forbidden"
    title = "Path forbidden"


@dataclass(frozen=True, slots=True)
class FilePath:
    """A relative POSIX path below a server's root; `ROOT` has no parts."""

    parts: tuple[str, ...]

    @classmethod
    def parse(cls, raw: str, *, allow_root: bool = False) -> FilePath:
        """Refuse NUL bytes, absolute paths, `..`, backslashes, encoded dots, overlong names."""
        if "\x00" in raw:
            raise InvalidPath("the path contains a NUL byte", path=raw.replace("\x00", "\\0"))
        if len(raw.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
            raise InvalidPath(f"the path is longer than {MAX_PATH_BYTES} bytes")
        if "\\" in raw:
            raise InvalidPath("use / to separate directories, not \\", path=raw)
        if raw.startswith("/"):
            raise InvalidPath("the path must be relative to the server directory", path=raw)
        if _ENCODED.search(raw):
            raise InvalidPath("the path contains URL-encoded dots or separators", path=raw)
        parts = tuple(part for part in raw.split("/") if part not in ("", "."))
        for part in parts:
            if part == "..":
                raise InvalidPath("the path may not contain '..'", path=raw)
            if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
                raise InvalidPath(f"a name is longer than {MAX_NAME_BYTES} bytes", path=raw)
            if any(ord(ch) < 0x20 or ch == "\x7f" for ch in part):
                raise InvalidPath("the path contains control characters", path=raw)
        if not parts and not allow_root:
            raise InvalidPath("the path names no file", path=raw)
        path = cls(parts)
        path.check_allowed()
        return path

    def check_allowed(self) -> None:
        """The control directory and the dashboard's temporary files are never exposed."""
        if self.parts and self.parts[0] == CONTROL_DIRECTORY:
            raise PathForbidden("the .mcdash directory is managed by the dashboard", path=str(self))
        if self.parts and self.name.startswith(TEMP_PREFIX):
            raise PathForbidden("temporary files of the dashboard cannot be edited", path=str(self))

    def check_writable(self) -> None:
        """The server jar is read-only here: it is verified and installed by the servers context."""
        if len(self.parts) == 1 and self.name in PROTECTED_FILES:
            raise PathForbidden(
                f"{self.name} is managed by the dashboard; upload a jar through the server API",
                path=str(self),
            )

    @property
    def in_code_directory(self) -> bool:
        """Inside plugins/ or mods/ at any depth, or that directory itself."""
        return bool(self.parts) and self.parts[0].casefold() in CODE_DIRECTORIES

    @property
    def installs_code(self) -> bool:
        """A `.jar` below plugins/ or mods/: code the game server loads and runs."""
        return (
            len(self.parts) > 1 and self.in_code_directory and self.name.casefold().endswith(".jar")
        )

    @property
    def is_root(self) -> bool:
        return not self.parts

    @property
    def name(self) -> str:
        return self.parts[-1] if self.parts else ""

    @property
    def parent(self) -> FilePath:
        return FilePath(self.parts[:-1])

    def child(self, name: str) -> FilePath:
        return FilePath.parse("/".join((*self.parts, name)))

    def __str__(self) -> str:
        return "/".join(self.parts)


ROOT = FilePath(())
