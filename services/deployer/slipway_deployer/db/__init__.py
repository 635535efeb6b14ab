"""Persistence of the deployer service: SQL in `queries.py`, schema in `migrations/`."""
