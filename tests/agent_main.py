"""A node agent alone in its own process, for tests that kill a node midway: it serves the
MCDASH_* settings of its environment on 127.0.0.1:0 and prints its URL on a line of its own."""

from __future__ import annotations

import asyncio
import sys

from app.settings import Settings
from tests.agent import running_agent


async def main(node: str) -> None:
    async with running_agent(Settings(), node) as url:
        print(url, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "local"))
