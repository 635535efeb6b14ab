"""Persistence of the deployer service: all its SQL lives in `queries.py`; schema in `migrations/`."""
