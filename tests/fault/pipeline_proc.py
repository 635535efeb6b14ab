"""A relay or a consumer in a process of its own, for fault tests that kill it with SIGKILL.

    python tests/fault/pipeline_proc.py relay    <dsn> <bootstrap>
    python tests/fault/pipeline_proc.py consumer <dsn> <bootstrap> <topic> <group>

Both connect to Kafka at <bootstrap> as the devstack's admin principal (credentials from the
devstack's env file, never in an argv). The consumer's handler inserts one ``effects`` row per
event and nothing prevents a duplicate row there: only the inbox does, which is what the test
checks.
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg

from slipway_contracts import Envelope
from slipway_libs import db
from slipway_libs.bus import ConsumerSpec, consuming
from slipway_libs.kafka_access import admin_connection
from slipway_libs.logging import configure_logging
from slipway_libs.relay import OutboxRelay, producer_factory
from slipway_libs.settings import KafkaConnection, read_env_file


async def record_effect(conn: asyncpg.Connection, envelope: Envelope) -> None:
    await conn.execute(
        "INSERT INTO effects (key, seq, event_id) VALUES ($1, $2, $3)",
        envelope.data["key"],
        envelope.data["seq"],
        envelope.id,
    )


def kafka(bootstrap: str) -> KafkaConnection:
    return admin_connection(read_env_file() | {"SLIPWAY_KAFKA_BOOTSTRAP_SERVERS": bootstrap})


async def relay(dsn: str, bootstrap: str) -> None:
    await OutboxRelay(
        dsn=dsn,
        producer=producer_factory(kafka(bootstrap), client_id="fault-relay"),
        batch_size=200,
        poll_interval_s=0.2,
    ).run()


async def consumer(dsn: str, bootstrap: str, topic: str, group: str) -> None:
    pool = await db.create_pool(dsn, max_size=3)
    spec = ConsumerSpec(group_id=group, topics=[topic], handlers={"test.Counted": record_effect})
    async with consuming(
        kafka(bootstrap), pool, [spec], client_id="fault-consumer", batch_size=200
    ):
        await asyncio.Event().wait()


def main(argv: list[str]) -> None:
    configure_logging(f"fault-{argv[1]}", level="WARNING", json=True)
    if argv[1] == "relay":
        asyncio.run(relay(argv[2], argv[3]))
    else:
        asyncio.run(consumer(argv[2], argv[3], argv[4], argv[5]))


if __name__ == "__main__":
    main(sys.argv)
