"""HTTP routes of the gateway service (thin: validate, call a use case, answer)."""
