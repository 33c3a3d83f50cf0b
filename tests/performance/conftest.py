"""Benchmarks run against the same real stack as the e2e tests, with the relay in the API or in
a process of its own."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from tests.e2e.conftest import (  # noqa: F401 - fixtures
    dashboard,
    fake_jar,
    live_server,
    stack_env,
    start_worker,
)


@pytest.fixture(params=["relay-in-api", "relay-process"])
def relay(request) -> str:
    """Where the relay runs: in the API process (a lone `mcdash api`), or as `mcdash relay`
    beside an API that leaves it alone (what `mcdash up`, compose and Kubernetes run). A module
    that asks for it passes its `stack_env` through `relay_layout`."""
    return str(request.param)


def relay_layout(env: dict[str, str], relay: str) -> dict[str, str]:
    return {**env, "MCDASH_RELAY_ENABLED": "false"} if relay == "relay-process" else env


@pytest.fixture
def relay_process(stack_env, relay, tmp_path) -> Iterator[psutil.Process | None]:  # noqa: F811
    if relay != "relay-process":
        yield None
        return
    with (tmp_path / "relay.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "relay"],
            env={**stack_env, "MCDASH_LOG_LEVEL": "INFO"},  # it says when it has started
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "relay_started" not in (tmp_path / "relay.log").read_text():
            assert proc.poll() is None, (tmp_path / "relay.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the relay never started"
            time.sleep(0.1)
        yield psutil.Process(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
