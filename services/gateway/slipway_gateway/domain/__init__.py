"""Pure domain code of the gateway service: no I/O, no framework (checked by import-linter)."""
