"""The dashboard's static files under content-hashed names, computed once at start-up."""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
# `import ... from "./x.js"`, `import "../x.js"`, `export ... from "./x.js"`: the only
# specifiers the modules use, always relative, each rewritten to its asset's hashed URL.
_IMPORT = re.compile(r"""(\bfrom\s*|\bimport\s*)(["'])(\.{1,2}/[A-Za-z0-9_/.-]+\.js)\2""")
_INDEX_REF = re.compile(r"""(["'])/assets/([A-Za-z0-9_/.-]+\.(?:js|css|svg))\1""")
PRELOAD_MARK = "<!-- modulepreload -->"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    gzipped: bytes


@dataclass(frozen=True, slots=True)
class Assets:
    """index.html with hashed references, and every asset by its hashed name."""

    index: bytes
    by_name: dict[str, Asset]


def _hashed(name: str, body: bytes) -> str:
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}.{hashlib.sha256(body).hexdigest()[:12]}{dot}{suffix}"


def load_assets(root: Path = STATIC_DIR) -> Assets:
    """Hash every file, rewriting a module's imports first, so a change reaches every importer."""
    sources = {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != "index.html"
    }
    names: dict[str, str] = {}
    by_name: dict[str, Asset] = {}

    def resolve(name: str, trail: tuple[str, ...] = ()) -> str:
        if name in names:
            return names[name]
        if name in trail:
            raise ValueError(f"import cycle: {' -> '.join((*trail, name))}")
        if name not in sources:
            raise ValueError(f"{trail[-1] if trail else 'index.html'} imports missing {name}")
        body = sources[name]
        if name.endswith(".js"):
            folder = name.rpartition("/")[0]

            def rewrite(match: re.Match[str]) -> str:
                target = f"{folder}/{match[3]}" if folder else match[3]
                hashed = resolve(_normalize(target), (*trail, name))
                return f"{match[1]}{match[2]}/assets/{hashed}{match[2]}"

            body = _IMPORT.sub(rewrite, body.decode()).encode()
        hashed_name = _hashed(name, body)
        suffix = Path(name).suffix
        media = _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
        by_name[hashed_name] = Asset(body, media, gzip.compress(body, 9, mtime=0))
        names[name] = hashed_name
        return hashed_name

    for name in sources:
        resolve(name)
    index = (root / "index.html").read_text()
    index = _INDEX_REF.sub(lambda m: f"{m[1]}/assets/{resolve(m[2])}{m[1]}", index)
    # Every module at once, instead of a waterfall of imports discovered one level at a time.
    preloads = "\n".join(
        f'<link rel="modulepreload" href="/assets/{hashed}">'
        for name, hashed in sorted(names.items())
        if name.endswith(".js")
    )
    index = index.replace(PRELOAD_MARK, preloads)
    return Assets(index=index.encode(), by_name=by_name)


def _normalize(path: str) -> str:
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if not parts:
                raise ValueError(f"import leaves the static folder: {path}")
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)
