"""Persistence of the identity service: all its SQL lives in `queries.py`; schema in `migrations/`."""
