"""Pure domain code of the catalog service: no I/O, no framework (checked by import-linter)."""
