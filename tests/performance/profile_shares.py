"""Where an API process's time goes, from py-spy's collapsed stacks (`--format raw`).

A sample under a concern's frames (rate limiting, token checks, logging, metrics) is that
concern's, whatever it calls: a Redis call made by the rate limiter counts as rate limiting.
Any other sample belongs to the deepest layer it is in (serialization, database, dependency
solving, routing, middleware, uvicorn's protocol, the event loop). Run: `python -m tests.performance.profile_shares FILE`.
"""

from __future__ import annotations

import re
import sys
from collections import Counter

# Work done on behalf of one concern, wherever it sits in the stack: a sample under one of
# these frames is that concern's, whatever it calls (a Redis round trip, say).
CONCERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("rate limiting", r"RateLimiter\.hit|limits/|LocalRateLimit|rate_limit"),
        (
            "token checks",
            r"\.authenticate \(|JwtTokenService|SignedPermissionsCache|jose/"
            r"|PrincipalCache|\.identify \(",
        ),
        ("logging", r"structlog|logging/"),
        ("metrics", r"prometheus_client"),
    )
)
# The layers a request passes through: a sample is the deepest layer's it is in.
LAYERS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        (
            "serialization",
            r"dump_json|pydantic|json/|orjson|fastapi/encoders|JSONResponse"
            r"|serialize_response",
        ),
        ("database", r"asyncpg|repositories\.py"),
        (
            "dependency solving",
            r"fastapi/dependencies/|solve_dependencies|app/shared/dependencies"
            r"|server_filter",
        ),
        ("handler and bus", r"app/shared/bus\.py|application/queries\.py|api/routes\.py"),
        ("routing", r"starlette/routing|fastapi/routing"),
        (
            "middleware",
            r"app/shared/observability\.py|app/shared/bodies\.py|ratelimit\.py"
            r"|starlette/middleware|fastapi/telemetry|fastapi/_body_limit|_exception_handler"
            r"|applications\.py",
        ),
        ("http protocol (uvicorn)", r"uvicorn/protocols|httptools"),
        ("redis client", r"redis/"),
        ("event loop", r"asyncio/|uvloop|runners\.py"),
    )
)


def category(stack: str) -> str:
    for name, pattern in CONCERNS:
        if pattern.search(stack):
            return name
    for frame in reversed(stack.split(";")):
        for name, pattern in LAYERS:
            if pattern.search(frame):
                return name
    return "other"


def shares(lines: list[str]) -> tuple[Counter[str], int]:
    counts: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        counts[category(stack)] += samples
    return counts, total


def table(path: str) -> str:
    with open(path) as handle:
        counts, total = shares(handle.readlines())
    rows = [
        f"py-spy {path}: {total} samples (busy, not idle)",
        "| where | share |",
        "| --- | --- |",
    ]
    rows += [f"| {name} | {count / total:.1%} |" for name, count in counts.most_common()]
    return "\n".join(rows)


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        print(table(argument))
