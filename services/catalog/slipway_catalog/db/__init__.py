"""Persistence of the catalog service: all its SQL lives in `queries.py`; schema in `migrations/`."""
