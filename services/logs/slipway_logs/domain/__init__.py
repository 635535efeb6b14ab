"""Pure domain code of the logs service: no I/O, no framework (checked by import-linter)."""
