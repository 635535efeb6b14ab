"""Pure domain code of the deployer service: no I/O, no framework (checked by import-linter)."""
