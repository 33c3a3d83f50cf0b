"""Screenshots of the dashboard's main pages at desktop and phone widths, for a person to look
at: run `scripts/screenshots`; the PNGs land in .screenshots/pages/ (gitignored). Not part of
the suite (the file is not named test_*); it reuses the browser tests' stack and fixtures."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import ROOT

pytestmark = pytest.mark.e2e
OUT = ROOT / ".screenshots" / "pages"
PASSWORD = "Screens-Pass-2026"
VIEWPORTS = {
    "desktop": (1280, 900, "light"),
    "phone": (390, 844, "light"),
    "phone-dark": (390, 844, "dark"),
}


@pytest.fixture(autouse=True)
def quick_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sample a second, so the status page's charts have points to draw."""
    monkeypatch.setenv("MCDASH_METRICS_INTERVAL_SECONDS", "1")


async def _seed(url: str, jar: Path) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        body = {"username": "owner", "email": "owner@example.com", "password": PASSWORD}
        assert (await http.post("/api/v2/auth/register", json=body)).status_code == 201
        login = await http.post(
            "/api/v2/auth/login", json={"username": "owner", "password": PASSWORD}
        )
        http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        await http.post(
            "/api/v2/auth/register",
            json={"username": "newcomer", "email": "new@example.com", "password": PASSWORD},
        )
        server = (
            await http.post(
                "/api/v2/servers/",
                json={
                    "name": "survival",
                    "server_type": "custom",
                    "version": "1.20.4",
                    "memory_mb": 512,
                    "eula_accepted": True,
                },
            )
        ).json()
        with jar.open("rb") as handle:
            await http.put(
                f"/api/v2/servers/{server['id']}/jar", files={"file": ("server.jar", handle)}
            )
        group = (
            await http.post(
                "/api/v2/groups/", json={"name": "admins", "group_type": "op", "op_level": 4}
            )
        ).json()
        await http.post(
            f"/api/v2/groups/{group['id']}/players", json={"name": "Alex", "mode": "offline"}
        )
        await http.post(f"/api/v2/groups/{group['id']}/servers/{server['id']}")
        await http.post(f"/api/v2/servers/{server['id']}/start")
        await http.post(f"/api/v2/servers/{server['id']}/backups", json={"name": "nightly"})
        return str(server["id"])


async def _shoot(page: Page, name: str, kind: str, hash_: str, wait_for: str) -> None:
    await page.evaluate(f"location.hash = {hash_!r}")
    await expect(page.get_by_text(wait_for).first).to_be_visible(timeout=60_000)
    await page.wait_for_timeout(600)
    await page.screenshot(path=str(OUT / f"{name}-{kind}.png"), full_page=True)


async def test_screenshots(browser: Browser, live_server, start_worker, fake_jar) -> None:
    start_worker()
    server_id = await _seed(live_server.url, fake_jar)
    OUT.mkdir(parents=True, exist_ok=True)
    for kind, (width, height, scheme) in VIEWPORTS.items():
        context = await browser.new_context(
            viewport={"width": width, "height": height}, color_scheme=scheme
        )
        page = await context.new_page()
        await page.goto(f"{live_server.url}/")
        await expect(page.get_by_role("heading", name="Sign in to mcdash")).to_be_visible()
        await page.screenshot(path=str(OUT / f"signin-{kind}.png"))
        await page.get_by_label("Username").fill("owner")
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("td .badge").first).to_be_visible()
        await expect(page.get_by_text("running").first).to_be_visible(timeout=60_000)
        await page.screenshot(path=str(OUT / f"servers-{kind}.png"), full_page=True)
        base = f"#/servers/{server_id}"
        await _shoot(page, "console", kind, f"{base}/console", "For help, type")
        await page.get_by_label("Command").fill("list")
        await page.get_by_label("Command").press("Enter")
        await _shoot(page, "console", kind, f"{base}/console", "players online")
        await _shoot(page, "files", kind, f"{base}/files", "server.properties")
        await page.get_by_role("button", name="server.properties").click()
        await page.wait_for_timeout(500)
        await page.screenshot(path=str(OUT / f"editor-{kind}.png"), full_page=True)
        await _shoot(page, "backups", kind, f"{base}/backups", "Schedules")
        await _shoot(page, "server-groups", kind, f"{base}/groups", "Effective lists")
        await _shoot(page, "activity", kind, f"{base}/activity", "owner")
        await _shoot(page, "status", kind, f"{base}/overview", "latest")
        await _shoot(page, "groups", kind, "#/groups", "admins")
        await _shoot(page, "notifications", kind, "#/notifications", "Notifications")
        await _shoot(page, "admin-users", kind, "#/admin/users", "newcomer")
        await _shoot(page, "admin-nodes", kind, "#/admin/nodes", "local")
        await _shoot(page, "admin-sync", kind, "#/admin/sync", "Database and nodes")
        await context.close()
