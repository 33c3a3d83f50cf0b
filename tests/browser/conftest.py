"""Headless Debian Chromium driven by Playwright against the real stack (API, worker, fake jar).

No browser is downloaded: the system Chromium (`apt-get install chromium`, done by
scripts/bootstrap when root) is launched by path. Without it the tests fail, saying so.
A failing test leaves a screenshot in .screenshots/failures/ (gitignored).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.e2e.conftest import fake_jar, live_server, stack_env, start_worker

__all__ = ["fake_jar", "live_server", "stack_env", "start_worker"]

ROOT = Path(__file__).resolve().parents[2]
FAILURES = ROOT / ".screenshots" / "failures"
# Short-lived access tokens, so a journey of a minute sees the silent refresh happen.
ACCESS_TOKEN_TTL_SECONDS = 30


def chromium_path() -> str:
    found = os.environ.get("MCDASH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).exists():
        pytest.fail(
            f"Chromium not found ({found}): the browser tests need Debian's chromium; "
            "run scripts/bootstrap as root or `apt-get install -y chromium` "
            "(or point MCDASH_CHROMIUM at a Chromium binary)"
        )
    return found


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(autouse=True)
def short_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API process takes its environment from stack_env, which copies os.environ."""
    monkeypatch.setenv("MCDASH_ACCESS_TOKEN_TTL_SECONDS", str(ACCESS_TOKEN_TTL_SECONDS))


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_path()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    opened = await context.new_page()
    opened.set_default_timeout(15_000)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on(
        "console",
        lambda message: (
            errors.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    opened.script_errors = errors  # type: ignore[attr-defined]
    try:
        yield opened
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            FAILURES.mkdir(parents=True, exist_ok=True)
            await opened.screenshot(path=str(FAILURES / f"{request.node.name}.png"), full_page=True)
        await context.close()
