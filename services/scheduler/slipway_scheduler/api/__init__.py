"""HTTP routes of the scheduler service (thin: validate, call a use case, answer)."""
