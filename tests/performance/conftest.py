"""Benchmarks run against the same real stack as the e2e tests."""

from tests.e2e.conftest import (  # noqa: F401 - fixtures
    dashboard,
    fake_jar,
    live_server,
    stack_env,
    start_worker,
)
