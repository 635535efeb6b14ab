"""Pure domain code of the identity service: no I/O, no framework (checked by import-linter)."""
