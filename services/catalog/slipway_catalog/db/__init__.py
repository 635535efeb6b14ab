"""Persistence of the catalog service: SQL in `queries.py`, schema in `migrations/`."""
