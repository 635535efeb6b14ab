"""Persistence of the identity service: SQL in `queries.py`, schema in `migrations/`."""
