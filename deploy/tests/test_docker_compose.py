"""``docker-compose.yml`` agrees with the services: ports, settings, databases, gateway routes.

No Docker engine is needed: the file is parsed, interpolated the way Compose does it with an
empty environment (so the development defaults apply), and each service's settings class is
built from its container's environment.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from slipway_libs.crypto import Sealer

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DATABASE_SERVICES = ("identity", "catalog", "builder", "deployer", "scheduler", "logs")
SERVICES = (*DATABASE_SERVICES, "gateway")
PORTS = {"gateway": 8080, "identity": 8081, "catalog": 8082, "builder": 8083,
         "deployer": 8084, "scheduler": 8085, "logs": 8086}  # fmt: skip

_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?::?-([^}]*))?\}")


def interpolate(value: Any) -> Any:
    """Compose's ``${VAR:-default}`` / ``${VAR}`` / ``$$`` with no variable set."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: "$" if m.group(0) == "$$" else (m.group(2) or ""), value)
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return interpolate(yaml.safe_load(COMPOSE.read_text()))  # type: ignore[no-any-return]


def settings_class(service: str) -> type[Any]:
    module = importlib.import_module(f"slipway_{service}.config")
    return getattr(module, f"{service.capitalize()}Settings")  # type: ignore[no-any-return]


def init_sql_passwords(compose: dict[str, Any]) -> dict[str, str]:
    sql = compose["configs"]["postgres-init"]["content"]
    return dict(re.findall(r"CREATE ROLE (\w+) LOGIN PASSWORD '([^']*)';", sql))


def test_infrastructure_uses_the_official_images(compose: dict[str, Any]) -> None:
    assert compose["services"]["postgres"]["image"] == "postgres:15"
    assert compose["services"]["kafka"]["image"] == "apache/kafka:4.1.1"
    assert set(compose["services"]) == {"postgres", "kafka", "kafka-acls", *SERVICES}
    server = kafka_properties(compose)
    assert server["process.roles"] == "broker,controller"
    assert server["advertised.listeners"] == "CLIENT://kafka:9092"


def kafka_properties(compose: dict[str, Any]) -> dict[str, str]:
    lines = compose["configs"]["kafka-server"]["content"].splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_kafka_authenticates_every_listener_and_denies_without_an_acl(
    compose: dict[str, Any],
) -> None:
    server = kafka_properties(compose)
    assert server["listener.security.protocol.map"] == (
        "CONTROLLER:SASL_PLAINTEXT,CLIENT:SASL_PLAINTEXT"
    )
    assert server["authorizer.class.name"].endswith("StandardAuthorizer")
    assert server["allow.everyone.if.no.acl.found"] == "false"
    assert server["super.users"] == "User:admin;User:controller"
    acls = compose["services"]["kafka-acls"]
    assert acls["command"] == ["python", "-m", "slipway_libs.kafka_access"]
    assert acls["depends_on"]["kafka"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_is_its_own_kafka_principal(compose: dict[str, Any], service: str) -> None:
    env = compose["services"][service]["environment"]
    assert env[f"SLIPWAY_{service.upper()}_KAFKA_USERNAME"] == service
    password = env[f"SLIPWAY_{service.upper()}_KAFKA_PASSWORD"]
    kafka = compose["services"]["kafka"]
    seeded = kafka["environment"][f"KAFKA_{service.upper()}_PASSWORD"]
    assert password == seeded
    assert (
        f"SCRAM-SHA-256=[name={service},password=${{KAFKA_{service.upper()}_PASSWORD}}]"
        in (kafka["command"][0])
    )
    assert compose["services"][service]["depends_on"]["kafka-acls"]["condition"] == (
        "service_completed_successfully"
    )


@pytest.mark.parametrize("service", DATABASE_SERVICES)
def test_internal_apis_accept_the_gateways_token(compose: dict[str, Any], service: str) -> None:
    token = compose["services"]["gateway"]["environment"]["SLIPWAY_GATEWAY_INTERNAL_TOKEN"]
    callers = compose["services"][service]["environment"][
        f"SLIPWAY_{service.upper()}_INTERNAL_CALLERS"
    ]
    assert callers == f"gateway:{hashlib.sha256(token.encode()).hexdigest()}"


@pytest.mark.parametrize("service", SERVICES)
def test_service_container(compose: dict[str, Any], service: str) -> None:
    spec = compose["services"][service]
    assert (ROOT / spec["build"]["context"] / spec["build"]["dockerfile"]).is_file()
    assert spec["command"][-1] == (
        f"python -m slipway_{service} migrate && exec python -m slipway_{service} run"
    )
    env = spec["environment"]
    assert env["SLIPWAY_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env[f"SLIPWAY_{service.upper()}_HTTP_HOST"] == "0.0.0.0"
    assert f"http://127.0.0.1:{PORTS[service]}/readyz" in spec["healthcheck"]["test"][-1]


@pytest.mark.parametrize("service", SERVICES)
def test_settings_load_from_the_container_environment(
    compose: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("SLIPWAY_"):
            monkeypatch.delenv(key)
    env = compose["services"][service]["environment"]
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    settings = settings_class(service)(_env_file=None)
    assert settings.http_port == PORTS[service]
    assert settings.http_host == "0.0.0.0"
    for key, value in env.items():
        if key.endswith("_SEALING_KEYS"):
            Sealer.from_setting(value)


@pytest.mark.parametrize("service", DATABASE_SERVICES)
def test_each_service_reaches_its_own_database(compose: dict[str, Any], service: str) -> None:
    url = urlsplit(
        compose["services"][service]["environment"][f"SLIPWAY_{service.upper()}_DATABASE_URL"]
    )
    role = f"slipway_{service}"
    assert (url.scheme, url.hostname, url.port, url.path) == ("postgresql", "postgres", 5432,
                                                              f"/{role}")  # fmt: skip
    assert url.username == role
    assert url.password == init_sql_passwords(compose)[role]
    depends = compose["services"][service]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["kafka-acls"]["condition"] == "service_completed_successfully"


def test_init_sql_isolates_every_database(compose: dict[str, Any]) -> None:
    sql = compose["configs"]["postgres-init"]["content"]
    assert set(init_sql_passwords(compose)) == {f"slipway_{s}" for s in DATABASE_SERVICES}
    for service in DATABASE_SERVICES:
        name = f"slipway_{service}"
        assert f"CREATE DATABASE {name} OWNER {name};" in sql
        assert f"REVOKE CONNECT, TEMPORARY ON DATABASE {name} FROM PUBLIC;" in sql
    target = compose["services"]["postgres"]["configs"][0]["target"]
    assert target.startswith("/docker-entrypoint-initdb.d/") and target.endswith(".sql")


def test_gateway_routes_to_every_service_and_is_published(compose: dict[str, Any]) -> None:
    from slipway_gateway.config import UPSTREAMS

    gateway = compose["services"]["gateway"]
    env = gateway["environment"]
    for upstream in UPSTREAMS:
        assert env[f"SLIPWAY_GATEWAY_{upstream.upper()}_URL"] == (
            f"http://{upstream}:{PORTS[upstream]}"
        )
    assert gateway["ports"] == ["8080:8080"]
    assert set(gateway["depends_on"]) == {"kafka-acls", *UPSTREAMS}
