"""HTTP routes of the logs service (thin: validate, call a use case, answer)."""
