"""HTTP routes of the builder service (thin: validate, call a use case, answer)."""
