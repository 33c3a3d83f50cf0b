"""create_app(): the FastAPI application, its routers and its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.backups.api.routes import router as backups_router
from app.backups.api.websockets import router as backups_ws_router
from app.bootstrap import bootstrap
from app.files.api.routes import router as files_router
from app.groups.api.routes import access_router as groups_access_router
from app.groups.api.routes import router as groups_router
from app.monitoring.probes import ReadinessProbe
from app.monitoring.routes import router as monitoring_router
from app.servers.api.nodes import router as nodes_router
from app.servers.api.routes import router as servers_router
from app.servers.api.routes import versions_router
from app.servers.api.websockets import router as servers_ws_router
from app.servers.api.websockets import tickets_router
from app.settings import Settings
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
from app.users.api.routes import admin_router, auth_router, users_router

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
        app.state.readiness = ReadinessProbe(container.engine, container.redis, head_revisions())
        app.state.hub = PubSubHub(container.redis)
        app.state.principals = PrincipalWatch(app.state.hub, container.authenticator)
        tasks = [
            asyncio.create_task(app.state.hub.run(), name="pubsub-hub"),
            asyncio.create_task(app.state.principals.run(), name="principal-watch"),
        ]
        if settings.relay_enabled:
            tasks.append(asyncio.create_task(container.relay.run(), name="event-relay"))
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
    for router in (
        monitoring_router,
        auth_router,
        users_router,
        admin_router,
        servers_router,
        versions_router,
        tickets_router,
        servers_ws_router,
        nodes_router,
        groups_router,
        groups_access_router,
        files_router,
        backups_router,
        backups_ws_router,
    ):
        app.include_router(router)
    return app
