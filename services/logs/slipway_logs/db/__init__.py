"""Persistence of the logs service: SQL in `queries.py`, schema in `migrations/`."""
