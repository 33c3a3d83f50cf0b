"""What the file history keeps of client data: a rejected write only up to its limit."""

from __future__ import annotations

import hashlib

import pytest

from tests.integration.test_files_api import api  # noqa: F401 - the shared fixture

KEEP = 1024


@pytest.fixture
def settings(settings):
    """The suite's settings with a small cap on what a rejected write keeps."""
    return settings.model_copy(update={"file_rejected_keep_bytes": KEEP})


async def lose_a_race(api, content: str) -> dict:  # noqa: F811
    (api.root / "config.yml").write_text("a: 1\n")
    stale = (await api.get("config.yml")).headers["etag"]
    (api.root / "config.yml").write_text("a: 2\n")
    refused = await api.put("config.yml", content, **{"If-Match": stale})
    assert refused.status_code == 412, refused.text
    history = await api.history("config.yml")
    assert history[0]["outcome"] == "rejected"
    return history[0]


@pytest.mark.parametrize(
    "size",
    [pytest.param(KEEP + 1, id="rejected-write-1025-bytes"), pytest.param(60_000, id="60000")],
)
async def test_a_large_rejected_write_keeps_its_size_and_hash_not_its_bytes(api, size):  # noqa: F811
    content = "x" * (size - 1) + "\n"
    rejected = await lose_a_race(api, content)
    assert rejected["size"] == size
    assert rejected["sha256"] == hashlib.sha256(content.encode()).hexdigest()
    assert rejected["content_kept"] is False
    assert f"cut: rejected writes keep at most {KEEP} bytes" in rejected["note"]
    detail = (await api.get(f"config.yml/history/{rejected['version']}")).json()
    assert detail["content"] is None
    stored = await api.db.fetchval(
        "SELECT content FROM file_versions WHERE outcome = 'rejected' AND path = 'config.yml'"
    )
    assert stored is None
    assert (api.root / "config.yml").read_text() == "a: 2\n"


async def test_a_rejected_write_within_the_limit_is_kept_whole(api):  # noqa: F811
    content = "y" * (KEEP - 1) + "\n"
    rejected = await lose_a_race(api, content)
    assert rejected["content_kept"] is True
    assert rejected["note"] == "based on a stale read"
    detail = (await api.get(f"config.yml/history/{rejected['version']}")).json()
    assert detail["content"] == content
