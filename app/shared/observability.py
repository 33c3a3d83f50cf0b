"""Structured JSON logs, request ids, Prometheus HTTP metrics and Sentry."""

from __future__ import annotations

import functools
import logging
import re
import sys
import time
import uuid
from typing import Any

import structlog
from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.shared.context import actor_id_var, client_addr_var, request_id_var

REQUESTS = Counter(
    "mcdash_http_requests_total", "HTTP requests handled", ["method", "route", "status"]
)
LATENCY = Histogram(
    "mcdash_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_PROGRESS = Gauge("mcdash_http_requests_in_progress", "HTTP requests in progress", ["method"])

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@functools.lru_cache(maxsize=64)
def _in_progress(method: str) -> Any:
    return IN_PROGRESS.labels(method)


@functools.lru_cache(maxsize=4096)
def _route_metrics(method: str, template: str, status: int) -> tuple[Any, Any]:
    """The children of a route's series: labels() takes a lock and builds keys every call.
    Templates are the app's routes (or "unmatched"), so the keys are few."""
    return REQUESTS.labels(method, template, str(status)), LATENCY.labels(method, template)


def configure_logging(level: str = "INFO", *, json_output: bool = True) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(message)s", force=True)


def init_sentry(dsn: str | None, *, environment: str, traces_sample_rate: float) -> bool:
    if not dsn:
        return False
    import sentry_sdk

    sentry_sdk.init(dsn=dsn, environment=environment, traces_sample_rate=traces_sample_rate)
    return True


class RequestContextMiddleware:
    """Gives each request an id (echoed as X-Request-ID), binds it to logs and records metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = structlog.get_logger("mcdash.access")

    @staticmethod
    def _bind(scope: Scope) -> tuple[str, str | None]:
        given = ""
        for name, value in scope.get("headers") or ():
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        client = scope.get("client")
        client_addr = client[0] if client else None
        request_id_var.set(request_id)
        client_addr_var.set(client_addr)
        actor_id_var.set(None)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        return request_id, client_addr

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id, client_addr = self._bind(scope)
        if scope["type"] == "websocket":
            # What a socket does (console commands) is logged and audited with these too.
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        in_progress = _in_progress(method)
        in_progress.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            in_progress.dec()
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            requests, latency = _route_metrics(method, template, status)
            requests.inc()
            latency.observe(elapsed)
            if template not in ("/metrics", "/health"):
                self.log.info(
                    "request",
                    method=method,
                    route=template,
                    path=scope["path"],
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                    client=client_addr,
                )
