"""Persistence of the builder service: SQL in `queries.py`, schema in `migrations/`."""
