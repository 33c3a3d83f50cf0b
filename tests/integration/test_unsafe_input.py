"""Input PostgreSQL or Redis cannot take, and numbers past their bounds: a 4xx, never a 500."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_backups_api import archive
from tests.integration.test_files_api import api  # noqa: F401 - the shared fixture

CONTROL = [
    pytest.param("a\x00b", id="nul-byte"),
    pytest.param("a\x07b", id="bell"),
    pytest.param("a\x1bb", id="escape"),
    pytest.param("a\x7fb", id="delete"),
    pytest.param("a\x85b", id="c1-next-line"),
    pytest.param("a\nb", id="newline"),
]
LIST_QUERIES = [
    pytest.param("/api/v2/users/", "search", "admin", id="users-search"),
    pytest.param("/api/v2/admin/users", "search", "admin", id="admin-users-search"),
    pytest.param("/api/v2/servers/", "search", "owner", id="servers-search"),
    pytest.param("/api/v2/groups/", "name", "owner", id="groups-name"),
]


def assert_invalid(response, *loc: str) -> dict:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert list(loc) in [error["loc"] for error in body["errors"]], body
    return body


async def send_json(api, method: str, url: str, body: dict, user: str = "owner"):  # noqa: F811
    """JSON as a client may write it: json.dumps escapes NUL and lone surrogates as \\uXXXX."""
    headers = {**api.users[user], "content-type": "application/json"}
    return await api.http.request(method, url, content=json.dumps(body), headers=headers)


@pytest.mark.parametrize(("url", "param", "user"), LIST_QUERIES)
@pytest.mark.parametrize("value", CONTROL)
async def test_control_characters_in_list_filters_are_a_422(api, url, param, user, value):  # noqa: F811
    response = await api.http.get(url, params={param: value}, headers=api.users[user])
    body = assert_invalid(response, "query", param)
    assert "control character" in body["detail"]


@pytest.mark.parametrize(("url", "param", "user"), LIST_QUERIES)
async def test_printable_unicode_filters_still_work(api, url, param, user):  # noqa: F811
    response = await api.http.get(url, params={param: "wörld 日本"}, headers=api.users[user])
    assert response.status_code == 200, response.text


def _bodies(sid: str, gid: str) -> list[tuple[str, str, dict, str, str]]:
    """(method, url, body, field, user) for every string a request stores or searches by."""
    server = {"server_type": "custom", "version": "1.0", "memory_mb": 512}
    return [
        ("POST", "/api/v2/auth/login", {"username": "{}", "password": "x"}, "username", "owner"),
        (
            "POST",
            "/api/v2/auth/register",
            {"username": "{}", "email": "z@example.com", "password": "Correct-Horse-7"},
            "username",
            "owner",
        ),
        (
            "POST",
            "/api/v2/auth/register",
            {"username": "zed", "email": "z{}@example.com", "password": "Correct-Horse-7"},
            "email",
            "owner",
        ),
        ("PUT", "/api/v2/users/me", {"email": "o{}@example.com"}, "email", "owner"),
        ("PUT", "/api/v2/users/me", {"full_name": "{}"}, "full_name", "owner"),
        ("POST", "/api/v2/servers/", {"name": "s1", "motd": "{}", **server}, "motd", "owner"),
        (
            "POST",
            "/api/v2/servers/",
            {"name": "s2", "description": "{}", **server},
            "description",
            "owner",
        ),
        ("PUT", f"/api/v2/servers/{sid}", {"description": "{}"}, "description", "owner"),
        ("PUT", f"/api/v2/servers/{sid}", {"motd": "{}"}, "motd", "owner"),
        ("POST", "/api/v2/groups/", {"name": "{}", "group_type": "op"}, "name", "owner"),
        (
            "POST",
            "/api/v2/groups/",
            {"name": "g2", "description": "{}", "group_type": "op"},
            "description",
            "owner",
        ),
        ("PUT", f"/api/v2/groups/{gid}", {"name": "{}"}, "name", "owner"),
        ("PUT", f"/api/v2/groups/{gid}", {"description": "{}"}, "description", "owner"),
        ("POST", f"/api/v2/servers/{sid}/backups", {"name": "{}"}, "name", "owner"),
        (
            "POST",
            f"/api/v2/servers/{sid}/schedules",
            {"cron_expression": "0 3 * * *", "timezone": "{}"},
            "timezone",
            "owner",
        ),
        (
            "POST",
            f"/api/v2/servers/{sid}/schedules",
            {"cron_expression": "0 3 * {} *"},
            "cron_expression",
            "owner",
        ),
    ]


def _fill(body: dict, value: str) -> dict:
    return {k: v.replace("{}", value) if isinstance(v, str) else v for k, v in body.items()}


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("a\x00b", id="nul-byte"),
        pytest.param("a\x07b", id="bell"),
        pytest.param("a\x85b", id="c1-control"),
        pytest.param("a\ud800b", id="lone-surrogate"),
    ],
)
async def test_control_characters_in_stored_strings_are_a_422_and_store_nothing(api, value):  # noqa: F811
    group = await api.http.post(
        "/api/v2/groups/", json={"name": "g1", "group_type": "op"}, headers=api.users["owner"]
    )
    before = await api.db.fetchval(
        "SELECT count(*) FROM domain_events WHERE event_type <> 'UserLoggedIn'"
    )
    for method, url, body, field, user in _bodies(api.sid, group.json()["id"]):
        response = await send_json(api, method, url, _fill(body, value), user)
        assert response.status_code == 422, (method, url, field, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert field in response.json()["detail"], (url, field, response.text)
    after = await api.db.fetchval(
        "SELECT count(*) FROM domain_events WHERE event_type <> 'UserLoggedIn'"
    )
    assert after == before
    assert await api.db.fetchval("SELECT count(*) FROM backups") == 0
    assert await api.db.fetchval("SELECT count(*) FROM backup_schedules") == 0


async def test_multiline_descriptions_keep_their_line_breaks(api):  # noqa: F811
    text = "line one\n\tline two\r\n"
    saved = await send_json(api, "PUT", f"/api/v2/servers/{api.sid}", {"description": text})
    assert saved.status_code == 200, saved.text
    assert saved.json()["description"] == text


async def test_a_lone_surrogate_in_file_content_is_a_422(api):  # noqa: F811
    response = await api.http.put(
        api.url("notes.txt"),
        content=b'{"content": "a\\ud800b"}',
        headers={**api.users["owner"], "content-type": "application/json", "If-None-Match": "*"},
    )
    assert response.status_code == 422, response.text
    assert not (api.root / "notes.txt").exists()


RETENTION = [
    pytest.param("keep_last", 2**31, id="keep-last-2147483648"),
    pytest.param("keep_last", 2**63, id="keep-last-2**63"),
    pytest.param("keep_last", 1001, id="keep-last-1001"),
    pytest.param("keep_days", 2**31, id="keep-days-2147483648"),
    pytest.param("keep_days", 1_000_000, id="keep-days-1000000"),
    pytest.param("keep_days", 3651, id="keep-days-3651"),
    pytest.param("keep_days", 0, id="keep-days-0"),
]


@pytest.mark.parametrize(("field", "value"), RETENTION)
async def test_retention_past_its_bounds_is_a_422_and_stores_nothing(api, field, value):  # noqa: F811
    url = f"/api/v2/servers/{api.sid}/schedules"
    body = {"cron_expression": "0 3 * * *", field: value}
    assert_invalid(await send_json(api, "POST", url, body), "body", field)
    assert await api.db.fetchval("SELECT count(*) FROM backup_schedules") == 0
    created = await send_json(api, "POST", url, {"cron_expression": "0 3 * * *"})
    assert created.status_code == 201, created.text
    patch_url = f"/api/v2/schedules/{created.json()['id']}"
    assert_invalid(await send_json(api, "PATCH", patch_url, {field: value}), "body", field)
    stored = await api.db.fetchrow("SELECT keep_last, keep_days FROM backup_schedules")
    assert (stored["keep_last"], stored["keep_days"]) == (None, None)


async def test_the_largest_retention_is_accepted(api):  # noqa: F811
    body = {"cron_expression": "0 3 * * *", "keep_last": 1000, "keep_days": 3650}
    created = await send_json(api, "POST", f"/api/v2/servers/{api.sid}/schedules", body)
    assert created.status_code == 201, created.text
    assert (created.json()["keep_last"], created.json()["keep_days"]) == (1000, 3650)


async def test_the_database_refuses_retention_past_its_bounds(api):  # noqa: F811
    created = await send_json(
        api, "POST", f"/api/v2/servers/{api.sid}/schedules", {"cron_expression": "0 3 * * *"}
    )
    assert created.status_code == 201, created.text
    with pytest.raises(Exception, match="keep_days_bounded"):
        await api.db.execute("UPDATE backup_schedules SET keep_days = 1000000")


@pytest.mark.parametrize(
    "version",
    [
        pytest.param("2147483648", id="version-2147483648"),
        pytest.param(str(2**70), id="version-2**70"),
        pytest.param("0", id="version-0"),
        pytest.param("-1", id="version-negative"),
    ],
)
async def test_history_version_numbers_past_int32_are_a_422(api, version):  # noqa: F811
    (api.root / "notes.txt").write_text("x\n")
    calls = [
        ("GET", f"notes.txt/history/{version}"),
        ("GET", f"notes.txt/history/{version}/diff"),
        ("POST", f"notes.txt/history/{version}/restore"),
    ]
    for method, path in calls:
        response = await api.http.request(method, api.url(path), headers=api.users["owner"])
        assert_invalid(response, "path", "version")
    assert (api.root / "notes.txt").read_text() == "x\n"


@pytest.mark.parametrize(
    "before",
    [
        pytest.param("0-0", id="before-0-0"),
        pytest.param("00-000", id="before-0-0-leading-zeros"),
    ],
)
async def test_console_lines_before_the_first_id_are_an_empty_page(api, before):  # noqa: F811
    response = await api.http.get(
        f"/api/v2/servers/{api.sid}/logs", params={"before": before}, headers=api.users["owner"]
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_before": None}


@pytest.mark.parametrize(
    "before",
    [
        pytest.param("99999999999999999999-0", id="before-99999999999999999999-0"),
        pytest.param("0-18446744073709551616", id="before-sequence-2**64"),
        pytest.param("1-2-3", id="before-three-parts"),
        pytest.param("abc", id="before-not-an-id"),
    ],
)
async def test_console_line_ids_past_64_bits_are_a_422(api, before):  # noqa: F811
    response = await api.http.get(
        f"/api/v2/servers/{api.sid}/logs", params={"before": before}, headers=api.users["owner"]
    )
    assert_invalid(response, "query", "before")


async def test_the_largest_console_line_id_pages_normally(api):  # noqa: F811
    largest = f"{2**64 - 1}-{2**64 - 1}"
    response = await api.http.get(
        f"/api/v2/servers/{api.sid}/logs", params={"before": largest}, headers=api.users["owner"]
    )
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


async def test_an_overlong_if_match_is_a_422(api):  # noqa: F811
    (api.root / "notes.txt").write_text("x\n")
    etags = ", ".join(['"' + "a" * 64 + '"'] * 20)
    saved = await api.put("notes.txt", "y\n", **{"If-Match": etags})
    assert_invalid(saved, "header", "if-match")
    group = await api.http.post(
        "/api/v2/groups/", json={"name": "g1", "group_type": "op"}, headers=api.users["owner"]
    )
    renamed = await api.http.put(
        f"/api/v2/groups/{group.json()['id']}",
        json={"name": "g2"},
        headers={**api.users["owner"], "If-Match": '"' + "1" * 200 + '"'},
    )
    assert_invalid(renamed, "header", "if-match")
    assert (api.root / "notes.txt").read_text() == "x\n"


@pytest.mark.parametrize(
    "name", [pytest.param("a\x00b", id="nul-byte"), pytest.param("a\nb", id="newline")]
)
async def test_a_control_character_in_an_uploaded_backups_name_is_a_422(api, name):  # noqa: F811
    uploaded = await api.http.post(
        f"/api/v2/servers/{api.sid}/backups/upload",
        params={"name": name},
        headers=api.users["owner"],
        files={"file": ("world.tar.gz", archive({"world/level.dat": b"x"}), "application/gzip")},
    )
    assert uploaded.status_code == 422, uploaded.text
    assert uploaded.json()["field"] == "name"
    assert await api.db.fetchval("SELECT count(*) FROM backups") == 0
    stored = api.app.state.settings.resolved_data_dir / "backups"
    assert not stored.exists() or not any(stored.rglob("*.tar.gz"))
