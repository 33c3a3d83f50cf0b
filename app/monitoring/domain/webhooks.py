"""Webhooks: where a delivery may go, how its body is signed and shaped, when it is retried."""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from app.shared.domain import DomainError, InvalidInput, unstorable_character

ALL_EVENTS = "*"
TEST_EVENT = "WebhookTest"
SIGNATURE_HEADER = "X-Mcdash-Signature-256"
SECRET_MIN, SECRET_MAX = 16, 200
URL_MAX = 2048
EVENT_TYPES_MAX = 50
_RETRY_CAP_SECONDS = 6 * 3600.0
_NAMESPACE = uuid.UUID("5f1d5a38-6a57-4b0e-9c43-2c2d0c3e7f11")


class WebhookFormat(enum.StrEnum):
    JSON = "json"
    DISCORD = "discord"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookLimitReached(DomainError):
    status = 409
    slug = "webhook-limit-reached"
    title = "Webhook limit reached"


class ForbiddenAddress(InvalidInput):
    """The URL names, or resolves to, an address a webhook may not reach."""

    slug = "webhook-address-forbidden"
    title = "Webhook address forbidden"


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A webhook URL taken apart: what to resolve, and on which port."""

    url: str
    host: str
    port: int


def parse_url(url: str) -> Target:
    """Refuse what is not an absolute http(s) URL with a host; `file://` and friends included."""
    if len(url) > URL_MAX or unstorable_character(url) or any(c.isspace() for c in url):
        raise InvalidInput("the webhook URL is too long or holds control characters or spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"the webhook URL is malformed: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("a webhook URL must be http:// or https://", scheme=parts.scheme)
    if not parts.hostname:
        raise InvalidInput("a webhook URL needs a host")
    if parts.username or parts.password:
        raise InvalidInput("a webhook URL may not carry credentials; use the secret")
    default = 443 if parts.scheme == "https" else 80
    return Target(url=url, host=parts.hostname, port=port or default)


def forbidden_reason(address: str) -> str | None:
    """Why a webhook may not reach `address` (loopback, private, ...), or None when it may."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return forbidden_reason(str(embedded))
    for reason, hit in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("not globally routable", not ip.is_global),
    ):
        if hit:
            return reason
    return None


def check_addresses(host: str, addresses: Iterable[str], *, allow_private: bool) -> None:
    """Every address the host resolves to must be public, unless the admin setting allows it."""
    found = list(addresses)
    if not found:
        raise InvalidInput(f"the webhook host {host!r} does not resolve")
    if allow_private:
        return
    for address in found:
        if (reason := forbidden_reason(address)) is not None:
            raise ForbiddenAddress(
                f"the webhook host {host!r} resolves to {address}, a {reason} address",
                address=address,
            )


def check_event_types(wanted: Iterable[str], known: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(wanted))
    if not chosen:
        raise InvalidInput("a webhook needs at least one event type (or '*')")
    if len(chosen) > EVENT_TYPES_MAX:
        raise InvalidInput(f"at most {EVENT_TYPES_MAX} event types")
    if ALL_EVENTS in chosen and len(chosen) > 1:
        raise InvalidInput("'*' already means every event type; name no others beside it")
    unknown = sorted(set(chosen) - {*known, ALL_EVENTS})
    if unknown:
        raise InvalidInput(f"unknown event types: {', '.join(unknown[:10])}", unknown=unknown[:10])
    return chosen


def check_secret(secret: str) -> str:
    if not SECRET_MIN <= len(secret) <= SECRET_MAX or unstorable_character(secret):
        raise InvalidInput(
            f"a webhook secret is {SECRET_MIN} to {SECRET_MAX} printable characters long"
        )
    return secret


def sign(secret: str, body: bytes) -> str:
    """GitHub's scheme: `sha256=` and the hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode_body(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def event_id(
    event_type: str, aggregate_id: uuid.UUID, occurred_at: datetime, data: Any
) -> uuid.UUID:
    """A stable id of one stored event, so a redelivered event makes no second delivery."""
    seed = f"{event_type}|{aggregate_id}|{occurred_at.isoformat()}|{encode_body({'d': data})!r}"
    return uuid.uuid5(_NAMESPACE, seed)


def retry_delay(attempts: int, base_seconds: float) -> float:
    """Exponential backoff after the `attempts`-th failure: base, 2 base, 4 base, ... capped."""
    return float(min(base_seconds * 2 ** max(0, attempts - 1), _RETRY_CAP_SECONDS))


def discord_body(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Discord's webhook shape: one summary line and an embed of the event's fields."""
    event = str(payload["event"])
    server = payload.get("server_id")
    summary = f"mcdash: {event}" + (f" on server {server}" if server else "")
    data = payload.get("data") or {}
    fields = [
        {
            "name": str(name)[:256],
            "value": (json.dumps(value) if not isinstance(value, str) else value)[:1024] or "-",
            "inline": True,
        }
        for name, value in list(data.items())[:25]
    ]
    return {
        "content": summary[:2000],
        "embeds": [
            {
                "title": event[:256],
                "timestamp": payload.get("occurred_at"),
                "fields": fields,
                "footer": {"text": f"delivery {payload['id']}"},
            }
        ],
    }
