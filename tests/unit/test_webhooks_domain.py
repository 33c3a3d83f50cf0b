"""The webhook rules without I/O: which addresses are refused, the signature, the backoff,
the event type list, and the Discord shape."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime

import pytest

from app.monitoring.application.webhooks import KNOWN_EVENT_TYPES
from app.monitoring.domain.webhooks import (
    ForbiddenAddress,
    check_addresses,
    check_event_types,
    discord_body,
    event_id,
    forbidden_reason,
    parse_url,
    retry_delay,
    sign,
)
from app.shared.domain import InvalidInput


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("127.0.0.1", id="loopback"),
        pytest.param("10.0.0.5", id="private-10"),
        pytest.param("172.31.255.255", id="private-172"),
        pytest.param("192.168.0.1", id="private-192"),
        pytest.param("169.254.169.254", id="link-local-metadata"),
        pytest.param("0.0.0.0", id="unspecified"),
        pytest.param("224.0.0.1", id="multicast"),
        pytest.param("240.0.0.1", id="reserved"),
        pytest.param("100.64.1.1", id="carrier-nat"),
        pytest.param("::1", id="ipv6-loopback"),
        pytest.param("::ffff:10.0.0.1", id="v4-mapped-private"),
        pytest.param("::ffff:127.0.0.1", id="v4-mapped-loopback"),
        pytest.param("2002:7f00:1::", id="6to4-loopback"),
        pytest.param("fe80::1%eth0", id="link-local-scoped"),
        pytest.param("fc00::1", id="unique-local"),
        pytest.param("not-an-ip", id="garbage"),
    ],
)
def test_addresses_a_webhook_may_not_reach(address):
    assert forbidden_reason(address) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700:4700::1111", "8.8.8.8"])
def test_public_addresses_pass(address):
    assert forbidden_reason(address) is None


def test_one_private_address_among_public_ones_refuses_the_host():
    with pytest.raises(ForbiddenAddress):
        check_addresses("mixed.example", ["93.184.215.14", "10.0.0.1"], allow_private=False)
    check_addresses("mixed.example", ["93.184.215.14", "10.0.0.1"], allow_private=True)
    with pytest.raises(InvalidInput):
        check_addresses("nowhere.example", [], allow_private=True)


def test_url_parts_and_default_ports():
    assert parse_url("https://hooks.example/x").port == 443
    assert parse_url("http://hooks.example/x").port == 80
    assert parse_url("http://hooks.example:8080/").host == "hooks.example"
    for bad in ("file:///etc/passwd", "javascript:alert(1)", "http://", "http://a b/"):
        with pytest.raises(InvalidInput):
            parse_url(bad)


def test_the_signature_is_githubs_scheme():
    body = b'{"event":"ServerStarted"}'
    expected = hmac.new(b"k" * 16, body, hashlib.sha256).hexdigest()
    assert sign("k" * 16, body) == f"sha256={expected}"


def test_backoff_doubles_and_is_capped():
    assert [retry_delay(n, 10) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert retry_delay(40, 10) == 6 * 3600


def test_event_types_are_checked_against_the_known_ones():
    assert check_event_types(["ServerStarted", "ServerStarted"], KNOWN_EVENT_TYPES) == (
        "ServerStarted",
    )
    assert check_event_types(["*"], KNOWN_EVENT_TYPES) == ("*",)
    assert {"UserLoggedIn", "BackupCompleted", "FileModified"} <= set(KNOWN_EVENT_TYPES)
    for bad in ([], ["Nope"], ["*", "ServerStarted"]):
        with pytest.raises(InvalidInput):
            check_event_types(bad, KNOWN_EVENT_TYPES)


def test_a_stored_event_has_one_id():
    at = datetime(2026, 1, 1, tzinfo=UTC)
    aggregate = uuid.uuid4()
    first = event_id("ServerStarted", aggregate, at, {"pid": 1})
    assert first == event_id("ServerStarted", aggregate, at, {"pid": 1})
    assert first != event_id("ServerStarted", aggregate, at, {"pid": 2})


def test_the_discord_shape():
    payload = {
        "id": "d1",
        "event": "ServerCrashed",
        "occurred_at": "2026-01-01T00:00:00+00:00",
        "server_id": "s1",
        "data": {"exit_code": 1, "reason": "x" * 5000},
    }
    shaped = discord_body(payload)
    assert shaped["content"] == "mcdash: ServerCrashed on server s1"
    [embed] = shaped["embeds"]
    assert embed["title"] == "ServerCrashed"
    assert {f["name"]: f["value"] for f in embed["fields"]}["exit_code"] == "1"
    assert all(len(f["value"]) <= 1024 for f in embed["fields"])
