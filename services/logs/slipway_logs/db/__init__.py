"""Persistence of the logs service: all its SQL lives in `queries.py`; schema in `migrations/`."""
