"""HTTP routes of the identity service (thin: validate, call a use case, answer)."""
