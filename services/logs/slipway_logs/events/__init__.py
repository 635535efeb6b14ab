"""Kafka subscribers of the logs service (thin: decode, call a use case in the inbox txn)."""
