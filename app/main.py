"""create_app(): the FastAPI application, its routers and its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

import asyncpg
import structlog
from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.bootstrap import CONTEXTS, bootstrap
from app.monitoring import module as monitoring
from app.monitoring.probes import ReadinessProbe
from app.settings import Settings
from app.shared.barrier import ProjectionBarrier
from app.shared.bodies import BodyLimitMiddleware
from app.shared.migrations import head_revisions
from app.shared.observability import (
    RequestContextMiddleware,
    configure_logging,
    init_sentry,
)
from app.shared.openapi import install_openapi
from app.shared.principals import PrincipalWatch
from app.shared.problems import install_problem_handlers
from app.shared.ratelimit import ApiRateLimitMiddleware
from app.shared.realtime import PubSubHub
from app.shared.websockets import SocketTickets
from app.web import install_dashboard

log = structlog.get_logger(__name__)

DESCRIPTION = """
Self-hosted control plane for Minecraft Java servers.

Authenticate with `POST /api/v2/auth/login`, then send the access token as
`Authorization: Bearer <token>`. Errors are `application/problem+json` (RFC 9457).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level, json_output=settings.log_json)
    init_sentry(
        settings.sentry_dsn.get_secret_value() if settings.sentry_dsn else None,
        environment=settings.environment,
        traces_sample_rate=settings.sentry_traces_sample_rate,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = bootstrap(settings)
        app.state.settings = settings
        app.state.container = container
        app.state.bus = container.bus
        app.state.authenticator = container.authenticator
        app.state.limiter = container.limiter
        infra = container.infra
        try:  # the first reads (a socket's checks, say) then wait for no connection
            async with asyncio.timeout(5):
                await infra.read_pool.open()
        except (TimeoutError, OSError, asyncpg.PostgresError):
            log.warning("read_pool_not_opened", exc_info=True)  # it opens on first use
        app.state.readiness = ReadinessProbe(infra.engine, infra.redis, head_revisions())
        app.state.tickets = SocketTickets(
            infra.redis, ttl_seconds=settings.websocket_ticket_ttl_seconds
        )
        app.state.hub = PubSubHub(container.redis)
        app.state.principals = PrincipalWatch(app.state.hub, container.authenticator)
        tasks = [
            asyncio.create_task(app.state.hub.run(), name="pubsub-hub"),
            asyncio.create_task(app.state.principals.run(), name="principal-watch"),
        ]
        if settings.relay_enabled:  # else `mcdash relay` runs it in a process of its own
            tasks.append(asyncio.create_task(container.relay.run(), name="event-relay"))
        if settings.projections_enabled:
            # The read models, each tailing the event store with a checkpoint of its own.
            tasks.append(asyncio.create_task(container.projections.run(), name="projections"))
            for work in monitoring.background(infra, container.deps["monitoring"]):
                tasks.append(asyncio.create_task(work(), name=work.__qualname__))
            # A client's next read sees its write: commands wait for their projections.
            container.bus.barrier = ProjectionBarrier(
                infra.projection_engine, container.projections
            )
        # What startup built (modules, routes, schemas) stays out of every later collection:
        # a full collection then walks only what requests made, and pauses requests less.
        gc.collect()
        gc.freeze()
        log.info("api_started", environment=settings.environment)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await app.state.principals.aclose()
            await container.close()
            log.info("api_stopped")

    app = FastAPI(
        title="mcdash",
        version="2.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
        openapi_url="/openapi.json",
    )
    install_problem_handlers(app)
    install_openapi(app)
    app.add_middleware(BodyLimitMiddleware, settings=settings)  # inside the request context
    app.add_middleware(ApiRateLimitMiddleware)
    app.add_middleware(RequestContextMiddleware)
    if settings.trusted_proxies:
        # Outermost: logs, rate limits and audit metadata all see the client it names.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    for context in CONTEXTS:
        for router in context.routers():
            app.include_router(router)
    install_dashboard(app)
    return app
