"""Persistence of the builder service: all its SQL lives in `queries.py`; schema in `migrations/`."""
