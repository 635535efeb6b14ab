"""HTTP routes of the deployer service (thin: validate, call a use case, answer)."""
