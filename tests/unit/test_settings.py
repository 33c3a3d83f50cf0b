"""Settings refuse what would leave an install open: weak keys, bad limits, vague proxies."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.cli import main
from app.settings import InsecureSetting, Settings

K8S_EXAMPLE_KEY = "CHANGE-ME-example-jwt-secret-use-at-least-32-random-bytes"

WEAK_SECRETS = {
    "one-char-a": "a",
    "empty": "",
    "changeme": "changeme",
    "secret": "secret",
    "31-random-bytes": secrets.token_hex(16)[:31],
    "k8s-example-placeholder": K8S_EXAMPLE_KEY,
    "changeme-padded-to-40": "changeme" * 5,
    "replace-me-in-a-long-key": "replace-me-with-a-real-key-0123456789abcdef",
    "your-secret-key-here": "your-secret-key-here-please-0123456789",
    "32-times-the-same-char": "x" * 32,
    "two-chars-repeated": "ab" * 32,
}


@pytest.mark.parametrize("secret", WEAK_SECRETS.values(), ids=WEAK_SECRETS.keys())
def test_weak_jwt_secrets_are_refused(secret):
    with pytest.raises(InsecureSetting, match="MCDASH_JWT_SECRET") as refused:
        Settings(_env_file=None, jwt_secret=secret)
    assert "\n" not in str(refused.value)
    assert "token_urlsafe" in str(refused.value)


@pytest.mark.parametrize(
    "secret",
    [secrets.token_urlsafe(48), secrets.token_hex(32), "integration-test-secret-0123456789"],
    ids=["token-urlsafe-48", "token-hex-32", "the-suite-key"],
)
def test_strong_jwt_secrets_are_kept(secret):
    assert Settings(_env_file=None, jwt_secret=secret).jwt_key() == secret


def test_a_weak_key_file_is_refused(tmp_path):
    (tmp_path / "jwt.key").write_text("short\n")
    with pytest.raises(InsecureSetting, match=r"jwt\.key"):
        Settings(_env_file=None, data_dir=tmp_path).jwt_key()


def test_a_generated_key_file_is_accepted(tmp_path):
    key = Settings(_env_file=None, data_dir=tmp_path).jwt_key()
    assert len(key) >= 32


@pytest.mark.parametrize(
    "secret", ["tiny-key-Qz7", K8S_EXAMPLE_KEY], ids=["12-bytes", "k8s-example"]
)
def test_mcdash_prints_the_refusal_as_one_line_without_the_secret(monkeypatch, capsys, secret):
    monkeypatch.setenv("MCDASH_JWT_SECRET", secret)
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("mcdash migrate: error: MCDASH_JWT_SECRET")
    assert secret not in err


BAD_LIMITS = {
    "no-period": "100",
    "unknown-period-fortnight": "5/fortnight",
    "zero-per-minute": "0/minute",
    "two-limits": "10/second;100/minute",
    "words": "lots",
}


@pytest.mark.parametrize("field", ["rate_limit_api_general", "rate_limit_websocket"])
@pytest.mark.parametrize("value", BAD_LIMITS.values(), ids=BAD_LIMITS.keys())
def test_malformed_rate_limits_are_refused(field, value):
    with pytest.raises(ValidationError, match="is not one rate limit"):
        Settings(_env_file=None, **{field: value})


def test_trusted_proxies_default_to_none_and_parse_lists(monkeypatch):
    assert Settings(_env_file=None).trusted_proxies == []
    monkeypatch.setenv("MCDASH_TRUSTED_PROXIES", "10.0.0.1, 192.168.0.0/16")
    assert Settings(_env_file=None).trusted_proxies == ["10.0.0.1/32", "192.168.0.0/16"]
    monkeypatch.setenv("MCDASH_TRUSTED_PROXIES", '["::1", "172.16.0.0/12"]')
    assert Settings(_env_file=None).trusted_proxies == ["::1/128", "172.16.0.0/12"]


@pytest.mark.parametrize("value", ["*", "localhost", "10.0.0.300", "10.0.0.0/33"], ids=str)
def test_trusted_proxies_must_be_addresses_or_networks(monkeypatch, value):
    monkeypatch.setenv("MCDASH_TRUSTED_PROXIES", value)
    with pytest.raises(ValidationError, match="trusted proxies"):
        Settings(_env_file=None)


def test_the_k8s_example_secret_ships_no_usable_key():
    example = Path(__file__).parents[2] / "k8s" / "secret.example.yaml"
    [value] = re.findall(r'^\s*MCDASH_JWT_SECRET:\s*"([^"]*)"', example.read_text(), re.M)
    with pytest.raises(InsecureSetting):
        Settings(_env_file=None, jwt_secret=value)
