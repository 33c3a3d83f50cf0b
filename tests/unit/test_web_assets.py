"""The dashboard's files: hashed names that follow their imports, cache headers, CSP, gzip."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.web.assets import load_assets
from app.web.routes import IMMUTABLE, content_security_policy, dashboard_router

SCRIPT_BUDGET = 200 * 1024


def _site(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_changed_module_renames_every_module_that_imports_it(tmp_path: Path) -> None:
    index = '<script type="module" src="/assets/js/app.js"></script>'
    files = {
        "index.html": index,
        "js/app.js": 'import { a } from "./lib/a.js";\n',
        "js/lib/a.js": 'import "../b.js";\nexport const a = 1;\n',
        "js/b.js": "1;\n",
    }
    before = load_assets(_site(tmp_path / "one", files))
    after = load_assets(_site(tmp_path / "two", {**files, "js/b.js": "2;\n"}))
    assert set(before.by_name) & set(after.by_name) == set()
    app_name = re.search(rb"/assets/(js/app\.[0-9a-f]{12}\.js)", before.index)
    assert app_name is not None
    body = before.by_name[app_name[1].decode()].body.decode()
    assert re.search(r'from "/assets/js/lib/a\.[0-9a-f]{12}\.js"', body)


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ({"js/app.js": 'import "./missing.js";'}, "missing"),
        ({"js/app.js": 'import "./b.js";', "js/b.js": 'import "./app.js";'}, "cycle"),
        ({"js/app.js": 'import "../../outside.js";'}, "leaves"),
    ],
    ids=["missing-import", "import-cycle", "import-outside-static"],
)
def test_a_broken_module_graph_fails_at_start_up(tmp_path: Path, files, error) -> None:
    root = _site(tmp_path, {"index.html": '<script src="/assets/js/app.js"></script>', **files})
    with pytest.raises(ValueError, match=error):
        load_assets(root)


def test_the_index_preloads_every_module() -> None:
    assets = load_assets()
    preloaded = set(re.findall(rb'rel="modulepreload" href="/assets/([^"]+)"', assets.index))
    modules = {name.encode() for name in assets.by_name if name.endswith(".js")}
    assert preloaded == modules


def test_the_shipped_script_stays_under_its_budget() -> None:
    assets = load_assets()
    scripts = sum(len(a.gzipped) for name, a in assets.by_name.items() if name.endswith(".js"))
    assert 0 < scripts < SCRIPT_BUDGET


@pytest.mark.parametrize(
    "host",
    ["evil.example; script-src *", "a b", "x\u00e9.example"],
    ids=["injected", "space", "non-ascii"],
)
def test_an_odd_host_header_never_reaches_the_policy(host: str) -> None:
    policy = content_security_policy(host)
    assert host not in policy
    assert "connect-src 'self';" in policy


async def test_index_and_assets_carry_their_cache_and_security_headers() -> None:
    app = FastAPI()
    assets = load_assets()
    app.include_router(dashboard_router(assets))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dash.test:8000") as http:
        index = await http.get("/")
        assert index.headers["cache-control"] == "no-cache"
        policy = index.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "unsafe-inline" not in policy
        assert "ws://dash.test:8000" in policy
        assert index.headers["x-content-type-options"] == "nosniff"
        script = re.search(r'src="(/assets/js/app\.[0-9a-f]{12}\.js)"', index.text)
        assert script is not None
        found = await http.get(script[1], headers={"Accept-Encoding": "gzip"})
        assert found.headers["cache-control"] == IMMUTABLE
        assert found.headers["content-type"].startswith("text/javascript")
        assert found.headers["content-encoding"] == "gzip"
        plain = await http.get(script[1], headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert (
            gzip.decompress(assets.by_name[script[1].removeprefix("/assets/")].gzipped)
            == plain.content
        )
        stale = await http.get("/assets/js/app.000000000000.js")
        assert stale.status_code == 404
        assert stale.headers["cache-control"] == "no-cache"
        assert stale.headers["content-type"] == "application/problem+json"
        assert "reload the page" in stale.json()["detail"]
