"""Pure domain code of the scheduler service: no I/O, no framework (checked by import-linter)."""
