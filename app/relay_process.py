"""`mcdash relay`: the event relay in a process of its own.

In an API process the relay shares one event loop with the requests; under load each of its
database round trips waits behind them, and it falls behind the commands (issue 13). On its own
it has a loop, and a core, to itself. Several relays may run: each drains with
`FOR UPDATE SKIP LOCKED`, so no event is dispatched twice at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal

import structlog

from app.bootstrap import bootstrap
from app.monitoring.infrastructure.metrics_exports import serve_process_metrics
from app.settings import Settings

log = structlog.get_logger(__name__)


async def run_relay(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Dispatch committed events until SIGINT/SIGTERM (or `stop`)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    container = bootstrap(settings)
    serve_process_metrics(settings.relay_metrics_listen)
    relay = asyncio.create_task(container.relay.run(), name="event-relay")
    gc.collect()
    gc.freeze()  # as in the API (app/main.py): full collections walk only what runs made
    log.info("relay_started")
    try:
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({relay, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if relay.done():
            relay.result()  # the relay never returns; an exception ends the process
    finally:
        relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay
        await container.close()
        log.info("relay_stopped")
