"""Unit tests run against the real `bootstrap()` with in-memory fakes: no database, no Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes import FakeApp, fake_app


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[FakeApp]:
    """The app on fakes; a test module may define its own `world` with overrides."""
    app = fake_app(tmp_path)
    yield app
    await app.close()
