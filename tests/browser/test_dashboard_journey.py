"""The dashboard in headless Chromium against the real API, worker and fake server jar:
sign in, create a custom server, upload the jar, accept the EULA, start it, type `list`,
edit server.properties through a 412 conflict, take a backup, stop, and lose the session."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
from playwright.async_api import Page, WebSocketRoute, expect

pytestmark = pytest.mark.e2e
PASSWORD = "Browser-Pass-2026"
NEW_PASSWORD = "Browser-Pass-2027!"
SLOW = 60_000
MAX_CONSOLE_LINES = 1000  # MAX_LINES in app/web/static/js/console.js
# Past the API's access-token lifetime (tests/browser/conftest.py sets it to 30 s).
ACCESS_WAIT = 34


async def sign_in(http: httpx.AsyncClient) -> None:
    login = await http.post("/api/v2/auth/login", json={"username": "owner", "password": PASSWORD})
    assert login.status_code == 200, login.text
    http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"


def refreshed(log_lines: list[str]) -> bool:
    """Whether the API answered a token refresh with 200 (its JSON request log says)."""
    for line in log_lines:
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("route") == "/api/v2/auth/refresh" and entry.get("status") == 200:
                return True
    return False


async def test_dashboard_journey(page: Page, live_server, start_worker, fake_jar) -> None:
    start_worker()
    index = httpx.get(f"{live_server.url}/")
    assert "script-src 'self'" in index.headers["content-security-policy"]

    # Register the first account (an admin), then a wrong password shows the problem's detail.
    await page.goto(f"{live_server.url}/")
    await expect(page.get_by_role("heading", name="Sign in to mcdash")).to_be_visible()
    await page.get_by_role("link", name="Create an account").click()
    await page.get_by_label("Username").fill("owner")
    await page.get_by_label("Email").fill("owner@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("heading", name="Servers")).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_label("Username").fill("owner")
    await page.get_by_label("Password").fill("not-the-password")
    await page.get_by_role("button", name="Sign in").click()
    refused = page.get_by_role("alert")
    await expect(refused).to_contain_text(re.compile("password", re.I))
    assert "[object Object]" not in await refused.inner_text()
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    signed_in_at = time.monotonic()
    await expect(page.get_by_role("heading", name="Servers")).to_be_visible()

    # A custom server: create it, upload the fake jar, accept the EULA, start it.
    await page.get_by_role("link", name="New server").click()
    await page.get_by_label("Name").fill("survival")
    await page.get_by_label("Type").select_option("custom")
    await page.get_by_label("Memory (MiB)").fill("512")
    await page.get_by_role("button", name="Create server").click()
    await expect(page.get_by_role("heading", name="survival")).to_be_visible()
    server_id = page.url.split("#/servers/")[1].split("/")[0]
    await page.get_by_label("Server jar").set_input_files(str(fake_jar))
    await page.get_by_role("button", name="Upload jar").click()
    await expect(page.get_by_text("Jar installed")).to_be_visible()
    await page.get_by_role("button", name="Accept the EULA").click()
    await expect(page.get_by_text("The Minecraft EULA is accepted.")).to_be_visible()
    await page.get_by_role("button", name="Start", exact=True).click()
    state = page.locator(".state .badge")
    await expect(state).to_have_text("running", timeout=SLOW)

    # The console: `list` and its reply; a refused verb is shown inline. The socket goes
    # through a Playwright route, so the test can drop it and feed it a flood of lines.
    sockets: list[WebSocketRoute] = []

    def relay(socket: WebSocketRoute) -> None:
        socket.connect_to_server()
        sockets.append(socket)

    await page.route_web_socket(re.compile(r"/api/v2/ws/servers/[^/]+/console"), relay)
    await page.get_by_role("link", name="Console").click()
    console = page.get_by_role("log", name="Console output")
    await expect(console).to_contain_text("For help, type", timeout=SLOW)
    command = page.get_by_label("Command")
    await command.fill("list")
    await command.press("Enter")
    await expect(console).to_contain_text("players online", timeout=15_000)
    await command.fill("stop")
    await command.press("Enter")
    await expect(console.locator(".refused")).to_be_visible()
    refusal = await page.locator(".panel .alert").inner_text()
    assert refusal.strip()
    assert "[object Object]" not in refusal
    await command.press("ArrowUp")
    await expect(command).to_have_value("stop")

    # A dropped socket reconnects (backoff, a new ticket) and the backlog adds no duplicate.
    await sockets[0].close(code=1011, reason="dropped by the test")
    await expect(page.get_by_text("reconnecting")).to_be_visible()
    await expect(page.locator(".console-state")).to_have_text("Live", timeout=15_000)
    assert len(sockets) == 2
    await command.fill("list")
    await command.press("Enter")
    await expect(console.locator(".line", has_text="players online")).to_have_count(2)
    assert await console.locator(".line", has_text="For help, type").count() == 1

    # 1,200 lines in 24 messages of 50, far above 50 lines/s: the DOM keeps the last 1,000
    # and the page stays responsive.
    flood_started = time.monotonic()
    for batch in range(24):
        lines = [
            {
                "id": f"{9_000_000_000_000 + batch}-{n}",
                "line": f"[flood] line {batch * 50 + n}",
                "at": 0,
            }
            for n in range(50)
        ]
        sockets[1].send(json.dumps({"type": "lines", "lines": lines}))
        await page.wait_for_timeout(20)
    await expect(console.locator(".line").last).to_have_text("[flood] line 1199")
    await expect(console.locator(".line")).to_have_count(MAX_CONSOLE_LINES)
    answered = time.monotonic()
    await page.evaluate("1")
    assert time.monotonic() - answered < 0.5
    print(f"flood of 1200 lines rendered in {answered - flood_started:.2f} s")

    # server.properties: someone else saves it meanwhile; the 412 shows the diff, mine wins.
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        await sign_in(http)
        files = f"/api/v2/servers/{server_id}/files"
        await page.get_by_role("link", name="Files").click()
        await page.get_by_role("button", name="server.properties").click()
        editor = page.get_by_label("Contents of server.properties")
        await expect(editor).to_have_value(re.compile("server-port"))
        current = await http.get(f"{files}/server.properties")
        theirs = current.json()["content"] + "# saved by someone else\n"
        saved = await http.put(
            f"{files}/server.properties",
            json={"content": theirs},
            headers={"If-Match": current.headers["etag"]},
        )
        assert saved.status_code == 200, saved.text
        await editor.fill((await editor.input_value()) + "# saved in the browser\n")
        await page.get_by_role("button", name="Save", exact=True).click()
        conflict = page.locator(".conflict")
        await expect(conflict).to_contain_text("changed since you opened it")
        await expect(conflict.locator(".d-del")).to_contain_text("saved by someone else")
        await expect(conflict.locator(".d-add")).to_contain_text("saved in the browser")
        await page.get_by_role("button", name="Keep my version").click()
        await expect(conflict).to_have_count(0)
        final = (await http.get(f"{files}/server.properties")).json()["content"]
        assert "# saved in the browser" in final
        assert "# saved by someone else" not in final

        # History: the other writer's version, its diff to the file now, and a restore.
        await page.get_by_role("button", name="History").click()
        # 1 the original, 2 theirs, 3 my rejected attempt, 4 mine.
        theirs_row = page.get_by_role("row").filter(has_text="#2")
        await theirs_row.get_by_role("button", name="Diff").click()
        await expect(page.locator(".card .diff .d-add")).to_contain_text("saved in the browser")
        await theirs_row.get_by_role("button", name="Restore").click()
        await page.get_by_role("button", name="Yes, restore version 2").click()
        await expect(page.get_by_text("Restored version 2.")).to_be_visible()
        restored = (await http.get(f"{files}/server.properties")).json()["content"]
        assert restored == theirs

        # A backup, followed to completion.
        await page.get_by_role("link", name="Backups").click()
        await page.get_by_role("button", name="Take a backup").click()
        await expect(page.locator("tr[data-backup] .badge").first).to_have_text(
            "completed", timeout=SLOW
        )

        # Stop, and the list shows it.
        await page.get_by_role("button", name="Stop", exact=True).click()
        await expect(state).to_have_text("stopped", timeout=SLOW)
        await (
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Servers").click()
        )
        row = page.get_by_role("row", name=re.compile("survival"))
        await expect(row.locator(".badge")).to_have_text("stopped")
        await row.get_by_role("button", name="Start survival").click()
        await expect(row.locator(".badge")).to_have_text(re.compile("starting|running"))
        await row.get_by_role("button", name="Stop survival").click(timeout=SLOW)
        await expect(row.locator(".badge")).to_have_text("stopped", timeout=SLOW)

        # The access token expired a while ago: the next request refreshed it silently.
        left = ACCESS_WAIT - (time.monotonic() - signed_in_at)
        if left > 0:
            await page.wait_for_timeout(left * 1000)
        main_nav = page.get_by_role("navigation", name="Main")
        await main_nav.get_by_role("link", name="Groups").click()
        await expect(page.get_by_text("No groups yet.")).to_be_visible()
        assert refreshed(live_server.log_lines()), "the dashboard never refreshed its token"

        # A group with a player, attached to the server from the server's page.
        await page.get_by_label("Name").fill("moderators")
        await page.get_by_label("Type").select_option("op")
        await page.get_by_role("button", name="Create group").click()
        await page.get_by_role("link", name="moderators").click()
        await page.get_by_label("Player name").fill("Alex")
        await page.get_by_label("Mode").select_option("offline")
        await page.get_by_role("button", name="Add player").click()
        await expect(page.get_by_role("cell", name="Alex", exact=True)).to_be_visible()
        await page.evaluate(f"location.hash = '#/servers/{server_id}/groups'")
        await page.get_by_label("Group", exact=True).select_option(label="moderators (op)")
        await page.get_by_role("button", name="Attach group").click()
        await expect(page.get_by_role("button", name="Detach")).to_be_visible()
        await sign_in(http)  # the test's own token lives 30 s too
        access = (await http.get(f"/api/v2/servers/{server_id}/access")).json()
        assert [group["name"] for group in access["groups"]] == ["moderators"]

        # Admin: a newcomer waits for approval until the admin approves them.
        newcomer = {"username": "newcomer", "email": "new@example.com", "password": PASSWORD}
        assert (await http.post("/api/v2/auth/register", json=newcomer)).status_code == 201
        await main_nav.get_by_role("link", name="Admin").click()
        waiting = page.get_by_role("row").filter(has_text="newcomer")
        await expect(waiting).to_contain_text("waiting for approval")
        await waiting.get_by_role("button", name="Approve").click()
        await expect(waiting).to_contain_text("active")

        # A password change elsewhere ends the browser's session: back to sign-in, with a word.
        await sign_in(http)
        changed = await http.put(
            "/api/v2/users/me", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        )
        assert changed.status_code == 200, changed.text
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Servers").click()
    await expect(page.get_by_role("heading", name="Sign in to mcdash")).to_be_visible(
        timeout=20_000
    )
    await expect(page.get_by_role("status").filter(has_text="sign in again")).to_be_visible()

    # A later account waits for approval.
    await page.get_by_role("link", name="Create an account").click()
    await page.get_by_label("Username").fill("latecomer")
    await page.get_by_label("Email").fill("late@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("heading", name="Waiting for approval")).to_be_visible()
    assert page.script_errors == []  # type: ignore[attr-defined]
