"""Pure domain code of the builder service: no I/O, no framework (checked by import-linter)."""
