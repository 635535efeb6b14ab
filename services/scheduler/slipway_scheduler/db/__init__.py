"""Persistence of the scheduler service: all its SQL lives in `queries.py`; schema in
`migrations/`.
"""
