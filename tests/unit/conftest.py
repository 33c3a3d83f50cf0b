"""Unit tests run against the real `bootstrap()` with in-memory fakes: no database, no Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeApp, fake_app, fake_settings


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[FakeApp]:
    """The app on fakes; a test module may define its own `world` with overrides."""
    app = fake_app(tmp_path)
    yield app
    await app.close()


@pytest.fixture
async def world_with(tmp_path: Path) -> AsyncIterator[Callable[..., FakeApp]]:
    """Builds the app on fakes with other settings: `world_with(file_upload_max_bytes=1024)`."""
    built: list[FakeApp] = []

    def build(**settings: Any) -> FakeApp:
        built.append(fake_app(tmp_path, settings=fake_settings(tmp_path, **settings)))
        return built[-1]

    yield build
    for app in built:
        await app.close()
