"""Workloads cannot reach the platform (issue 10, item 9).

A deployed app on the ``local`` runtime shares the host's network with the platform. What keeps
it out is, layer by layer:

- the process: it runs as an unprivileged uid of its own, so it can neither leave its chroot
  nor read the platform's processes (``/proc/<pid>/environ``: every credential is there);
- Kafka: every listener authenticates (SASL/SCRAM), so a client without credentials cannot
  publish the ``identity.access.v1`` events every gateway trusts, and ACLs keep each service's
  principal to its own topics;
- PostgreSQL: each service's role reaches only its own database;
- internal HTTP APIs: each caller has a token of its own; a service accepts only its callers'.

The app's image has only busybox, which cannot speak Kafka's or PostgreSQL's protocol; so the
process checks run inside a real job of the runtime (same image, buildah chroot, same uid as a
deployed service), and the protocol checks run in a Python process with that same uid on the
same host network. What refuses them (authentication) does not depend on who asks, which is why
the workload must not be able to learn a credential: the job shows it cannot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiokafka
import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError

from slipway_contracts.events.identity import ACCESS_TOPIC
from slipway_deployer.adapters.runtime import Workload
from slipway_deployer.adapters.runtime._buildah import BuildahStorage
from slipway_deployer.adapters.runtime.local import LocalRuntime, LocalRuntimeConfig, workload_uid
from slipway_libs.actor import INTERNAL_TOKEN_HEADER
from slipway_libs.kafka_access import grant, revoke
from slipway_libs.settings import KafkaConnection
from slipway_libs.testing.platform import Platform
from slipway_libs.testing.plugin import Devstack

pytestmark = pytest.mark.integration

TOKEN = f"t{uuid.uuid4().hex[:8]}"
SERVICE_ID = f"{TOKEN}-intruder"


def _require_sasl(devstack: Devstack) -> None:
    if not devstack.env.get("SLIPWAY_KAFKA_ADMIN_USERNAME"):
        pytest.fail("the devstack's Kafka does not authenticate: run `make infra-up` again")


@pytest.fixture(scope="module")
async def prefix(devstack: Devstack) -> AsyncIterator[str]:
    """A topic prefix of this module's own, its topics created and every service's ACLs granted."""
    _require_sasl(devstack)
    name = f"{TOKEN}."
    await grant(devstack.kafka, name)
    yield name
    await revoke(devstack.kafka, name)


async def _publish(kafka: KafkaConnection, topic: str) -> None:
    producer = AIOKafkaProducer(**kafka.options(), request_timeout_ms=5000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b'{"forged": true}')
    finally:
        await producer.stop()


# --- the workload's process


async def test_a_workload_runs_unprivileged_and_cannot_read_the_platform(
    devstack: Devstack, platform: Platform, tmp_path: Path
) -> None:
    gateway = platform.services["gateway"].process
    assert gateway is not None
    script = textwrap.dedent(
        f"""\
        check() {{ if "$@" >/dev/null 2>&1; then echo allowed; else echo denied; fi; }}
        printf '{{"uid": %s, "environ": "%s", "root": "%s", "chroot": "%s"}}' \\
          "$(id -u)" \\
          "$(check cat /proc/{gateway.pid}/environ)" \\
          "$(check ls /proc/{gateway.pid}/root/)" \\
          "$(check chroot / true)" > /slipway/output.json
        """
    )
    runtime = LocalRuntime(
        tmp_path / "state", BuildahStorage.from_env(devstack.env), LocalRuntimeConfig()
    )
    job = Workload(
        service_id=SERVICE_ID,
        environment_id=f"{TOKEN}-env",
        name="intruder",
        image=devstack.env["SLIPWAY_BASE_IMAGE"],
        ports=[],
        kind="job",
        command=["/bin/sh", "-c", script],
    )
    try:
        result = await runtime.run_job(job, timeout_s=60)
    finally:
        await runtime.delete(SERVICE_ID)
        await runtime.close()
    assert result.exit_code == 0 and result.output is not None, result
    seen = json.loads(result.output)
    assert seen["uid"] == workload_uid(SERVICE_ID, LocalRuntimeConfig()) != 0
    # the gateway's environment holds its Kafka password and internal token
    assert seen["environ"] == "denied"
    assert seen["root"] == "denied"
    # root could chroot out of its filesystem, to the platform's state and credentials
    assert seen["chroot"] == "denied"


PROBE = textwrap.dedent(
    """\
    import asyncio, sys
    from aiokafka import AIOKafkaProducer

    async def main(bootstrap, topic):
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await asyncio.wait_for(producer.start(), 15)
            await asyncio.wait_for(producer.send_and_wait(topic, b'{"forged": true}'), 15)
        except Exception as exc:
            print("refused:", type(exc).__name__)
            return
        finally:
            await producer.stop()
        print("PUBLISHED")

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def _interpreter() -> str:
    """A Python the workload's uid may run: this one may live in root's home (pyenv)."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        if all(os.stat(p).st_mode & 0o001 for p in Path(candidate).resolve().parents):
            return candidate
    pytest.fail("no Python interpreter that an unprivileged user can run")


def test_kafka_refuses_a_client_without_credentials_from_the_workloads_uid(
    devstack: Devstack, prefix: str
) -> None:
    uid = workload_uid(SERVICE_ID, LocalRuntimeConfig())

    def become_the_workload() -> None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)

    done = subprocess.run(
        [_interpreter(), "-c", PROBE, devstack.kafka.bootstrap_servers, prefix + ACCESS_TOPIC],
        preexec_fn=become_the_workload,  # the child only drops its ids, then execs
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": "/nonexistent",
            "PYTHONPATH": str(Path(aiokafka.__file__).parents[1]),
        },
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "PUBLISHED" not in done.stdout
    assert "refused:" in done.stdout, done.stdout + done.stderr


async def test_a_wrong_password_is_refused(devstack: Devstack, prefix: str) -> None:
    guess = replace(devstack.kafka_principal("identity"), password="guessed")
    with pytest.raises(KafkaError):
        await _publish(guess, prefix + ACCESS_TOPIC)


async def test_each_service_publishes_only_its_own_topics(devstack: Devstack, prefix: str) -> None:
    # the identity service's principal publishes its access events...
    await _publish(devstack.kafka_principal("identity"), prefix + ACCESS_TOPIC)
    # ...another service's principal cannot forge them, nor can the gateway, which reads them
    for service in ("catalog", "gateway", "deployer"):
        with pytest.raises(TopicAuthorizationFailedError):
            await _publish(devstack.kafka_principal(service), prefix + ACCESS_TOPIC)


# --- PostgreSQL


def _as(devstack: Devstack, service: str, database: str, password: str | None = None) -> str:
    url = httpx.URL(devstack.env[f"SLIPWAY_{service.upper()}_DATABASE_URL"])
    if password is not None:
        url = url.copy_with(password=password)
    return str(url.copy_with(path=f"/{database}"))


async def test_a_service_role_reaches_only_its_own_database(devstack: Devstack) -> None:
    own = await asyncpg.connect(_as(devstack, "identity", "slipway_identity"))
    await own.close()
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await asyncpg.connect(_as(devstack, "identity", "slipway_catalog"))
    # nor does another role's name with the identity role's password
    catalog = httpx.URL(devstack.env["SLIPWAY_CATALOG_DATABASE_URL"])
    identity_password = httpx.URL(devstack.env["SLIPWAY_IDENTITY_DATABASE_URL"]).password
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(str(catalog.copy_with(password=identity_password)))


# --- internal HTTP APIs


async def test_internal_apis_accept_only_their_callers_tokens(platform: Platform) -> None:
    env = platform.env
    url = f"{platform.url('identity')}/internal/v1/access-snapshot"
    async with httpx.AsyncClient(timeout=10) as client:
        as_gateway = {INTERNAL_TOKEN_HEADER: env["SLIPWAY_INTERNAL_TOKEN"]}
        gateway = await client.get(url, headers=as_gateway)
        assert gateway.status_code == 200, gateway.text
        # the catalog has a token of its own, which identity does not accept (only the gateway
        # calls it): a compromised service cannot call the others' internal APIs
        for token in (env["SLIPWAY_CATALOG_INTERNAL_TOKEN"], "", "guessed"):
            refused = await client.get(url, headers={INTERNAL_TOKEN_HEADER: token})
            assert refused.status_code == 403, token
