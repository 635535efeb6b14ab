"""Built-in variables: what a service learns of its environment, with and without the
connections of deployed databases; deterministic ids, secrets flagged and never shown."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from slipway_contracts.variables import DatabaseConnectionInfo, VariableIn
from slipway_resolver import DATABASE_PORTS, built_ins, database_url, env_name, masked, resolve

PROJECT = uuid.UUID("00000000-0000-0000-0000-0000000000aa")
ENV = {"id": uuid.UUID("00000000-0000-0000-0000-0000000000bb"), "name": "staging"}
WEB = {
    "id": uuid.UUID("00000000-0000-0000-0000-000000000001"),
    "name": "web",
    "kind": "application",
    "spec": {"ports": [{"port": 8080, "public": True}]},
}
API = {
    "id": uuid.UUID("00000000-0000-0000-0000-000000000002"),
    "name": "api-v2",
    "kind": "container",
    "spec": {
        "ports": [{"port": 9000}, {"port": 9090, "default": True}, {"port": 80, "public": True}]
    },
}
DB = {
    "id": uuid.UUID("00000000-0000-0000-0000-000000000003"),
    "name": "main-db",
    "kind": "database",
    "spec": {"engine": "postgresql", "version": "16"},
}
CACHE = {
    "id": uuid.UUID("00000000-0000-0000-0000-000000000004"),
    "name": "cache",
    "kind": "database",
    "spec": {"engine": "redis"},
}
SERVICES = [WEB, API, DB, CACHE]
PASSWORD = "hunter2-Very$ecret"
CONN = DatabaseConnectionInfo(
    host="main-db.env-bb.svc", port=6543, user="app", database="shop", password=PASSWORD
)


def generate(
    connections: dict[uuid.UUID, DatabaseConnectionInfo] | None = None,
    services: list[dict[str, Any]] | None = None,
) -> list[VariableIn]:
    return built_ins(
        project_id=PROJECT,
        environment=ENV,
        services=services or SERVICES,
        service=WEB,
        connections=connections,
    )


def by_key(variables: list[VariableIn]) -> dict[str, VariableIn]:
    out = {v.key: v for v in variables}
    assert len(out) == len(variables), "a key generated twice"
    return out


def test_without_connections_hosts_are_service_names_and_ports_the_defaults() -> None:
    got = by_key(generate())
    assert {k: v.value for k, v in got.items()} == {
        "SLIPWAY_PROJECT_ID": str(PROJECT),
        "SLIPWAY_ENVIRONMENT_ID": str(ENV["id"]),
        "SLIPWAY_ENVIRONMENT_NAME": "staging",
        "SLIPWAY_SERVICE_ID": str(WEB["id"]),
        "SLIPWAY_SERVICE_NAME": "web",
        "SLIPWAY_API_V2_HOST": "api-v2",
        "SLIPWAY_API_V2_PORT": "9090",  # the default private port; the public one is not listed
        "SLIPWAY_MAIN_DB_HOST": "main-db",
        "SLIPWAY_MAIN_DB_PORT": str(DATABASE_PORTS["postgresql"]),
        "SLIPWAY_CACHE_HOST": "cache",
        "SLIPWAY_CACHE_PORT": "6379",
    }
    assert all(v.kind == "built_in" and not v.is_secret for v in got.values())
    assert got["SLIPWAY_SERVICE_ID"].scope == "service"
    assert got["SLIPWAY_MAIN_DB_HOST"].scope == "environment"
    assert generate(connections={}) == generate()


def test_ids_are_deterministic_and_unchanged_for_values_that_are_not_secret() -> None:
    assert generate() == generate()
    assert generate({DB["id"]: CONN}) == generate({DB["id"]: CONN})
    for var in generate():  # the same ids as before connections existed
        name = f"slipway-builtin:{var.scope}:{var.key}:{var.value}"
        assert var.id == uuid.uuid5(uuid.NAMESPACE_URL, name)
    ids = [v.id for v in generate({DB["id"]: CONN, CACHE["id"]: CONN})]
    assert len(set(ids)) == len(ids)


def test_a_deployed_database_gives_its_real_connection_and_secret_credentials() -> None:
    got = by_key(generate({DB["id"]: CONN}))
    db = {k: v for k, v in got.items() if k.startswith("SLIPWAY_MAIN_DB_")}
    assert {k: (v.value, v.is_secret) for k, v in db.items()} == {
        "SLIPWAY_MAIN_DB_HOST": ("main-db.env-bb.svc", False),
        "SLIPWAY_MAIN_DB_PORT": ("6543", False),
        "SLIPWAY_MAIN_DB_USER": ("app", False),
        "SLIPWAY_MAIN_DB_DATABASE": ("shop", False),
        "SLIPWAY_MAIN_DB_PASSWORD": (PASSWORD, True),
        "SLIPWAY_MAIN_DB_URL": (
            "postgresql://app:hunter2-Very%24ecret@main-db.env-bb.svc:6543/shop",
            True,
        ),
    }
    assert all(v.scope == "environment" and v.kind == "built_in" for v in db.values())
    # the other database, not deployed yet, keeps its name and default port only
    assert got["SLIPWAY_CACHE_HOST"].value == "cache" and "SLIPWAY_CACHE_USER" not in got


def test_secret_ids_come_from_the_key_and_the_database_never_from_the_value() -> None:
    first = by_key(generate({DB["id"]: CONN}))
    rotated = CONN.model_copy(update={"password": "another-password", "host": "moved"})
    second = by_key(generate({DB["id"]: rotated}))
    for key in ("SLIPWAY_MAIN_DB_PASSWORD", "SLIPWAY_MAIN_DB_URL"):
        assert first[key].id == second[key].id
        for value in (PASSWORD, first[key].value):
            for scope in ("environment", "service"):
                name = f"slipway-builtin:{scope}:{key}:{value}"
                assert first[key].id != uuid.uuid5(uuid.NAMESPACE_URL, name)
    assert first["SLIPWAY_MAIN_DB_HOST"].id != second["SLIPWAY_MAIN_DB_HOST"].id  # value-based
    other = {**DB, "id": uuid.uuid4()}
    elsewhere = by_key(generate({other["id"]: CONN}, services=[WEB, other]))
    assert elsewhere["SLIPWAY_MAIN_DB_PASSWORD"].id != first["SLIPWAY_MAIN_DB_PASSWORD"].id


def test_secrets_stay_out_of_reprs_and_the_masked_view() -> None:
    generated = generate({DB["id"]: CONN})
    assert PASSWORD not in repr(generated) and PASSWORD not in str(generated)
    assert "hunter2" not in repr(CONN)
    resolved = resolve(generated)
    assert resolved["SLIPWAY_MAIN_DB_PASSWORD"].value == PASSWORD
    assert resolved["SLIPWAY_MAIN_DB_URL"].is_secret
    assert "hunter2" not in repr(resolved) and "hunter2" not in str(list(resolved.values()))
    assert "main-db.env-bb.svc" in repr(resolved)  # only secrets are hidden
    view = {item["key"]: item for item in masked(resolved)}
    assert view["SLIPWAY_MAIN_DB_PASSWORD"]["value"] is None
    assert view["SLIPWAY_MAIN_DB_URL"]["value"] is None
    assert view["SLIPWAY_MAIN_DB_USER"]["value"] == "app"
    assert "hunter2" not in str(view)


def test_what_uses_a_database_secret_is_secret_too() -> None:
    mine = [
        VariableIn(
            id=uuid.uuid4(),
            scope="service",
            key="DATABASE_URL",
            kind="alias",
            value="SLIPWAY_MAIN_DB_URL",
        ),
        VariableIn(
            id=uuid.uuid4(),
            scope="service",
            key="DSN",
            kind="value",
            value="{{SLIPWAY_MAIN_DB_URL}}?sslmode=disable",
        ),
        VariableIn(
            id=uuid.uuid4(),
            scope="service",
            key="WHERE",
            kind="value",
            value="{{SLIPWAY_MAIN_DB_HOST}}:{{SLIPWAY_MAIN_DB_PORT}}",
        ),
    ]
    resolved = resolve([*generate({DB["id"]: CONN}), *mine])
    assert resolved["DATABASE_URL"].is_secret and resolved["DSN"].is_secret
    assert resolved["DSN"].value.endswith("@main-db.env-bb.svc:6543/shop?sslmode=disable")
    assert (resolved["WHERE"].value, resolved["WHERE"].is_secret) == (
        "main-db.env-bb.svc:6543",
        False,
    )


def test_connections_match_string_ids_and_only_databases() -> None:
    as_text = {**DB, "id": str(DB["id"])}
    got = by_key(generate({DB["id"]: CONN}, services=[WEB, as_text]))
    assert got["SLIPWAY_MAIN_DB_USER"].value == "app"
    app = by_key(generate({API["id"]: CONN}, services=[WEB, API]))
    assert app["SLIPWAY_API_V2_HOST"].value == "api-v2" and "SLIPWAY_API_V2_USER" not in app


@pytest.mark.parametrize(
    ("engine", "connection", "url"),
    [
        ("postgresql", CONN, "postgresql://app:hunter2-Very%24ecret@main-db.env-bb.svc:6543/shop"),
        (
            "mysql",
            DatabaseConnectionInfo(host="db", port=3306, user="u@x", database="d", password="p:/@"),
            "mysql://u%40x:p%3A%2F%40@db:3306/d",
        ),
        (
            "postgresql",
            DatabaseConnectionInfo(host="::1", port=5432, user="u", database="d", password="p"),
            "postgresql://u:p@[::1]:5432/d",
        ),
        (
            "redis",
            DatabaseConnectionInfo(host="r", port=1, user="default", database="0", password="p"),
            "redis://default:p@r:1/0",
        ),
        ("cockroach", CONN, None),
    ],
)
def test_database_urls(engine: str, connection: DatabaseConnectionInfo, url: str | None) -> None:
    assert database_url(engine, connection) == url


def test_an_engine_without_a_url_form_still_gets_its_credentials() -> None:
    odd = {**DB, "spec": {"engine": "cockroach"}}
    got = by_key(generate({DB["id"]: CONN}, services=[WEB, odd]))
    assert got["SLIPWAY_MAIN_DB_PASSWORD"].is_secret and "SLIPWAY_MAIN_DB_URL" not in got


def test_env_name() -> None:
    assert env_name("main-db") == "MAIN_DB" and env_name("Api.v2") == "API_V2"


def test_the_connection_info_is_frozen_and_strict() -> None:
    with pytest.raises(ValueError, match="extra"):
        DatabaseConnectionInfo(host="h", port=1, user="u", database="d", password="p", x=1)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="frozen"):
        CONN.host = "elsewhere"  # type: ignore[misc]
