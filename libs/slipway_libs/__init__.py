"""Mechanisms every Slipway service shares: settings, database, migrations, outbox, relay, inbox,
consumers with retry and dead letters, the Kafka bus, telemetry, logging and the HTTP app factory.
"""
